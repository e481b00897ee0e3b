"""Signed notes (c2sp.org/signed-note) with Ed25519 keys, and the verifier protocol.

A signed note is a text, a blank line, and one or more signature lines::

    <text ending in "\\n">
    <blank line>
    — <key name> <base64(4-byte key ID ‖ signature)>

Rules enforced by :func:`parse_note` (syntax only, nothing is trusted), in order:

1. The note is at most :data:`MAX_NOTE_SIZE` bytes once UTF-8 encoded.
2. Bytes input must be valid UTF-8; a ``str`` must be encodable as UTF-8 (no lone surrogates).
3. No ASCII control character (below U+0020) other than newline appears anywhere.
4. The text ends at the **last** blank line (``"\\n\\n"``); there must be one.  The text keeps
   its final newline, the separating blank line belongs to neither part.
5. The signature block is non-empty and ends with a newline.
6. There are at most :data:`MAX_SIGNATURES` signature lines.
7. Each signature line starts with U+2014 EM DASH and a space, then a key name, one space and
   standard, padded, canonical base64 (RFC 4648 §4) of at least 5 bytes: a 4-byte key ID
   followed by the signature.
8. Key names are non-empty and contain no ``+``, no Unicode whitespace, no control character.

Rules enforced by :func:`open_note`, after all of the above, in order:

9. The verifiers given are distinct by (name, key ID).
10. A signature line whose (name, key ID) matches no verifier is ignored (kept in
    ``Note.sigs``, never in ``Note.verified``), even when its name or its ID alone matches.
11. A known key may sign a note only once: a second line with the same (name, key ID) is a
    :class:`~ledger.errors.FormatError`.
12. Every signature from a known key must verify, or the whole note is rejected with
    :class:`~ledger.errors.SignatureError`.
13. At least one signature from a known key must be present, else
    :class:`~ledger.errors.SignatureError`.

Rules enforced by :func:`sign_note` on the text it signs, in order: it is a ``str`` that
encodes to at most :data:`MAX_NOTE_SIZE` bytes of UTF-8, is non-empty, ends with a newline and
contains no other control character; at least one signer is given; signers are distinct by
(name, key ID); and the finished note must satisfy rule 6.

Verifier keys (``vkey``) are ``<name>+<8 hex key ID>+<base64(type byte ‖ public key)>``; the
base64 part may itself contain ``+`` so only the first two ``+`` split.  Rules enforced by
:func:`split_vkey`, in order: three parts; a valid name (rule 8); exactly 8 hex digits;
canonical base64 that decodes to at least one byte.  :meth:`NoteVerifier.from_vkey` then
requires type byte ``0x01`` and a 32-byte Ed25519 key, and that the key ID in the text equals
SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4].

Signer keys (``skey``) use the Go ``golang.org/x/mod/sumdb/note`` format
``PRIVATE+KEY+<name>+<8 hex key ID>+<base64(type byte ‖ 32-byte seed)>`` with the same rules.

Other key types plug in through the :class:`Verifier` protocol (see
``ledger.cosignature.CosignatureVerifier`` for the 0x04 witness cosignature type).

Pure code: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import FormatError, LedgerError, SignatureError

__all__ = [
    "ALG_ED25519",
    "EM_DASH",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "SIG_PREFIX",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "Signer",
    "Verifier",
    "add_signature_lines",
    "check_key_name",
    "compute_key_id",
    "decode_base64",
    "format_signature_line",
    "open_note",
    "parse_note",
    "sign_note",
    "split_skey",
    "split_vkey",
]

EM_DASH = "\u2014"
SIG_PREFIX = EM_DASH + " "
ALG_ED25519 = 0x01
MAX_NOTE_SIZE = 1 << 20
"""Largest note accepted or produced, in bytes of UTF-8 (1 MiB)."""
MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (the spec requires accepting at least 16)."""

_SKEY_PREFIX = "PRIVATE+KEY+"
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_ED25519_KEY_LEN = 32
_ED25519_SIG_LEN = 64


