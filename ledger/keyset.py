"""The issuer's Ed25519 signing keys over time: rotation, retirement, compromise.

Certificates (their QR tokens and their verifiable credentials) are signed by one *issuing key*
at a time.  Keys rotate; a key may also be found compromised.  This module is the pure model of
that history — :class:`IssuingKeyInfo` per key, :class:`KeySet` for all of them — and the two
forms in which it is published: a JWKS (RFC 7517/8037, with our status and validity members) and
a did:web DID document (Multikey verification methods ``did:web:<host>#<kid>``).

Rules :meth:`KeySet.key_for` enforces, in order (each failure is its own error class, and every
message says what was expected and what was found):

1. The ``kid`` must name a key in the set (:class:`UnknownKidError`).
2. A key marked compromised is refused for anything signed **at or after** ``compromised_at``
   (:class:`KeyCompromisedError`).
3. A retired key is refused for anything signed **at or after** ``retired_at``
   (:class:`KeyRetiredError`).
4. Nothing can be signed by a key **before** it was created (:class:`KeyNotYetValidError`):
   such a claim is a back-dated forgery or a broken clock.

Choices, and why
----------------
* **Signatures made before a rotation stay valid.**  Rotation is routine hygiene, not an
  incident: a certificate issued last year must keep verifying after this year's rotation, so a
  retired key still verifies what it signed while it was active.
* **Signatures made before the compromise time stay valid.**  Revoking every certificate a key
  ever signed would punish every professional for the operator's incident.  ``compromised_at``
  must therefore be the *earliest* instant the key could have leaked (not when the leak was
  noticed), and it can only ever be moved earlier.  The known cost: a thief holding the key can
  claim any signing time, including one before ``compromised_at``.  Such a back-dated forgery
  verifies offline against the key set alone.  What the thief cannot do is put a record into the
  ledger: a QR token names a record token and a ledger index that the online check looks up,
  and a credential carries its ledger entry with a tlog-proof against a signed (and witnessed)
  checkpoint, so a forgery about a record that does not exist fails those checks.  Verifiers
  that can go online should, for certificates signed by a compromised key.
* **Times are whole seconds, UTC.**  QR tokens carry Unix seconds and credentials carry
  ``dateTimeStamp`` values without fractions, so keeping key times at second precision makes
  every comparison exact and the JWKS round trip lossless (:class:`IssuingKeyInfo` refuses
  fractions; the issuing service truncates).
* **The kid is derived from the key**: the first :data:`KID_BYTES` bytes of the RFC 7638 JWK
  thumbprint, base64url (8 characters).  A published key set therefore cannot label one key
  with another key's kid, and the QR token can carry the kid in 6 bytes.
* **At most one key is active** at any time; signers ask for it (:attr:`KeySet.active`).
* In the DID document a compromised key keeps its verification method (so a resolver can still
  say *why* it fails) with the Controlled Identifiers ``revoked`` time, and leaves
  ``assertionMethod``; retired keys stay in ``assertionMethod`` so that generic VC verifiers keep
  accepting credentials signed before a rotation.  The full rules above need the JWKS (or this
  module); a generic verifier gets the fail-closed approximation.

Pure code: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast
from urllib.parse import quote, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.canonical import parse_json
from ledger.errors import FormatError, LedgerError

__all__ = [
    "DID_CONTEXTS",
    "KID_BYTES",
    "STATUSES",
    "IssuingKeyInfo",
    "IssuingSigner",
    "KeyCompromisedError",
    "KeyNotYetValidError",
    "KeyRetiredError",
    "KeySet",
    "KeySetError",
    "KeyStatus",
    "UnknownKidError",
    "did_web",
    "did_web_url",
    "format_time",
    "jwk_thumbprint",
    "kid_for",
    "public_multikey",
]

KeyStatus = Literal["active", "retired", "compromised"]
STATUSES: Final[tuple[KeyStatus, ...]] = ("active", "retired", "compromised")

#: Bytes of the RFC 7638 thumbprint kept as the kid (48 bits: unique among one issuer's keys,
#: and short enough for the QR token).
KID_BYTES: Final = 6
_KID = re.compile(r"[A-Za-z0-9_-]{8}")
_ED25519_BYTES: Final = 32
_ED25519_PUB_MULTICODEC: Final = b"\xed\x01"
_B58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")

DID_CONTEXTS: Final = ("https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1")


# --- errors ----------------------------------------------------------------------------------


class KeySetError(LedgerError):
    """A key cannot be used for a signature (unknown, retired, compromised, not yet created),
    or a key set is malformed."""


class UnknownKidError(KeySetError):
    def __init__(self, kid: str, known: Iterable[str]) -> None:
        self.kid = kid
        super().__init__(
            f"unknown issuing key {kid!r}: expected one of {sorted(known)}, found none by that kid"
        )


class KeyCompromisedError(KeySetError):
    def __init__(self, kid: str, signed_at: datetime, compromised_at: datetime) -> None:
        self.kid, self.signed_at, self.compromised_at = kid, signed_at, compromised_at
        super().__init__(
            f"issuing key {kid!r} is compromised from {format_time(compromised_at)}: expected a "
            f"signature made before then, found one made at {_show_time(signed_at)}"
        )


class KeyRetiredError(KeySetError):
    def __init__(self, kid: str, signed_at: datetime, retired_at: datetime) -> None:
        self.kid, self.signed_at, self.retired_at = kid, signed_at, retired_at
        super().__init__(
            f"issuing key {kid!r} was retired at {format_time(retired_at)}: expected a "
            f"signature made before then, found one made at {_show_time(signed_at)}"
        )


class KeyNotYetValidError(KeySetError):
    def __init__(self, kid: str, signed_at: datetime, created_at: datetime) -> None:
        self.kid, self.signed_at, self.created_at = kid, signed_at, created_at
        super().__init__(
            f"issuing key {kid!r} was created at {format_time(created_at)}: expected a "
            f"signature made since then, found one claiming {_show_time(signed_at)}"
        )


# --- encodings -------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise FormatError(f"{what}: expected unpadded base64url text, found {text!r}")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what}: expected unpadded base64url text, found {text!r}") from exc
    if _b64url(data) != text:
        # Non-zero trailing bits: two spellings of one key would defeat the kid binding.
        raise FormatError(f"{what}: expected canonical base64url, found {text!r}")
    return data


def _b58encode(data: bytes) -> str:
    # A second, encode-only base58-btc (the ledger may not import ``verification``); the tests
    # check it against ``verification.multibase``.
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58[remainder])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def public_multikey(public_key: bytes) -> str:
    """The Ed25519 public Multikey (``z6Mk…``) of a raw 32-byte public key."""
    _check_public_key(public_key)
    return "z" + _b58encode(_ED25519_PUB_MULTICODEC + public_key)


def jwk_thumbprint(public_key: bytes) -> bytes:
    """RFC 7638 SHA-256 thumbprint of the Ed25519 OKP JWK of ``public_key`` (RFC 8037 §2)."""
    _check_public_key(public_key)
    # Required members only, lexicographic order, no whitespace (RFC 7638 §3.2).
    members = f'{{"crv":"Ed25519","kty":"OKP","x":"{_b64url(public_key)}"}}'
    return hashlib.sha256(members.encode("ascii")).digest()


def kid_for(public_key: bytes) -> str:
    """The kid of an issuing key: base64url of the first 6 bytes of its JWK thumbprint."""
    return _b64url(jwk_thumbprint(public_key)[:KID_BYTES])


def format_time(at: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (an XML Schema dateTimeStamp and an RFC 3339 time)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _show_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at.tzinfo else repr(at)


def _parse_time(text: Any, what: str) -> datetime:
    if not isinstance(text, str) or not _STAMP.fullmatch(text):
        raise FormatError(f"{what}: expected a UTC time 'YYYY-MM-DDTHH:MM:SSZ', found {text!r}")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise FormatError(f"{what}: expected a real calendar time, found {text!r}") from None


def _check_public_key(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != _ED25519_BYTES:
        found = len(public_key) if isinstance(public_key, bytes) else type(public_key).__name__
        raise FormatError(f"Ed25519 public key: expected 32 raw bytes, found {found}")


def _check_time(at: datetime | None, what: str) -> None:
    if at is None:
        return
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise FormatError(f"{what}: expected a timezone-aware datetime, found {at!r}")
    if at.microsecond:
        raise FormatError(f"{what}: expected whole seconds, found {at.isoformat()}")


# --- DIDs ------------------------------------------------------------------------------------


def did_web(public_url: str) -> str:
    """The did:web DID of a public URL or bare host (``https://a.cn:8443/x`` →
    ``did:web:a.cn%3A8443:x``), as the did:web method spells it."""
    text = public_url if "://" in public_url else f"https://{public_url}"
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if not host:
        raise FormatError(f"public URL: expected a URL with a host, found {public_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise FormatError(
            f"public URL: expected scheme, host, port and path only, found {public_url!r}"
        )
    authority = host if parts.port is None else f"{host}%3A{parts.port}"
    segments = [quote(unquote(s), safe="") for s in parts.path.split("/") if s]
    return ":".join(["did:web", authority, *segments])


def did_web_url(did: str) -> str:
    """The HTTPS base URL a did:web DID names (``did:web:a.cn%3A8443:x`` → ``https://a.cn:8443/x``)."""
    if not isinstance(did, str) or not did.startswith("did:web:") or len(did) <= len("did:web:"):
        raise FormatError(f"issuer DID: expected 'did:web:<host>', found {did!r}")
    authority, *segments = did[len("did:web:") :].split(":")
    if not authority or "/" in authority or "#" in did or any(not s for s in segments):
        raise FormatError(f"issuer DID: expected 'did:web:<host>[:<path>]', found {did!r}")
    path = "".join("/" + s for s in segments)
    return f"https://{unquote(authority)}{path}"


# --- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuingKeyInfo:
    """One issuing key's public half and its life.  Times are aware, whole seconds."""

    kid: str
    public_key: bytes
    status: KeyStatus
    created_at: datetime
    retired_at: datetime | None = None
    compromised_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_public_key(self.public_key)
        expected_kid = kid_for(self.public_key)
        if self.kid != expected_kid:
            raise FormatError(
                f"issuing key kid: expected {expected_kid!r} (derived from its public key), "
                f"found {self.kid!r}"
            )
        if self.status not in STATUSES:
            raise FormatError(
                f"issuing key {self.kid!r} status: expected one of {list(STATUSES)}, "
                f"found {self.status!r}"
            )
        _check_time(self.created_at, f"issuing key {self.kid!r} created_at")
        _check_time(self.retired_at, f"issuing key {self.kid!r} retired_at")
        _check_time(self.compromised_at, f"issuing key {self.kid!r} compromised_at")
        # The status must agree with the times, so that no reader has to choose between them.
        expect_retired = self.status == "retired"
        if self.status == "active" and (self.retired_at or self.compromised_at):
            raise FormatError(
                f"issuing key {self.kid!r}: expected no retired_at/compromised_at on an active "
                "key, found one"
            )
        if expect_retired and (self.retired_at is None or self.compromised_at is not None):
            raise FormatError(
                f"issuing key {self.kid!r}: expected a retired key to have retired_at and no "
                f"compromised_at, found retired_at={self.retired_at!r}, "
                f"compromised_at={self.compromised_at!r}"
            )
        if self.status == "compromised" and self.compromised_at is None:
            raise FormatError(
                f"issuing key {self.kid!r}: expected a compromised key to have compromised_at, "
                "found none"
            )
        if self.retired_at is not None and self.retired_at < self.created_at:
            raise FormatError(
                f"issuing key {self.kid!r}: expected retired_at >= created_at "
                f"({format_time(self.created_at)}), found {format_time(self.retired_at)}"
            )

    @property
    def multikey(self) -> str:
        return public_multikey(self.public_key)

    def verifier(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)

    def to_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(self.public_key),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
            # Our members (RFC 7517 §4 lets a JWK carry more; readers ignore what they do not
            # know).  They carry the rules of KeySet.key_for.
            "status": self.status,
            "created_at": format_time(self.created_at),
        }
        if self.retired_at is not None:
            jwk["retired_at"] = format_time(self.retired_at)
        if self.compromised_at is not None:
            jwk["compromised_at"] = format_time(self.compromised_at)
        return jwk

    @classmethod
    def from_jwk(cls, jwk: Any) -> IssuingKeyInfo:
        if not isinstance(jwk, Mapping):
            raise FormatError(f"JWK: expected a JSON object, found {type(jwk).__name__}")
        if "d" in jwk:
            # A published private key is an incident, not a format nit: say so.
            raise FormatError(
                "JWK: expected a public key, found PRIVATE key material ('d'); never publish it"
            )
        for name, want in (("kty", "OKP"), ("crv", "Ed25519"), ("use", "sig")):
            if jwk.get(name) != want:
                raise FormatError(f"JWK {name}: expected {want!r}, found {jwk.get(name)!r}")
        if "alg" in jwk and jwk["alg"] != "EdDSA":
            raise FormatError(f"JWK alg: expected 'EdDSA', found {jwk['alg']!r}")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            raise FormatError(f"JWK kid: expected 8 base64url characters, found {kid!r}")
        public_key = _b64url_decode(jwk.get("x"), f"JWK {kid} x")
        status = jwk.get("status")
        if status not in STATUSES:
            raise FormatError(
                f"JWK {kid} status: expected one of {list(STATUSES)}, found {status!r}"
            )
        return cls(
            kid=kid,
            public_key=public_key,
            status=cast("KeyStatus", status),
            created_at=_parse_time(jwk.get("created_at"), f"JWK {kid} created_at"),
            retired_at=_optional_time(jwk, "retired_at", kid),
            compromised_at=_optional_time(jwk, "compromised_at", kid),
        )


