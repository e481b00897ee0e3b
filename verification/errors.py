"""One error family for the verification package.

Every verify function in ``verification`` either returns a result or raises a subclass of
:class:`VerificationError`; none returns ``False``.  A caller that only wants "valid or not"
catches ``VerificationError``; one that reports *why* catches the subclasses.

Rules
-----
* Messages say what was expected and what was found, so an auditor can act on them without
  the source.
* Subclasses describe *what is wrong* (an encoding, a key reference, the document's shape, the
  signature), not which module noticed it; add a new subclass here rather than raising a bare
  ``VerificationError`` when a new kind of failure appears.
* Lower-level causes (a decoding error, a library exception) are chained with ``raise … from``
  so the detail is kept without widening the family.
"""

from __future__ import annotations

__all__ = [
    "CredentialError",
    "EncodingError",
    "KeyResolutionError",
    "ProofValueError",
    "VerificationError",
]


class VerificationError(Exception):
    """Base of every error the verification package raises on purpose."""


class EncodingError(VerificationError):
    """Text that should be base58-btc, multibase, a Multikey or a did:key is not."""


class KeyResolutionError(VerificationError):
    """A verification method could not be turned into a public key (unknown, or malformed)."""


class CredentialError(VerificationError):
    """A credential or its proof is not shaped as required (wrong type or cryptosuite, missing
    or mistyped field, ``@context`` mismatch, unexpected proof purpose, …)."""


class ProofValueError(VerificationError):
    """A proof's ``proofValue`` cannot be decoded, or its signature does not verify."""


# --- issuing keys, QR tokens and the credentials' ledger evidence ---------------------------


class TokenFormatError(EncodingError):
    """Text that should be a QR token (or a verification URL holding one) is not: wrong
    length, alphabet, case or padding, an unknown format version, or a non-canonical spelling."""


class UnknownKeyError(KeyResolutionError):
    """A signature names an issuing key (kid) the issuer's key set does not have."""


class KeyRetiredError(KeyResolutionError):
    """A signature claims a time at or after its key was retired (rotated out)."""


class KeyCompromisedError(KeyResolutionError):
    """A signature claims a time at or after its key was compromised."""


class KeyNotYetValidError(KeyResolutionError):
    """A signature claims a time before its key was created (back-dated, or a broken clock)."""


class SignatureError(VerificationError):
    """A signature that is not a Data Integrity proof (a QR token's) does not verify."""


class LedgerEvidenceError(VerificationError):
    """A credential's ledger evidence (record token, ledger index, ledger entry, tlog-proof) is
    missing or malformed, disagrees with itself, or its inclusion proof does not verify."""


class HolderMismatchError(VerificationError):
    """The identifier a verifier typed does not match the credential's hashed holder identity."""


__all__ += [
    "HolderMismatchError",
    "KeyCompromisedError",
    "KeyNotYetValidError",
    "KeyRetiredError",
    "LedgerEvidenceError",
    "SignatureError",
    "TokenFormatError",
    "UnknownKeyError",
]
