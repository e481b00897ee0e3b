"""Witnessing (c2sp.org/tlog-witness): the ``add-checkpoint`` exchange, both sides.

A witness keeps, per log origin, the latest checkpoint it cosigned, and cosigns a new
checkpoint only when it provably extends that one.  A log asks each of its witnesses by
``POST <submission prefix>/add-checkpoint`` with the body::

    old <size the witness last cosigned>
    <consistency proof hash, base64>        (zero to 63 lines)
    <blank line>
    <signed checkpoint note>

Rules enforced by :func:`parse_add_checkpoint` (400 Bad Request), in order: the body is at most
:data:`MAX_BODY_BYTES` of UTF-8; it has a blank line; the first line is ``old <decimal>`` with no
leading zero; at most 63 proof lines, each canonical base64 of 32 bytes; the rest is a signed
note (syntax only) whose text is a checkpoint.

Rules enforced by :func:`authenticate`, in order: the origin is one this witness is configured
for (404 Not Found); a signature by one of that origin's trusted keys verifies and no trusted
key's signature fails (403 Forbidden); unknown keys' signatures are ignored; ``old`` is at most
the checkpoint's size (400).

Rules enforced by :func:`check_extends`, against the latest cosigned (size, root) of the origin
(size 0 and the empty tree's root if never cosigned), in order: ``old`` equals that size (409
Conflict, the response carries the witness's size as ``text/x.tlog.size``); if the sizes are
equal the roots are equal (409, a fork); the consistency proof from that tree to the new one
verifies (422 Unprocessable Entity; from size 0 the proof must be empty).

The check and the update of the stored state must be one atomic step (else two concurrent
requests could roll the state back): see ``ledger.witness_models.add_checkpoint``.

Client side: :func:`format_add_checkpoint` builds the body, :func:`parse_size_body` reads a 409
answer, :func:`accept_cosignatures` keeps the response lines that are valid cosignatures by the
witness asked (and refuses the answer when none is).

Configuration entries (settings strings an operator types): a watched log is ``<log vkey>`` or
``<origin> <log vkey>`` (:func:`parse_watched_log`); a witness to ask is ``<witness cosigner vkey>
<submission URL prefix>`` (:func:`parse_witness_endpoint`).

Pure code: no I/O, no clock.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger import merkle
from ledger.checkpoint import Checkpoint, parse_decimal
from ledger.cosignature import CosignatureSigner, CosignatureVerifier, verified_cosignatures
from ledger.errors import FormatError, LedgerError, ProofError, SignatureError
from ledger.note import (
    MAX_NOTE_SIZE,
    Note,
    NoteSignature,
    NoteVerifier,
    add_signature_lines,
    decode_base64,
    open_note,
    parse_note,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_PROOF_LINES",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "Authenticated",
    "WitnessEndpoint",
    "WitnessError",
    "accept_cosignatures",
    "authenticate",
    "check_extends",
    "cosign",
    "format_add_checkpoint",
    "parse_add_checkpoint",
    "parse_size_body",
    "parse_watched_log",
    "parse_witness_endpoint",
    "trusted_logs",
]

MAX_PROOF_LINES = 63
"""The spec's bound: a consistency proof in a tree of at most 2**63 leaves."""
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""Content type of a 409 answer: the witness's latest cosigned size, decimal, newline."""
MAX_BODY_BYTES = MAX_NOTE_SIZE + 8 * 1024
"""A note of the largest size we accept plus the old-size and proof lines, with room."""


