"""One error family for the ledger.

Every message says what was expected and what was found, so that an operator reading a log
line or an auditor reading ``celedger audit`` output can act on it without the source.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof does not verify, or cannot be built."""


class FormatError(LedgerError):
    """Bytes that should be in a standard format (note, checkpoint, tile path, …) are not."""


class SignatureError(LedgerError):
    """A signature does not verify against the key it claims."""


class AppendError(LedgerError):
    """An append to the log was refused (entry too large, inconsistent state, …)."""


class TamperError(LedgerError):
    """Stored log data disagrees with what re-deriving it from the entries gives."""
