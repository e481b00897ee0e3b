"""The QR token: a compact signed claim that a certificate's record is in the ledger.

A certificate's QR code holds the URL ``<PUBLIC_URL>/V/<TOKEN>``.  A phone opens it (online
check: the service looks the record token up); a verifier app that holds the issuer's published
key set checks the token offline with :func:`verify_token`, as the EU Digital COVID Certificate
does with its compact signed payload.

Binary layout, format version 1 (99 bytes)::

    offset  size  field
    0       1     format version (1)
    1       16    record token: 128 random bits, the record's unguessable lookup handle
    17      8     ledger index of the record's entry, uint64 big-endian
    25      4     issued-at, Unix seconds, uint32 big-endian (good until 2106; the version
                  byte leaves room for a wider field before then)
    29      6     kid: the first 6 bytes of the issuing key's RFC 7638 thumbprint
                  (``ledger.keyset.kid_for`` is their base64url spelling)
    35      64    Ed25519 signature over ``b"celedger-qr-v1\\x00"`` ‖ bytes 0–34

The prefix separates this signature from anything else the issuing key signs (Data Integrity
proofs sign two SHA-256 digests, never these bytes).  The token text is RFC 4648 base32,
upper-case, without padding: 159 characters from ``A–Z2–7``, so the whole upper-cased URL stays
in QR *alphanumeric* mode (5.5 bits a character) and a low QR version.

Privacy: the token holds no personal data — a random handle, a ledger position, a time and a
key id.  The 128-bit record token is the secret that opens the record's verification page;
the ledger holds only the record's public id, so reading the log opens nothing.

Rules :func:`parse_token` enforces, in order (each failure is :class:`TokenFormatError`):

1. ``str`` of characters from the upper-case base32 alphabet only — no padding, no
   lower case, no spaces (:func:`token_from_url` is where either case is accepted);
2. the format version (first byte) is 1;
3. exactly 159 characters;
4. canonical: the unused low bits of the last character are zero, so every token has one
   spelling and changing any character changes the bytes.

:func:`verify_token` then resolves the kid in the issuer's :class:`~ledger.keyset.KeySet` at the
token's issued-at time (unknown, retired, compromised, not yet created: the
:class:`KeyResolutionError` subclasses) and checks the signature (:class:`SignatureError`).
Whether issued-at lies in the future, and whether the record still stands (not revoked or
corrected), are the caller's checks: this module reads no clock and no database.

Pure code: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature

from ledger import keyset as _keys
from ledger.errors import FormatError
from ledger.keyset import KID_BYTES, IssuingKeyInfo, IssuingSigner, KeySet
from verification.errors import (
    KeyCompromisedError,
    KeyNotYetValidError,
    KeyResolutionError,
    KeyRetiredError,
    SignatureError,
    TokenFormatError,
    UnknownKeyError,
)

__all__ = [
    "DOMAIN",
    "RECORD_TOKEN_BYTES",
    "TOKEN_BYTES",
    "TOKEN_CHARS",
    "TOKEN_VERSION",
    "TokenClaims",
    "issue_token",
    "issuing_key",
    "parse_token",
    "token_from_url",
    "token_url",
    "verify_token",
]

TOKEN_VERSION: Final = 1
RECORD_TOKEN_BYTES: Final = 16
DOMAIN: Final = b"celedger-qr-v1\x00"
_CLAIMS = 1 + RECORD_TOKEN_BYTES + 8 + 4 + KID_BYTES
_SIGNATURE = 64
TOKEN_BYTES: Final = _CLAIMS + _SIGNATURE
TOKEN_CHARS: Final = (TOKEN_BYTES * 8 + 4) // 5
_BASE32 = re.compile(r"[A-Z2-7]*")
_PATH = "V"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a QR token asserts: record token, ledger index, issued-at, signing key."""

    record_token: bytes
    ledger_index: int
    issued_at: int
    kid: str
    version: int = TOKEN_VERSION

    def __post_init__(self) -> None:
        if self.version != TOKEN_VERSION:
            raise TokenFormatError(
                f"token version: expected {TOKEN_VERSION}, found {self.version!r}"
            )
        if not isinstance(self.record_token, bytes) or len(self.record_token) != RECORD_TOKEN_BYTES:
            found = (
                f"{len(self.record_token)} bytes"
                if isinstance(self.record_token, bytes)
                else type(self.record_token).__name__
            )
            raise TokenFormatError(
                f"token record token: expected {RECORD_TOKEN_BYTES} bytes, found {found}"
            )
        _check_uint(self.ledger_index, 64, "token ledger index")
        _check_uint(self.issued_at, 32, "token issued-at")
        _kid_bytes(self.kid)

    @property
    def issued_at_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.issued_at, UTC)

    def to_bytes(self) -> bytes:
        """The 35 signed bytes (layout in the module docstring)."""
        return (
            bytes([self.version])
            + self.record_token
            + self.ledger_index.to_bytes(8, "big")
            + self.issued_at.to_bytes(4, "big")
            + _kid_bytes(self.kid)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenClaims:
        if len(data) != _CLAIMS:
            raise TokenFormatError(f"token claims: expected {_CLAIMS} bytes, found {len(data)}")
        return cls(
            version=data[0],
            record_token=data[1:17],
            ledger_index=int.from_bytes(data[17:25], "big"),
            issued_at=int.from_bytes(data[25:29], "big"),
            kid=_b64url(data[29:_CLAIMS]),
        )


def issue_token(claims: TokenClaims, signer: IssuingSigner) -> str:
    """Sign ``claims`` with the issuing key and return the 159-character token text."""
    if claims.kid != signer.kid:
        raise ValueError(
            f"token kid: expected the signer's kid {signer.kid!r}, found {claims.kid!r}"
        )
    body = claims.to_bytes()
    signature = signer.sign(DOMAIN + body)
    return base64.b32encode(body + signature).decode("ascii").rstrip("=")


def parse_token(text: str) -> tuple[TokenClaims, bytes]:
    """Decode a token (rules 1–4 of the module docstring); nothing is verified here."""
    if not isinstance(text, str):
        raise TokenFormatError(f"token: expected text, found {type(text).__name__}")
    if not _BASE32.fullmatch(text):
        bad = next(c for c in text if not _BASE32.fullmatch(c))
        raise TokenFormatError(
            f"token: expected only upper-case base32 characters A-Z and 2-7, found {bad!r} "
            f"at position {text.index(bad)}"
        )
    if len(text) >= 2:
        # The first two characters carry the whole version byte: report a future format as
        # such rather than as a wrong length.
        version = _b32decode(text[:2] + "A" * 6)[0]
        if version != TOKEN_VERSION:
            raise TokenFormatError(f"token version: expected {TOKEN_VERSION}, found {version}")
    if len(text) != TOKEN_CHARS:
        raise TokenFormatError(
            f"token length: expected {TOKEN_CHARS} characters, found {len(text)}"
        )
    data = _b32decode(text)
    if len(data) != TOKEN_BYTES or base64.b32encode(data).decode("ascii").rstrip("=") != text:
        raise TokenFormatError(
            "token: expected the canonical base32 spelling (unused trailing bits zero), "
            f"found a different last character {text[-1]!r}"
        )
    return TokenClaims.from_bytes(data[:_CLAIMS]), data[_CLAIMS:]


def verify_token(text: str, keyset: KeySet) -> TokenClaims:
    """Parse and verify a token against the issuer's key set; return its claims or raise."""
    claims, signature = parse_token(text)
    key = issuing_key(keyset, claims.kid, claims.issued_at_datetime)
    try:
        key.verifier().verify(signature, DOMAIN + claims.to_bytes())
    except InvalidSignature:
        raise SignatureError(
            f"token signature does not verify: expected an Ed25519 signature by issuing key "
            f"{claims.kid!r} over this token's claims, found one that is not (the token was "
            "altered, or not issued by this issuer)"
        ) from None
    return claims


def issuing_key(keyset: KeySet, kid: str, signed_at: datetime) -> IssuingKeyInfo:
    """``keyset.key_for`` with its refusals mapped into the verification error family."""
    try:
        return keyset.key_for(kid, signed_at)
    except _keys.UnknownKidError as exc:
        raise UnknownKeyError(str(exc)) from exc
    except _keys.KeyCompromisedError as exc:
        raise KeyCompromisedError(str(exc)) from exc
    except _keys.KeyRetiredError as exc:
        raise KeyRetiredError(str(exc)) from exc
    except _keys.KeyNotYetValidError as exc:
        raise KeyNotYetValidError(str(exc)) from exc
    except (_keys.KeySetError, FormatError) as exc:
        raise KeyResolutionError(str(exc)) from exc


def token_url(public_url: str, token: str) -> str:
    """``<PUBLIC_URL>/V/<TOKEN>``, all upper-case so that a QR code can use alphanumeric mode.

    Scheme and host are case-insensitive; a path prefix in ``public_url`` is upper-cased too,
    so the service must route it case-insensitively (the root is the usual deployment).
    """
    parse_token(token)
    return f"{public_url.rstrip('/')}/{_PATH}/{token}".upper()


def token_from_url(url: str) -> str:
    """The token in a verification URL, in either case (scanners and browsers may lower-case
    a URL); raises :class:`TokenFormatError` unless the URL ends ``/V/<token>``."""
    if not isinstance(url, str):
        raise TokenFormatError(f"verification URL: expected text, found {type(url).__name__}")
    path = urlsplit(url.strip()).path
    segments = path.split("/")
    if len(segments) < 3 or segments[-2].upper() != _PATH:
        raise TokenFormatError(
            f"verification URL: expected a path ending '/{_PATH}/<token>', found {path[:80]!r}"
        )
    token = segments[-1].upper()
    parse_token(token)
    return token


# --- helpers ---------------------------------------------------------------------------------


def _check_uint(value: int, bits: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise TokenFormatError(f"{what}: expected an integer in [0, 2**{bits}), found {value!r}")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _kid_bytes(kid: str) -> bytes:
    if isinstance(kid, str) and re.fullmatch(r"[A-Za-z0-9_-]{8}", kid):
        raw = base64.urlsafe_b64decode(kid)
        if len(raw) == KID_BYTES and _b64url(raw) == kid:
            return raw
    raise TokenFormatError(
        f"token kid: expected {KID_BYTES} bytes as 8 base64url characters, found {kid!r}"
    )


def _b32decode(text: str) -> bytes:
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError) as exc:
        raise TokenFormatError(
            f"token: expected base32 text, found undecodable text ({exc})"
        ) from exc