class WitnessError(LedgerError):
    """A refused ``add-checkpoint``: ``status`` is the HTTP status the spec prescribes,
    ``code`` a stable problem code, ``known_size`` the witness's size for a 409."""

    def __init__(self, status: int, code: str, message: str, known_size: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.known_size = known_size


def _bad(message: str) -> WitnessError:
    return WitnessError(400, "bad-request", message)


@dataclass(frozen=True)
class AddCheckpoint:
    """An ``add-checkpoint`` request: old size, consistency proof, the signed checkpoint as
    sent (its note syntax checked) and the checkpoint parsed from the note's text."""

    old: int
    proof: tuple[bytes, ...]
    note: str
    checkpoint: Checkpoint


def format_add_checkpoint(old: int, proof: Sequence[bytes], note: str) -> bytes:
    """The request body for a checkpoint note and the proof from ``old``."""
    if len(proof) > MAX_PROOF_LINES:
        raise FormatError(
            f"consistency proof: expected at most {MAX_PROOF_LINES} hashes, found {len(proof)}"
        )
    lines = [f"old {old}\n"] + [base64.b64encode(h).decode("ascii") + "\n" for h in proof]
    return ("".join(lines) + "\n" + note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body strictly; :class:`WitnessError` 400 names what is wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise _bad(f"request body: expected at most {MAX_BODY_BYTES} bytes, found {len(body)}")
    try:
        text = body.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise _bad(f"request body: expected UTF-8, found an invalid byte at {exc.start}") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise _bad(
            "request body: expected the old size and proof lines, a blank line, then the "
            "checkpoint; found no blank line"
        )
    lines = head.split("\n")
    first, proof_lines = lines[0], lines[1:]
    if not first.startswith("old "):
        raise _bad(f"old size line: expected 'old <size>', found {first[:40]!r}")
    try:
        old = parse_decimal(first[4:], "old size")
    except FormatError as exc:
        raise _bad(str(exc)) from None
    if len(proof_lines) > MAX_PROOF_LINES:
        raise _bad(
            f"consistency proof: expected at most {MAX_PROOF_LINES} lines, found {len(proof_lines)}"
        )
    proof: list[bytes] = []
    for n, line in enumerate(proof_lines, 1):
        try:
            h = decode_base64(line, f"consistency proof line {n}")
        except FormatError as exc:
            raise _bad(str(exc)) from None
        if len(h) != merkle.HASH_SIZE:
            raise _bad(
                f"consistency proof line {n}: expected a {merkle.HASH_SIZE}-byte hash, "
                f"found {len(h)} bytes"
            )
        proof.append(h)
    try:
        parsed = parse_note(note)
        checkpoint = Checkpoint.parse(parsed.text)
    except FormatError as exc:
        raise _bad(f"checkpoint: {exc}") from None
    return AddCheckpoint(old=old, proof=tuple(proof), note=note, checkpoint=checkpoint)


@dataclass(frozen=True)
class Authenticated:
    """A request whose checkpoint a trusted key of its origin signed."""

    request: AddCheckpoint
    note: Note
    signed_by: NoteVerifier


def authenticate(
    req: AddCheckpoint, trusted: Mapping[str, Sequence[NoteVerifier]]
) -> Authenticated:
    """Check origin (404), signature (403) and ``old`` against the checkpoint size (400)."""
    origin = req.checkpoint.origin
    keys = trusted.get(origin)
    if not keys:
        raise WitnessError(
            404, "unknown-log", f"origin {origin!r}: this witness is not configured for that log"
        )
    try:
        note = open_note(req.note, keys)
    except SignatureError as exc:
        raise WitnessError(403, "bad-signature", f"checkpoint of {origin!r}: {exc}") from None
    except FormatError as exc:
        raise _bad(f"checkpoint of {origin!r}: {exc}") from None
    # open_note verified at least one line, and only lines of the keys given.
    first = note.verified[0]
    signed_by = next(k for k in keys if (k.name, k.key_id) == (first.name, first.key_id))
    if req.old > req.checkpoint.size:
        raise _bad(
            f"old size: expected at most the checkpoint size {req.checkpoint.size}, found {req.old}"
        )
    return Authenticated(request=req, note=note, signed_by=signed_by)


def check_extends(req: AddCheckpoint, known_size: int, known_root: bytes) -> None:
    """Refuse unless ``req`` extends the latest cosigned tree (``known_size``, ``known_root``):
    409 for a stale ``old`` or a different root at the same size, 422 for a bad proof."""
    cp = req.checkpoint
    if req.old != known_size:
        raise WitnessError(
            409,
            "old-size-mismatch",
            f"old size: expected {known_size} (the latest size this witness cosigned for "
            f"{cp.origin!r}), found {req.old}",
            known_size=known_size,
        )
    if cp.size == known_size and cp.root_hash != known_root:
        raise WitnessError(
            409,
            "fork",
            f"checkpoint of {cp.origin!r} at size {cp.size}: expected root {known_root.hex()} "
            f"(cosigned before at that size), found {cp.root_hash.hex()}",
            known_size=known_size,
        )
    try:
        merkle.verify_consistency(known_size, cp.size, req.proof, known_root, cp.root_hash)
    except ProofError as exc:
        raise WitnessError(
            422,
            "bad-consistency-proof",
            f"checkpoint of {cp.origin!r} at size {cp.size} does not extend the cosigned tree "
            f"of size {known_size}: {exc}",
        ) from None


def cosign(signer: CosignatureSigner, req: AddCheckpoint, timestamp: int) -> str:
    """The response body: this witness's cosignature line over the checkpoint's text."""
    return signer.cosign(req.checkpoint.to_text(), timestamp)


# --------------------------------------------------------------------------------------------
# Client side (the log asking)
# --------------------------------------------------------------------------------------------


def parse_size_body(body: bytes) -> int:
    """The size in a 409 answer (``text/x.tlog.size``): decimal followed by a newline."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise FormatError(f"witness size answer: expected ASCII, found {body[:40]!r}") from None
    if not text.endswith("\n"):
        raise FormatError(f"witness size answer: expected '<size>\\n', found {text[:40]!r}")
    return parse_decimal(text[:-1], "witness size answer")


def accept_cosignatures(
    note: str, response: str, witness: CosignatureVerifier
) -> list[tuple[NoteSignature, int]]:
    """The lines of an ``add-checkpoint`` response that are cosignatures by ``witness`` over
    ``note``'s checkpoint, with their timestamps.  Lines of other keys are ignored; a line of
    ``witness``'s key that does not verify, or no line of it at all, is a SignatureError."""
    if not response.startswith("\u2014 "):
        raise FormatError(f"witness response: expected signature lines, found {response[:40]!r}")
    merged = add_signature_lines(note, response)
    opened = open_note(merged, [witness])
    got = verified_cosignatures(opened, [witness])
    return [(s, ts) for s, (_v, ts) in zip(opened.verified, got, strict=True)]


# --------------------------------------------------------------------------------------------
# Configuration entries
# --------------------------------------------------------------------------------------------


def parse_watched_log(entry: str) -> tuple[str, NoteVerifier]:
    """``<log vkey>`` (origin = key name) or ``<origin> <log vkey>`` → (origin, verifier)."""
    parts = entry.split()
    if len(parts) == 1:
        v = NoteVerifier.from_vkey(parts[0])
        return v.name, v
    if len(parts) == 2:
        Checkpoint(origin=parts[0], size=0, root_hash=merkle.EMPTY_ROOT)  # checks the origin
        return parts[0], NoteVerifier.from_vkey(parts[1])
    raise FormatError(
        f"watched log: expected '<log vkey>' or '<origin> <log vkey>', found {len(parts)} "
        f"words in {entry[:80]!r}"
    )


def trusted_logs(entries: Sequence[str]) -> dict[str, tuple[NoteVerifier, ...]]:
    """Origin → the keys trusted for it, from watched-log entries (an origin may have several)."""
    out: dict[str, tuple[NoteVerifier, ...]] = {}
    for entry in entries:
        origin, v = parse_watched_log(entry)
        if any(k.name == v.name and k.key_id == v.key_id for k in out.get(origin, ())):
            raise FormatError(f"watched log {origin!r}: key {v.to_vkey()} is listed twice")
        out[origin] = (*out.get(origin, ()), v)
    return out


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness this log asks: its cosigner key and submission URL prefix (no final slash)."""

    verifier: CosignatureVerifier
    url: str

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def key(self) -> str:
        """``name+keyid``: how the stored state and cosignatures name this witness's key."""
        return f"{self.verifier.name}+{self.verifier.key_id.hex()}"


def parse_witness_endpoint(entry: str) -> WitnessEndpoint:
    """``<witness cosigner vkey> <submission URL prefix>`` → :class:`WitnessEndpoint`."""
    parts = entry.split()
    if len(parts) != 2:
        raise FormatError(
            f"witness: expected '<cosigner vkey> <URL prefix>', found {len(parts)} words in "
            f"{entry[:80]!r}"
        )
    vkey, url = parts
    if not url.startswith(("http://", "https://")):
        raise FormatError(f"witness URL: expected http:// or https://, found {url[:80]!r}")
    return WitnessEndpoint(CosignatureVerifier.from_vkey(vkey), url.rstrip("/"))