# --------------------------------------------------------------------------------------------
# Small shared helpers
# --------------------------------------------------------------------------------------------


def decode_base64(text: str, what: str) -> bytes:
    """Decode standard padded base64, rejecting anything non-canonical.

    Raises :class:`FormatError` naming ``what`` when ``text`` is not exactly the encoding of
    the bytes it decodes to (stray characters, missing padding, non-zero padding bits).
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise FormatError(f"{what}: expected standard base64, found {text[:80]!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError(f"{what}: expected canonical padded base64, found {text[:80]!r}")
    return raw


def check_key_name(name: str) -> None:
    """Raise :class:`FormatError` unless ``name`` is a valid signed-note key name."""
    if not isinstance(name, str) or name == "":
        raise FormatError(f"key name: expected a non-empty string, found {name!r}")
    for ch in name:
        if ch == "+" or ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise FormatError(
                f"key name: expected no '+', whitespace or control characters, "
                f"found {ch!r} in {name[:80]!r}"
            )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FormatError(f"key name: expected valid Unicode, found {name[:80]!r}") from exc


def compute_key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """Key ID = SHA-256(name ‖ 0x0A ‖ alg ‖ public key)[:4]."""
    data = name.encode("utf-8") + b"\n" + bytes([alg]) + public_key
    return hashlib.sha256(data).digest()[:4]


def _split_key_text(text: str, what: str) -> tuple[str, bytes, bytes]:
    """Split ``<name>+<hex id>+<base64 key>`` and check each part's syntax."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise FormatError(
            f"{what}: expected '<name>+<8 hex key ID>+<base64 key>', found {text[:80]!r}"
        )
    name, hex_id, b64 = parts
    check_key_name(name)
    if not _HEX8.fullmatch(hex_id):
        raise FormatError(f"{what} key ID: expected 8 hex digits, found {hex_id!r}")
    key = decode_base64(b64, f"{what} key")
    if len(key) < 1:
        raise FormatError(f"{what} key: expected a type byte and key material, found 0 bytes")
    return name, bytes.fromhex(hex_id), key


def split_vkey(text: str) -> tuple[str, bytes, int, bytes]:
    """Parse a verifier key's syntax: ``(name, key_id, type_byte, public_key)``."""
    if not isinstance(text, str):
        raise FormatError(f"verifier key: expected str, found {type(text).__name__}")
    name, key_id, key = _split_key_text(text.strip(), "verifier key")
    return name, key_id, key[0], key[1:]


def split_skey(text: str) -> tuple[str, bytes, int, bytes]:
    """Parse a signer key's syntax: ``(name, key_id, type_byte, private_key_material)``."""
    if not isinstance(text, str) or not text.strip().startswith(_SKEY_PREFIX):
        raise FormatError(f"signer key: expected prefix {_SKEY_PREFIX!r}, found another")
    name, key_id, key = _split_key_text(text.strip()[len(_SKEY_PREFIX) :], "signer key")
    return name, key_id, key[0], key[1:]


def format_signature_line(name: str, key_id: bytes, sig: bytes) -> str:
    """``"— <name> <base64(key_id ‖ sig)>\\n"``."""
    check_key_name(name)
    if len(key_id) != 4:
        raise FormatError(f"key ID: expected 4 bytes, found {len(key_id)}")
    return f"{SIG_PREFIX}{name} {base64.b64encode(key_id + sig).decode('ascii')}\n"


# --------------------------------------------------------------------------------------------
# Key protocols and Ed25519 keys
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Verifier(Protocol):
    """A note verifier: identified by (name, 4-byte key ID); ``verify`` raises on failure.

    ``msg`` is the note text (UTF-8, with its final newline); ``sig`` is the signature with the
    4-byte key ID already removed.
    """

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, msg: bytes, sig: bytes) -> None: ...