def _optional_time(jwk: Mapping[str, Any], name: str, kid: str) -> datetime | None:
    return None if name not in jwk else _parse_time(jwk[name], f"JWK {kid} {name}")


@dataclass(frozen=True, slots=True, repr=False)
class IssuingSigner:
    """The active issuing key's private half and its kid (what signs tokens and credentials)."""

    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        expected = kid_for(self.public_key_bytes)
        if self.kid != expected:
            raise FormatError(
                f"issuing signer kid: expected {expected!r} (derived from its key), "
                f"found {self.kid!r}"
            )

    def __repr__(self) -> str:
        return f"IssuingSigner(kid={self.kid!r})"

    @property
    def public_key_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    @classmethod
    def generate(cls) -> IssuingSigner:
        key = Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(kid_for(raw), key)


# --- the set ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeySet:
    """Every issuing key the issuer ever had, with its status (see the module rules)."""

    keys: tuple[IssuingKeyInfo, ...]
    _by_kid: dict[str, IssuingKeyInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = tuple(self.keys)
        by_kid: dict[str, IssuingKeyInfo] = {}
        for key in keys:
            if not isinstance(key, IssuingKeyInfo):
                raise FormatError(
                    f"key set: expected IssuingKeyInfo items, found {type(key).__name__}"
                )
            if key.kid in by_kid:
                raise FormatError(f"key set: expected unique kids, found {key.kid!r} twice")
            by_kid[key.kid] = key
        active = [k.kid for k in keys if k.status == "active"]
        if len(active) > 1:
            raise FormatError(f"key set: expected at most one active key, found {active}")
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "_by_kid", by_kid)

    @property
    def active(self) -> IssuingKeyInfo | None:
        return next((k for k in self.keys if k.status == "active"), None)

    def kids(self) -> list[str]:
        return [k.kid for k in self.keys]

    def get(self, kid: str) -> IssuingKeyInfo:
        try:
            return self._by_kid[kid]
        except (KeyError, TypeError):
            raise UnknownKidError(str(kid), self._by_kid) from None

    def key_for(self, kid: str, signed_at: datetime) -> IssuingKeyInfo:
        """The key ``kid`` if it may have made a signature at ``signed_at`` (rules 1–4)."""
        if not isinstance(signed_at, datetime) or signed_at.tzinfo is None:
            raise FormatError(
                f"signing time: expected a timezone-aware datetime, found {signed_at!r}"
            )
        key = self.get(kid)
        if key.compromised_at is not None and signed_at >= key.compromised_at:
            raise KeyCompromisedError(kid, signed_at, key.compromised_at)
        if key.retired_at is not None and signed_at >= key.retired_at:
            raise KeyRetiredError(kid, signed_at, key.retired_at)
        if signed_at < key.created_at:
            raise KeyNotYetValidError(kid, signed_at, key.created_at)
        return key

    # -- JWKS -------------------------------------------------------------------------------
    def to_jwks(self) -> dict[str, Any]:
        return {"keys": [k.to_jwk() for k in self.keys]}

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any] | str | bytes) -> KeySet:
        """Parse a JWKS (an object or its JSON text) strictly; ``FormatError`` on any problem."""
        if isinstance(jwks, str | bytes):
            # Strict: duplicate members are refused (parsers disagree on which one wins).
            jwks = parse_json(jwks)
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise FormatError("JWKS: expected an object with a 'keys' list, found none")
        return cls(tuple(IssuingKeyInfo.from_jwk(k) for k in jwks["keys"]))

    # -- did:web ----------------------------------------------------------------------------
    def did_document(self, did: str) -> dict[str, Any]:
        """The did:web DID document for ``did`` (``did:web:<host>``), served by the issuer at
        ``https://<host>/.well-known/did.json``."""
        did_web_url(did)  # refuses anything that is not a did:web DID
        methods: list[dict[str, Any]] = []
        assertion: list[str] = []
        for key in sorted(self.keys, key=lambda k: (k.created_at, k.kid)):
            method: dict[str, Any] = {
                "id": f"{did}#{key.kid}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": key.multikey,
            }
            if key.compromised_at is not None:
                method["revoked"] = format_time(key.compromised_at)
            else:
                assertion.append(method["id"])
            methods.append(method)
        return {
            "@context": list(DID_CONTEXTS),
            "id": did,
            "verificationMethod": methods,
            "assertionMethod": assertion,
        }
