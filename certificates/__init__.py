"""Certificates and transcripts: PDF rendering, QR codes, PDF signatures, credentials."""