@runtime_checkable
class Signer(Protocol):
    """A note signer; ``sign`` returns the signature bytes without the key ID."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, msg: bytes) -> bytes: ...


@dataclass(frozen=True)
class Ed25519PublicKeyName:
    """An Ed25519 public key with a signed-note name and key ID, for a given key type.

    Shared by note verifiers (type 0x01) and witness cosignature verifiers (type 0x04,
    ``ledger.cosignature``): they differ only in the type byte and in what they verify.
    """

    ALG: ClassVar[int] = ALG_ED25519
    KIND: ClassVar[str] = "verifier key"

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _ED25519_KEY_LEN:
            found = len(self.public_key) if isinstance(self.public_key, bytes) else "non-bytes"
            raise FormatError(f"{self.KIND} {self.name!r}: expected 32 bytes, found {found}")
        object.__setattr__(self, "key_id", compute_key_id(self.name, self.ALG, self.public_key))

    @classmethod
    def from_vkey(cls, text: str) -> Self:
        """Parse ``<name>+<hex id>+<base64(type ‖ 32-byte key)>``; check the key ID."""
        name, key_id, alg, pub = split_vkey(text)
        if alg != cls.ALG:
            raise FormatError(
                f"{cls.KIND} {name!r} type: expected 0x{cls.ALG:02x}, found 0x{alg:02x}"
            )
        if len(pub) != _ED25519_KEY_LEN:
            raise FormatError(
                f"{cls.KIND} {name!r}: expected a 32-byte Ed25519 key, found {len(pub)} bytes"
            )
        verifier = cls(name, pub)
        if verifier.key_id != key_id:
            raise FormatError(
                f"{cls.KIND} {name!r} key ID: expected {verifier.key_id.hex()} "
                f"(computed from the key), found {key_id.hex()}"
            )
        return verifier

    def to_vkey(self) -> str:
        key = base64.b64encode(bytes([self.ALG]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{key}"


@dataclass(frozen=True)
class NoteVerifier(Ed25519PublicKeyName):
    """An Ed25519 (type 0x01) signed-note verifier."""

    def verify(self, msg: bytes, sig: bytes) -> None:
        if len(sig) != _ED25519_SIG_LEN:
            raise SignatureError(
                f"signature by {self.name!r}: expected {_ED25519_SIG_LEN} bytes, found {len(sig)}"
            )
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(sig, msg)
        except (InvalidSignature, ValueError) as exc:
            raise SignatureError(
                f"signature by {self.name!r} ({self.key_id.hex()}): expected a valid Ed25519 "
                f"signature over the note text, found one that does not verify"
            ) from exc


class Ed25519KeyPair:
    """An Ed25519 private key with a signed-note name and key ID, for a given key type.

    Shared by note signers (type 0x01) and witness cosigners (type 0x04,
    ``ledger.cosignature``): they differ only in the type byte and in what they sign.
    """

    ALG: ClassVar[int] = ALG_ED25519
    KIND: ClassVar[str] = "signer key"
    __slots__ = ("_key", "_key_id", "_name", "_public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self._name = name
        self._key = private_key
        self._public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._key_id = compute_key_id(name, self.ALG, self._public_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, key_id={self._key_id.hex()})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key_bytes(self) -> bytes:
        return self._public_key

    @classmethod
    def generate(cls, name: str) -> Self:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Self:
        if len(seed) != 32:
            raise FormatError(f"Ed25519 seed: expected 32 bytes, found {len(seed)}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_skey(cls, text: str) -> Self:
        """Parse ``PRIVATE+KEY+<name>+<hex id>+<base64(type ‖ 32-byte seed)>``."""
        name, key_id, alg, seed = split_skey(text)
        if alg != cls.ALG:
            raise FormatError(
                f"{cls.KIND} {name!r} type: expected 0x{cls.ALG:02x}, found 0x{alg:02x}"
            )
        signer = cls.from_seed(name, seed)
        if signer.key_id != key_id:
            raise FormatError(
                f"{cls.KIND} {name!r} key ID: expected {signer.key_id.hex()} "
                f"(computed from the key), found {key_id.hex()}"
            )
        return signer

    def to_skey(self) -> str:
        seed = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        key = base64.b64encode(bytes([self.ALG]) + seed).decode("ascii")
        return f"{_SKEY_PREFIX}{self._name}+{self._key_id.hex()}+{key}"


class NoteSigner(Ed25519KeyPair):
    """An Ed25519 (type 0x01) signed-note signer."""

    __slots__ = ()

    def sign(self, msg: bytes) -> bytes:
        return self._key.sign(msg)

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self._name, self._public_key)


# --------------------------------------------------------------------------------------------
# Notes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, signature bytes (key ID removed)."""

    name: str
    key_id: bytes
    sig: bytes

    def to_line(self) -> str:
        return format_signature_line(self.name, self.key_id, self.sig)


