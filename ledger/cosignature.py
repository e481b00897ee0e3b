"""Witness cosignatures (c2sp.org/tlog-cosignature, Ed25519 ``cosignature/v1``).

A cosignature is a signed-note signature line of signature type ``0x04``::

    — <cosigner name> base64(key ID ‖ u64 BE timestamp ‖ Ed25519 signature)

    key ID  = SHA-256(name ‖ 0x0A ‖ 0x04 ‖ 32-byte public key)[:4]
    message = "cosignature/v1\\n" ‖ "time <timestamp>\\n" ‖ <checkpoint note text>

:class:`CosignatureVerifier` implements :class:`ledger.note.Verifier`, so a note holding a log
signature and witness cosignatures opens with one :func:`ledger.note.open_note` call given both
kinds of verifier; unknown lines (e.g. a log's ECDSA signature) are ignored there.

Rules enforced by :meth:`CosignatureVerifier.verify` (``sig`` is the line's bytes after the
key ID), in order:

1. ``sig`` is exactly 8 + 64 bytes.
2. The timestamp (first 8 bytes, big-endian) is at most 2**63 - 1.
3. The Ed25519 signature verifies over the message above, the timestamp written in ASCII
   decimal without leading zeroes.

Any failure is a :class:`~ledger.errors.SignatureError`.  Future timestamps are not rejected
here (the spec makes that optional); read them with :meth:`CosignatureVerifier.timestamp_of`.

Rules enforced by :meth:`CosignatureVerifier.from_vkey`, in order: the vkey syntax of
:func:`ledger.note.split_vkey`; type byte ``0x04``; a 32-byte key; the key ID in the text
equals the computed one.  Signer keys (``skey``) use the Go note format with type ``0x04``:
``PRIVATE+KEY+<name>+<hex id>+<base64(0x04 ‖ 32-byte seed)>``.

Rules enforced by :meth:`CosignatureSigner.cosign`, in order: the text parses as a checkpoint
(:meth:`ledger.checkpoint.Checkpoint.parse`, so a full signed note is refused); the timestamp
is an int in 0..2**63 - 1.

Pure code: no I/O, no clock (callers pass the timestamp).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.checkpoint import Checkpoint
from ledger.errors import FormatError, SignatureError
from ledger.note import (
    ALG_ED25519,
    Ed25519KeyPair,
    Ed25519PublicKeyName,
    Note,
    NoteVerifier,
    Verifier,
    format_signature_line,
    split_vkey,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "MAX_TIMESTAMP",
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosigned_message",
    "verified_cosignatures",
    "verifier_from_vkey",
]

ALG_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = (1 << 63) - 1
_SIG_LEN = 8 + 64
_SKEY_PREFIX = "PRIVATE+KEY+"


def _check_timestamp(timestamp: int) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise FormatError(f"cosignature timestamp: expected int, found {type(timestamp).__name__}")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise FormatError(f"cosignature timestamp: expected 0..{MAX_TIMESTAMP}, found {timestamp}")
    return timestamp


def cosigned_message(checkpoint_text: str | bytes, timestamp: int) -> bytes:
    """``"cosignature/v1\\ntime <ts>\\n" + checkpoint_text`` as bytes."""
    body = checkpoint_text.encode("utf-8") if isinstance(checkpoint_text, str) else checkpoint_text
    return b"cosignature/v1\ntime %d\n" % _check_timestamp(timestamp) + body


@dataclass(frozen=True)
class CosignatureVerifier(Ed25519PublicKeyName):
    """An Ed25519 ``cosignature/v1`` (type 0x04) verifier; a :class:`ledger.note.Verifier`."""

    ALG = ALG_COSIGNATURE_V1
    KIND = "cosigner key"

    @staticmethod
    def timestamp_of(sig: bytes) -> int:
        """The timestamp of a cosignature (``sig`` without its key ID); FormatError if bad."""
        if len(sig) != _SIG_LEN:
            raise FormatError(f"cosignature: expected {_SIG_LEN} bytes, found {len(sig)}")
        ts = int.from_bytes(sig[:8], "big")
        if ts > MAX_TIMESTAMP:
            raise FormatError(
                f"cosignature timestamp: expected at most {MAX_TIMESTAMP}, found {ts}"
            )
        return ts

    def verify(self, msg: bytes, sig: bytes) -> None:
        """Verify a cosignature over checkpoint text ``msg``; raise SignatureError if bad."""
        try:
            ts = self.timestamp_of(sig)
        except FormatError as exc:
            raise SignatureError(f"cosignature by {self.name!r}: {exc}") from exc
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                sig[8:], cosigned_message(msg, ts)
            )
        except (InvalidSignature, ValueError) as exc:
            raise SignatureError(
                f"cosignature by {self.name!r} ({self.key_id.hex()}) at time {ts}: expected a "
                f"valid Ed25519 cosignature/v1 over the checkpoint, found one that does not verify"
            ) from exc


class CosignatureSigner(Ed25519KeyPair):
    """An Ed25519 ``cosignature/v1`` signer (a witness key)."""

    ALG = ALG_COSIGNATURE_V1
    KIND = "cosigner signer key"
    __slots__ = ()

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self._name, self._public_key)

    def sign(self, msg: bytes, timestamp: int) -> bytes:
        """``u64 BE timestamp ‖ Ed25519(cosigned_message(msg, timestamp))`` (no key ID)."""
        ts = _check_timestamp(timestamp)
        return ts.to_bytes(8, "big") + self._key.sign(cosigned_message(msg, ts))

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """Cosign a checkpoint note text; return the signature line ``"— name b64\\n"``."""
        Checkpoint.parse(checkpoint_text)
        sig = self.sign(checkpoint_text.encode("utf-8"), timestamp)
        return format_signature_line(self._name, self._key_id, sig)


def verifier_from_vkey(text: str) -> Verifier:
    """A verifier for a vkey of type 0x01 (Ed25519 note) or 0x04 (Ed25519 cosignature/v1)."""
    _name, _key_id, alg, _pub = split_vkey(text)
    if alg == ALG_ED25519:
        return NoteVerifier.from_vkey(text)
    if alg == ALG_COSIGNATURE_V1:
        return CosignatureVerifier.from_vkey(text)
    raise FormatError(
        f"verifier key type: expected 0x{ALG_ED25519:02x} or 0x{ALG_COSIGNATURE_V1:02x}, "
        f"found 0x{alg:02x}"
    )


def verified_cosignatures(
    note: Note, verifiers: Sequence[Verifier]
) -> list[tuple[CosignatureVerifier, int]]:
    """(cosigner, timestamp) for each cosignature in ``note.verified`` by a given verifier.

    ``note`` must come from :func:`ledger.note.open_note`: only its ``verified`` list is read.
    """
    by_id = {(v.name, v.key_id): v for v in verifiers if isinstance(v, CosignatureVerifier)}
    out: list[tuple[CosignatureVerifier, int]] = []
    for s in note.verified:
        v = by_id.get((s.name, s.key_id))
        if v is not None:
            out.append((v, CosignatureVerifier.timestamp_of(s.sig)))
    return out
