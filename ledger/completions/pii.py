"""Personal data at rest: sealed with AES-256-GCM, found by a keyed hash, committed publicly.

One 32-byte key from settings yields (HKDF-SHA256, distinct ``info``) a sealing key and a lookup
key, so the two uses can never be confused.  The ledger sees only `commitment`: SHA-256 over a
domain tag, a per-record random salt and the ID number.  A verifier who types an ID number can be
told "match" by recomputing it with the stored salt; once the salt is erased nobody can.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.errors import LedgerError

__all__ = ["KEY_BYTES", "SALT_BYTES", "PersonalDataVault", "SealError", "commitment"]

KEY_BYTES: Final = 32
SALT_BYTES: Final = 16
_NONCE_BYTES: Final = 12
_SUBJECT_TAG: Final = b"celedger-subject-v1\x00"


class SealError(LedgerError):
    """Sealed personal data could not be opened (wrong key, or the bytes were altered)."""


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def commitment(salt: bytes, id_number: str) -> str:
    """The public, salted commitment to a person for one record (hex SHA-256)."""
    return hashlib.sha256(_SUBJECT_TAG + salt + id_number.encode("ascii")).hexdigest()


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


class PersonalDataVault:
    """Seals and opens personal data; computes the lookup hash of an ID number."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"personal-data key: expected {KEY_BYTES} bytes, found {len(key)} "
                "(give 32 random bytes, base64-encoded, in CELEDGER_PII_KEY)"
            )
        self._aead = AESGCM(_derive(key, b"celedger pii seal v1"))
        self._lookup_key = _derive(key, b"celedger pii lookup v1")

    def lookup(self, id_number: str) -> bytes:
        """Keyed hash of a normalised ID number: equal numbers, equal lookups; no key, no guess."""
        return hmac.new(self._lookup_key, id_number.encode("ascii"), hashlib.sha256).digest()

    def seal(self, fields: dict[str, str], context: bytes) -> bytes:
        """Encrypt ``fields``; ``context`` (e.g. the row's key) is bound as associated data so a
        sealed value copied onto another row does not open."""
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return nonce + self._aead.encrypt(nonce, plain, context)

    def open(self, sealed: bytes, context: bytes) -> dict[str, str]:
        try:
            plain = self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], context)
        except InvalidTag:
            raise SealError(
                "sealed personal data did not open: wrong CELEDGER_PII_KEY, or the stored "
                "bytes were altered or moved to another row"
            ) from None
        value = json.loads(plain)
        if not isinstance(value, dict):
            raise SealError("sealed personal data: expected a JSON object")
        return {str(k): str(v) for k, v in value.items()}
