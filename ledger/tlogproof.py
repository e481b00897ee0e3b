"""Offline inclusion proofs (c2sp.org/tlog-proof@v1), the ``.tlog-proof`` text format::

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>          (optional, unauthenticated)
    index <zero-based leaf index>
    <base64 inclusion proof hash>       (zero or more, leaf's sibling first)

    <signed checkpoint note, verbatim>

Rules enforced by :meth:`TlogProof.parse`, in order:

1. The proof is ``str`` (or UTF-8 ``bytes``) of at most :data:`MAX_PROOF_SIZE` bytes.
2. Line 1 is exactly ``c2sp.org/tlog-proof@v1``.
3. If line 2 starts with ``extra``, it is ``extra``, one space and canonical padded base64 of
   at least one byte.
4. The next line is ``index``, one space and ASCII decimal without leading zeroes (``0``
   alone is fine), at most 2**63 - 1.
5. Then zero to :data:`MAX_PROOF_HASHES` non-empty lines, each canonical padded base64 of
   exactly 32 bytes, then one empty line.
6. Everything after that empty line is the checkpoint note; it must be a syntactically valid
   signed note (:func:`ledger.note.parse_note`) whose text is a valid checkpoint body
   (:meth:`ledger.checkpoint.Checkpoint.parse`).  Nothing is verified or trusted here.

:class:`TlogProof` enforces the same rules on construction, so ``TlogProof.parse(p.to_text())
== p`` and ``TlogProof.parse(t).to_text() == t`` for every valid ``p`` and ``t``.

Rules enforced by :meth:`TlogProof.verify`, in order: the checkpoint opens with the given
verifiers and has the expected origin (:func:`ledger.checkpoint.open_checkpoint`); the leaf
hash at ``index`` is included under the checkpoint's root at the checkpoint's size
(:func:`ledger.merkle.verify_inclusion`, which raises :class:`~ledger.errors.ProofError`).
The tree size always comes from the signed checkpoint, never from the proof's other lines.
Which signatures a caller requires (the log's own, a witness quorum) is the caller's policy:
read ``Note.verified`` from the result, e.g. with ``Note.require_signature``.

Pure code: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.checkpoint import Checkpoint, open_checkpoint, parse_decimal
from ledger.errors import FormatError
from ledger.merkle import verify_inclusion
from ledger.note import MAX_NOTE_SIZE, Note, Verifier, decode_base64, parse_note

__all__ = ["HEADER", "MAX_PROOF_HASHES", "MAX_PROOF_SIZE", "TlogProof"]

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 63
"""A tree of at most 2**63 - 1 leaves has inclusion paths of at most 63 hashes."""
MAX_PROOF_SIZE = MAX_NOTE_SIZE + (64 << 10)
"""The checkpoint note's limit plus room for the header, extra data and hashes."""
MAX_INDEX = (1 << 63) - 1


