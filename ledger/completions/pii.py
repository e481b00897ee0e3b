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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.errors import LedgerError

__all__ = [
    "KEY_BYTES",
    "SALT_BYTES",
    "PersonalDataVault",
    "SealError",
    "commitment",
    "new_salts",
    "person_plaintext",
    "sealed_plaintext",
]

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


def new_salts(count: int) -> list[bytes]:
    """``count`` fresh salts from one read of the system's random source."""
    pool = secrets.token_bytes(SALT_BYTES * count)
    return [pool[i : i + SALT_BYTES] for i in range(0, SALT_BYTES * count, SALT_BYTES)]


_ENCODE_TEXT: Final[Callable[[str], str]] = json.encoder.encode_basestring


def person_plaintext(name: str, id_number: str) -> bytes:
    """`sealed_plaintext` of ``{"name": name, "id_number": id_number}`` (a person's row)."""
    enc = _ENCODE_TEXT
    return f'{{"name":{enc(name)},"id_number":{enc(id_number)}}}'.encode()


def sealed_plaintext(fields: Mapping[str, str]) -> bytes:
    """The bytes `PersonalDataVault.seal` encrypts: compact JSON of ``fields`` in their order,
    non-ASCII kept — exactly ``json.dumps(fields, ensure_ascii=False, separators=(",", ":"))``
    in UTF-8, built without the encoder's per-call set-up (a batch seals thousands)."""
    enc = _ENCODE_TEXT
    return ("{" + ",".join([enc(k) + ":" + enc(v) for k, v in fields.items()]) + "}").encode(
        "utf-8"
    )


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
        # RFC 2104: H((K ^ opad) || H((K ^ ipad) || m)), K padded to SHA-256's 64-byte block.
        block = self._lookup_key.ljust(64, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def lookup(self, id_number: str) -> bytes:
        """Keyed hash of a normalised ID number: equal numbers, equal lookups; no key, no guess."""
        return hmac.new(self._lookup_key, id_number.encode("ascii"), hashlib.sha256).digest()

    def lookups(self, id_numbers: Iterable[str]) -> list[bytes]:
        """`lookup` of many ID numbers, the same bytes: HMAC-SHA256 (RFC 2104) with the
        hashes of the padded key computed once, instead of once per number (a third of the
        cost of ``hmac.digest`` for a batch)."""
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        out = []
        for number in id_numbers:
            inner = inner_copy()
            inner.update(number.encode("ascii"))
            outer = outer_copy()
            outer.update(inner.digest())
            out.append(outer.digest())
        return out

    def seal(self, fields: dict[str, str], context: bytes) -> bytes:
        """Encrypt ``fields``; ``context`` (e.g. the row's key) is bound as associated data so a
        sealed value copied onto another row does not open."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, sealed_plaintext(fields), context)

    def seal_many(self, plaintexts: Sequence[bytes], contexts: Sequence[bytes]) -> list[bytes]:
        """`seal` for many values already encoded with `sealed_plaintext` (a batch): one
        random read for every nonce, then one AES-GCM call per value."""
        if len(plaintexts) != len(contexts):
            raise ValueError(
                f"seal_many: expected one context per value, found {len(contexts)} contexts "
                f"for {len(plaintexts)} values"
            )
        nonces = os.urandom(_NONCE_BYTES * len(plaintexts))
        encrypt = self._aead.encrypt
        out = []
        for i, (plain, context) in enumerate(zip(plaintexts, contexts, strict=True)):
            nonce = nonces[i * _NONCE_BYTES : (i + 1) * _NONCE_BYTES]
            out.append(nonce + encrypt(nonce, plain, context))
        return out

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