@dataclass(frozen=True)
class Note:
    """A parsed note.  ``verified`` is empty only for the output of :func:`parse_note`."""

    text: str
    sigs: list[NoteSignature]
    verified: list[NoteSignature]

    def require_signature(self, verifier: Verifier) -> NoteSignature:
        """Return the verified signature by ``verifier``; raise SignatureError if absent."""
        for s in self.verified:
            if s.name == verifier.name and s.key_id == verifier.key_id:
                return s
        raise SignatureError(
            f"note signatures: expected a verified one by {verifier.name!r} "
            f"({verifier.key_id.hex()}), found {_describe(self.verified) or 'none'}"
        )

    def to_text(self) -> str:
        """The note again: text, blank line, every signature line (verified or not)."""
        return self.text + "\n" + "".join(s.to_line() for s in self.sigs)


def _describe(sigs: Iterable[NoteSignature | Verifier]) -> str:
    return ", ".join(f"{s.name}+{s.key_id.hex()}" for s in sigs)


def _to_text(note: str | bytes, what: str) -> str:
    if isinstance(note, bytes | bytearray):
        if len(note) > MAX_NOTE_SIZE:
            raise FormatError(f"{what}: expected at most {MAX_NOTE_SIZE} bytes, found {len(note)}")
        try:
            return bytes(note).decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise FormatError(
                f"{what}: expected valid UTF-8, found an invalid byte at offset {exc.start}"
            ) from exc
    if not isinstance(note, str):
        raise FormatError(f"{what}: expected str or bytes, found {type(note).__name__}")
    try:
        size = len(note.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise FormatError(f"{what}: expected valid Unicode, found a lone surrogate") from exc
    if size > MAX_NOTE_SIZE:
        raise FormatError(f"{what}: expected at most {MAX_NOTE_SIZE} bytes, found {size}")
    return note


def _check_controls(text: str, what: str) -> None:
    for i, ch in enumerate(text):
        if ord(ch) < 0x20 and ch != "\n":
            raise FormatError(
                f"{what}: expected no control characters other than newline, "
                f"found {ch!r} at character {i}"
            )


def _parse_sig_line(line: str, lineno: int) -> NoteSignature:
    if not line.startswith(SIG_PREFIX):
        raise FormatError(
            f"signature line {lineno}: expected to start with U+2014 EM DASH and a space, "
            f"found {line[:20]!r}"
        )
    rest = line[len(SIG_PREFIX) :]
    name, sep, b64 = rest.partition(" ")
    if not sep or b64 == "":
        raise FormatError(
            f"signature line {lineno}: expected '— <name> <base64>', found {line[:80]!r}"
        )
    check_key_name(name)
    raw = decode_base64(b64, f"signature line {lineno}")
    if len(raw) < 5:
        raise FormatError(
            f"signature line {lineno}: expected a 4-byte key ID and a signature, "
            f"found {len(raw)} bytes"
        )
    return NoteSignature(name=name, key_id=raw[:4], sig=raw[4:])


def parse_note(note: str | bytes) -> Note:
    """Check a note's syntax (rules 1–8) and split it; verifies nothing, trusts nothing."""
    s = _to_text(note, "note")
    _check_controls(s, "note")
    split = s.rfind("\n\n")
    if split < 0:
        raise FormatError("note: expected a blank line before the signatures, found none")
    text, block = s[: split + 1], s[split + 2 :]
    if block == "":
        raise FormatError("note: expected signature lines after the blank line, found none")
    if not block.endswith("\n"):
        raise FormatError("note: expected the last signature line to end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(
            f"note: expected at most {MAX_SIGNATURES} signature lines, found {len(lines)}"
        )
    sigs = [_parse_sig_line(line, i + 1) for i, line in enumerate(lines)]
    return Note(text=text, sigs=sigs, verified=[])


def _index_keys(keys: Sequence[Verifier] | Sequence[Signer], what: str) -> None:
    seen: set[tuple[str, bytes]] = set()
    for k in keys:
        ident = (k.name, bytes(k.key_id))
        if ident in seen:
            raise LedgerError(
                f"{what}: expected distinct (name, key ID) pairs, found "
                f"{k.name}+{k.key_id.hex()} twice"
            )
        seen.add(ident)


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse ``note`` and verify it against ``verifiers`` (rules 1–13).

    Raises :class:`FormatError` for malformed notes and :class:`SignatureError` when a known
    key's signature fails or no known key signed.  ``Note.verified`` lists the signatures that
    verified, in note order.
    """
    parsed = parse_note(note)
    _index_keys(verifiers, "verifiers")
    by_id = {(v.name, bytes(v.key_id)): v for v in verifiers}
    msg = parsed.text.encode("utf-8")
    verified: list[NoteSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for sig in parsed.sigs:
        ident = (sig.name, sig.key_id)
        v = by_id.get(ident)
        if v is None:
            continue
        if ident in seen:
            raise FormatError(
                f"note: expected at most one signature by {sig.name}+{sig.key_id.hex()}, "
                f"found several"
            )
        seen.add(ident)
        v.verify(msg, sig.sig)
        verified.append(sig)
    if not verified:
        raise SignatureError(
            f"no signature from a known key: expected one of "
            f"[{_describe(verifiers)}], found [{_describe(parsed.sigs)}]"
        )
    return Note(text=parsed.text, sigs=parsed.sigs, verified=verified)


def _check_text(text: str) -> str:
    if not isinstance(text, str):
        raise FormatError(f"note text: expected str, found {type(text).__name__}")
    _to_text(text, "note text")
    if text == "" or not text.endswith("\n"):
        raise FormatError(f"note text: expected to end with a newline, found {text[-20:]!r}")
    _check_controls(text, "note text")
    return text


def sign_note(text: str, *signers: Signer) -> str:
    """Sign ``text`` with each signer and return the signed note."""
    _check_text(text)
    if not signers:
        raise LedgerError("sign_note: expected at least one signer, found none")
    if len(signers) > MAX_SIGNATURES:
        raise FormatError(
            f"sign_note: expected at most {MAX_SIGNATURES} signers, found {len(signers)}"
        )
    _index_keys(signers, "signers")
    msg = text.encode("utf-8")
    lines = "".join(format_signature_line(s.name, s.key_id, s.sign(msg)) for s in signers)
    out = text + "\n" + lines
    _to_text(out, "signed note")
    return out


def add_signature_lines(note: str, lines: str) -> str:
    """Append signature ``lines`` (e.g. a witness response) to ``note``, skipping repeats.

    Both parts are syntax-checked; a line whose (name, key ID) already signs ``note`` is
    dropped so that the result still opens.  Nothing is verified here.
    """
    parsed = parse_note(note)
    extra = parse_note("\n\n" + lines)
    have = {(s.name, s.key_id) for s in parsed.sigs}
    sigs = list(parsed.sigs)
    for s in extra.sigs:
        if (s.name, s.key_id) not in have:
            have.add((s.name, s.key_id))
            sigs.append(s)
    out = Note(text=parsed.text, sigs=sigs, verified=[]).to_text()
    parse_note(out)
    return out
