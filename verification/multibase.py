"""base58-btc, multibase, Ed25519 Multikey and did:key encodings.

These are the key and signature encodings the W3C Data Integrity EdDSA cryptosuites use
(vc-di-eddsa §2.1, Controlled Identifiers "Multikey", the did:key method).

Rules and invariants
--------------------
* base58-btc uses the Bitcoin alphabet (no ``0``, ``O``, ``I``, ``l``); each leading zero byte
  is one leading ``1``.  Encoding is a bijection, so decoding is strict: any other character
  raises :class:`~verification.errors.EncodingError` naming it and its position.
* Decoding is quadratic in the input length, so inputs longer than :data:`MAX_BASE58_CHARS`
  are refused before any arithmetic (a hostile multi-megabyte ``proofValue`` must not stall a
  verifier).  Keys and signatures are under 100 characters.
* Multibase here means base58-btc only: the prefix must be ``z``.  Other multibase prefixes
  are refused rather than decoded, because the specs this project follows allow nothing else.
* An Ed25519 public Multikey is ``z`` + base58btc(0xed 0x01 ‖ 32-byte key), which always
  starts ``z6Mk``.  A secret key Multikey is ``z`` + base58btc(0x80 0x26 ‖ 32-byte seed)
  (multicodec ``ed25519-priv``, 0x1300).  Decoders check the prefix *and* the exact length,
  and a public-key decoder handed a secret key says so instead of "wrong prefix".
* An Ed25519 did:key is ``did:key:`` + public Multikey; its one verification method id is the
  DID, ``#``, and the same Multikey again.

Pure code: no I/O.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from verification.errors import EncodingError

__all__ = [
    "DID_KEY_PREFIX",
    "ED25519_PRIV_MULTICODEC",
    "ED25519_PUB_MULTICODEC",
    "MAX_BASE58_CHARS",
    "b58decode",
    "b58encode",
    "decode_did_key",
    "decode_ed25519_multikey",
    "decode_ed25519_private_multikey",
    "did_key",
    "did_key_verification_method",
    "encode_ed25519_multikey",
    "encode_ed25519_private_multikey",
    "multibase_decode",
    "multibase_encode",
]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DIGIT = {char: value for value, char in enumerate(_ALPHABET)}

#: Longest base58 text accepted for decoding (see the module docstring).
MAX_BASE58_CHARS = 4096

#: Multicodec ``ed25519-pub`` (0xed) as an unsigned varint.
ED25519_PUB_MULTICODEC = b"\xed\x01"
#: Multicodec ``ed25519-priv`` (0x1300) as an unsigned varint.
ED25519_PRIV_MULTICODEC = b"\x80\x26"

DID_KEY_PREFIX = "did:key:"

_MULTIBASE_BASE58BTC = "z"
_ED25519_KEY_BYTES = 32


def b58encode(data: bytes) -> str:
    """Encode bytes as base58-btc (no multibase prefix)."""
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_ALPHABET[remainder])
    # Leading zero bytes carry no numeric value, so base58 spells each one as "1".
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode base58-btc text (no multibase prefix); raise ``EncodingError`` on any bad input."""
    if len(text) > MAX_BASE58_CHARS:
        raise EncodingError(
            f"base58btc text too long: expected at most {MAX_BASE58_CHARS} characters, "
            f"found {len(text)}"
        )
    number = 0
    for position, char in enumerate(text):
        digit = _DIGIT.get(char)
        if digit is None:
            raise EncodingError(
                f"invalid base58btc character {char!r} at position {position}: expected one of "
                f"the Bitcoin alphabet {_ALPHABET!r}"
            )
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def multibase_encode(data: bytes) -> str:
    """Encode bytes as a base58-btc multibase string (``z…``)."""
    return _MULTIBASE_BASE58BTC + b58encode(data)


def multibase_decode(text: str) -> bytes:
    """Decode a base58-btc multibase string (``z…``); other multibase encodings are refused."""
    if not text:
        raise EncodingError("empty multibase value: expected 'z' followed by base58btc text")
    if text[0] != _MULTIBASE_BASE58BTC:
        raise EncodingError(
            f"unsupported multibase prefix: expected 'z' (base58-btc), found {text[0]!r}"
        )
    return b58decode(text[1:])


def encode_ed25519_multikey(public_key: Ed25519PublicKey) -> str:
    """Return the public Multikey (``z6Mk…``) of an Ed25519 public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return multibase_encode(ED25519_PUB_MULTICODEC + raw)


def decode_ed25519_multikey(text: str) -> Ed25519PublicKey:
    """Parse an Ed25519 public Multikey (``z6Mk…``) into a public key."""
    payload = multibase_decode(text)
    if payload.startswith(ED25519_PRIV_MULTICODEC):
        # Say it plainly: a published secret key is an incident, not a format nit.
        raise EncodingError(
            "expected an Ed25519 public Multikey (multicodec 0xed01), found a SECRET key "
            "(multicodec ed25519-priv 0x8026); never publish it"
        )
    _check_multikey(payload, ED25519_PUB_MULTICODEC, "ed25519-pub 0xed01")
    return Ed25519PublicKey.from_public_bytes(payload[len(ED25519_PUB_MULTICODEC) :])


def encode_ed25519_private_multikey(private_key: Ed25519PrivateKey) -> str:
    """Return the secret-key Multikey (``z3u2…``) holding the key's 32-byte seed."""
    raw = private_key.private_bytes_raw()
    return multibase_encode(ED25519_PRIV_MULTICODEC + raw)


def decode_ed25519_private_multikey(text: str) -> Ed25519PrivateKey:
    """Parse an Ed25519 secret-key Multikey (``z3u2…``) into a private key."""
    payload = multibase_decode(text)
    _check_multikey(payload, ED25519_PRIV_MULTICODEC, "ed25519-priv 0x8026")
    return Ed25519PrivateKey.from_private_bytes(payload[len(ED25519_PRIV_MULTICODEC) :])


def did_key(public_key: Ed25519PublicKey) -> str:
    """Return the did:key DID of an Ed25519 public key (``did:key:z6Mk…``)."""
    return DID_KEY_PREFIX + encode_ed25519_multikey(public_key)


def did_key_verification_method(public_key: Ed25519PublicKey) -> str:
    """Return the verification method id of an Ed25519 did:key (``did:key:z6Mk…#z6Mk…``)."""
    multikey = encode_ed25519_multikey(public_key)
    return f"{DID_KEY_PREFIX}{multikey}#{multikey}"


def decode_did_key(did: str) -> Ed25519PublicKey:
    """Parse an Ed25519 did:key DID (no fragment) into its public key."""
    if not did.startswith(DID_KEY_PREFIX):
        raise EncodingError(f"expected a DID starting with {DID_KEY_PREFIX!r}, found {did!r}")
    return decode_ed25519_multikey(did[len(DID_KEY_PREFIX) :])


def _check_multikey(payload: bytes, prefix: bytes, codec: str) -> None:
    expected = len(prefix) + _ED25519_KEY_BYTES
    if not payload.startswith(prefix):
        raise EncodingError(
            f"expected multicodec {codec} (bytes {prefix.hex()}), "
            f"found bytes {payload[: len(prefix)].hex() or '(none)'}"
        )
    if len(payload) != expected:
        raise EncodingError(
            f"expected {expected} bytes ({codec} prefix + 32-byte key), found {len(payload)}"
        )
