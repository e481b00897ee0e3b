"""The ledger: domain, append-only Merkle log and its storage.

This package imports none of the project's other packages (``api``, ``certificates``,
``verification``).  Its pure modules (``merkle``, ``tiles``, ``note``, ``checkpoint``,
``cosignature``, ``tlogproof``, ``canonical``, ``entries``) do no I/O so that the pure
``verification`` package may build on them; everything that touches a database lives in
``ledger.storage`` and ``ledger.services``.
"""
