"""The registry of CE bases and their governance.

Jurisdictions and their policies, management units, bases and their lifecycle (application →
recognition → rectification → reinstatement or revocation), annual plans and their review and
filing, inspection results, principals and API keys.  Every governance act is one transaction
that writes its projection rows *and* appends its entry to the log (``services``); the public
directory reads the projections.
"""