@dataclass(frozen=True)
class TlogProof:
    """A c2sp.org/tlog-proof@v1 proof: leaf index, inclusion path, signed checkpoint note."""

    index: int
    inclusion: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise FormatError(f"tlog-proof index: expected int, found {type(self.index).__name__}")
        if not 0 <= self.index <= MAX_INDEX:
            raise FormatError(f"tlog-proof index: expected 0..{MAX_INDEX}, found {self.index}")
        if not isinstance(self.inclusion, tuple):
            raise FormatError(
                f"tlog-proof inclusion: expected a tuple, found {type(self.inclusion).__name__}"
            )
        if len(self.inclusion) > MAX_PROOF_HASHES:
            raise FormatError(
                f"tlog-proof inclusion: expected at most {MAX_PROOF_HASHES} hashes, "
                f"found {len(self.inclusion)}"
            )
        for n, h in enumerate(self.inclusion):
            if not isinstance(h, bytes) or len(h) != 32:
                found = len(h) if isinstance(h, bytes) else type(h).__name__
                raise FormatError(f"tlog-proof hash {n}: expected 32 bytes, found {found}")
        if self.extra is not None and (not isinstance(self.extra, bytes) or not self.extra):
            raise FormatError(
                f"tlog-proof extra: expected None or non-empty bytes, found {self.extra!r}"
            )
        if not isinstance(self.checkpoint, str):
            raise FormatError(
                f"tlog-proof checkpoint: expected str, found {type(self.checkpoint).__name__}"
            )
        note = parse_note(self.checkpoint)
        Checkpoint.parse(note.text)

    def to_text(self) -> str:
        parts = [HEADER + "\n"]
        if self.extra is not None:
            parts.append("extra " + base64.b64encode(self.extra).decode("ascii") + "\n")
        parts.append(f"index {self.index}\n")
        parts.extend(base64.b64encode(h).decode("ascii") + "\n" for h in self.inclusion)
        parts.append("\n")
        parts.append(self.checkpoint)
        return "".join(parts)

    @classmethod
    def parse(cls, text: str | bytes) -> TlogProof:
        """Parse a ``.tlog-proof`` text strictly (rules 1–6)."""
        if isinstance(text, bytes | bytearray):
            if len(text) > MAX_PROOF_SIZE:
                raise FormatError(
                    f"tlog-proof: expected at most {MAX_PROOF_SIZE} bytes, found {len(text)}"
                )
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(
                    f"tlog-proof: expected valid UTF-8, found an invalid byte at offset {exc.start}"
                ) from exc
        if not isinstance(text, str):
            raise FormatError(f"tlog-proof: expected str or bytes, found {type(text).__name__}")
        if len(text) > MAX_PROOF_SIZE:
            raise FormatError(f"tlog-proof: expected at most {MAX_PROOF_SIZE} bytes, found more")

        pos = 0

        def next_line(what: str) -> str:
            nonlocal pos
            end = text.find("\n", pos)
            if end < 0:
                raise FormatError(f"tlog-proof: expected {what} ending in a newline, found none")
            line = text[pos:end]
            pos = end + 1
            return line

        first = next_line("the header line")
        if first != HEADER:
            raise FormatError(f"tlog-proof header: expected {HEADER!r}, found {first[:80]!r}")

        line = next_line("an extra or index line")
        extra: bytes | None = None
        if line.startswith("extra"):
            if not line.startswith("extra "):
                raise FormatError(f"tlog-proof: expected 'extra <base64>', found {line[:80]!r}")
            extra = decode_base64(line[len("extra ") :], "tlog-proof extra")
            if not extra:
                raise FormatError("tlog-proof extra: expected at least one byte, found none")
            line = next_line("the index line")

        if not line.startswith("index "):
            raise FormatError(f"tlog-proof: expected 'index <N>', found {line[:80]!r}")
        index = parse_decimal(line[len("index ") :], "tlog-proof index", MAX_INDEX)

        hashes: list[bytes] = []
        while True:
            line = next_line("an inclusion proof hash or an empty line")
            if line == "":
                break
            if len(hashes) == MAX_PROOF_HASHES:
                raise FormatError(
                    f"tlog-proof inclusion: expected at most {MAX_PROOF_HASHES} hashes, found more"
                )
            h = decode_base64(line, f"tlog-proof hash {len(hashes)}")
            if len(h) != 32:
                raise FormatError(
                    f"tlog-proof hash {len(hashes)}: expected 32 bytes, found {len(h)}"
                )
            hashes.append(h)

        return cls(index=index, inclusion=tuple(hashes), checkpoint=text[pos:], extra=extra)

    def verify(
        self, leaf_hash: bytes, origin: str, verifiers: Sequence[Verifier]
    ) -> tuple[Checkpoint, Note]:
        """Open the checkpoint and check ``leaf_hash`` is at ``index`` under its root.

        Raises SignatureError / FormatError (checkpoint) or ProofError (inclusion).
        """
        cp, note = open_checkpoint(self.checkpoint, origin, verifiers)
        verify_inclusion(leaf_hash, self.index, cp.size, self.inclusion, cp.root_hash)
        return cp, note
