"""Checkpoints (c2sp.org/tlog-checkpoint): a log's signed tree head as a note text.

The note text is::

    <origin>
    <tree size in decimal>
    <base64 root hash>
    [<extension line>...]

Rules enforced by :meth:`Checkpoint.parse`, in order:

1. The text is a ``str`` of at most :data:`ledger.note.MAX_NOTE_SIZE` bytes of UTF-8 that ends
   with a newline.
2. It has at least three lines.
3. The origin (line 1) is non-empty and has no control character (below U+0020 or U+007F).
   Spaces and ``+`` are allowed: the spec only *recommends* against them and forbids clients
   from assuming the recommendation holds.
4. The size (line 2) is ASCII decimal with no leading zero (unless it is ``0``), at most
   2**63 - 1.
5. The root hash (line 3) is canonical padded base64 of exactly 32 bytes.
6. Every extension line (lines 4 and on) is non-empty and has no control character.

:class:`Checkpoint` enforces 3–6 on construction too, so every instance has a valid text.

Rules enforced by :func:`open_checkpoint`, in order: the note opens with the given verifiers
(every rule of :func:`ledger.note.open_note`: the text is not even looked at before a known key's
signature verifies); its text parses as a checkpoint (rules above); its origin equals the
expected origin.

:func:`sign_checkpoint` signs ``Checkpoint.to_text()`` as a note.  The log's key name SHOULD
equal the origin; this module does not insist, because witnesses sign under their own names.

Pure code: no I/O.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import FormatError
from ledger.note import MAX_NOTE_SIZE, Note, Signer, Verifier, decode_base64, open_note, sign_note

__all__ = ["MAX_TREE_SIZE", "Checkpoint", "open_checkpoint", "parse_decimal", "sign_checkpoint"]

MAX_TREE_SIZE = (1 << 63) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _check_line(line: str, what: str) -> None:
    if line == "":
        raise FormatError(f"checkpoint {what}: expected a non-empty line, found an empty one")
    for ch in line:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise FormatError(
                f"checkpoint {what}: expected no control characters, found {ch!r} in {line[:80]!r}"
            )


def parse_decimal(text: str, what: str, maximum: int = MAX_TREE_SIZE) -> int:
    """Parse ASCII decimal without leading zeroes (``0`` alone is fine), 0..maximum."""
    if not _DECIMAL.fullmatch(text) or len(text) > 20:
        raise FormatError(
            f"{what}: expected ASCII decimal without leading zeroes, found {text[:40]!r}"
        )
    value = int(text)
    if value > maximum:
        raise FormatError(f"{what}: expected at most {maximum}, found {value}")
    return value


@dataclass(frozen=True)
class Checkpoint:
    """A log checkpoint body (unsigned)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str):
            raise FormatError(f"checkpoint origin: expected str, found {type(self.origin)}")
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise FormatError(f"checkpoint size: expected int, found {type(self.size).__name__}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise FormatError(f"checkpoint size: expected 0..{MAX_TREE_SIZE}, found {self.size}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            found = len(self.root_hash) if isinstance(self.root_hash, bytes) else "non-bytes"
            raise FormatError(f"checkpoint root hash: expected 32 bytes, found {found}")
        if not isinstance(self.extensions, tuple):
            raise FormatError(
                f"checkpoint extensions: expected a tuple, found {type(self.extensions).__name__}"
            )
        for ext in self.extensions:
            if not isinstance(ext, str):
                raise FormatError(f"checkpoint extension: expected str, found {type(ext)}")
            _check_line(ext, "extension line")

    def to_text(self) -> str:
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = [self.origin, str(self.size), root, *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly (rules 1–6)."""
        if not isinstance(text, str):
            raise FormatError(f"checkpoint: expected str, found {type(text).__name__}")
        try:
            size_bytes = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise FormatError("checkpoint: expected valid Unicode, found a lone surrogate") from exc
        if size_bytes > MAX_NOTE_SIZE:
            raise FormatError(f"checkpoint: expected at most {MAX_NOTE_SIZE} bytes, found more")
        if not text.endswith("\n"):
            raise FormatError(
                f"checkpoint: expected text ending with a newline, found {text[-20:]!r}"
            )
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError(
                f"checkpoint: expected at least 3 lines (origin, size, root), found {len(lines)}"
            )
        origin, size_line, root_line, *exts = lines
        _check_line(origin, "origin")
        size = parse_decimal(size_line, "checkpoint size")
        root = decode_base64(root_line, "checkpoint root hash")
        if len(root) != 32:
            raise FormatError(f"checkpoint root hash: expected 32 bytes, found {len(root)}")
        for ext in exts:
            _check_line(ext, "extension line")
        return cls(origin=origin, size=size, root_hash=root, extensions=tuple(exts))


def sign_checkpoint(cp: Checkpoint, *signers: Signer) -> str:
    """Return ``cp`` as a note signed by every signer (at least one)."""
    return sign_note(cp.to_text(), *signers)


def open_checkpoint(
    note_text: str | bytes, origin: str, verifiers: Sequence[Verifier]
) -> tuple[Checkpoint, Note]:
    """Open a signed checkpoint: verify the note, parse its text, check the origin."""
    note = open_note(note_text, verifiers)
    cp = Checkpoint.parse(note.text)
    if cp.origin != origin:
        raise FormatError(f"checkpoint origin: expected {origin!r}, found {cp.origin!r}")
    return cp, note
