"""``celedger audit``: an fsck for the log.

It trusts nothing stored except the entry bodies and the log's public key, and re-derives
everything else in one pass, in index order:

1. indices run 0, 1, 2, … without a gap (a deleted or inserted row shows here);
2. every stored leaf hash is SHA-256(0x00 ‖ body) (an edited body shows here);
3. every stored full tile equals the tile re-derived from the entries (an edited or swapped
   hash shows here), and no tile is stored that the tree does not have;
4. every stored checkpoint is signed by the log's key, names the log's origin, matches its
   own ``size``/``root_hash`` columns, and its root equals the re-derived root at its size —
   which also makes every pair of checkpoints consistent with each other.

The first divergence is reported with its index and the expected and found values.  Memory
is O(log n): only one tile per level and a compact range of perfect subtrees are kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError
from ledger.note import NoteVerifier
from ledger.storage.log import ROOT_OFFSET, TILE_WIDTH, build_tile_nodes, iter_entries
from ledger.storage.models import LogCheckpoint, LogTile

_SHA = hashlib.sha256


@dataclass(frozen=True)
class Divergence:
    index: int | None
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        where = f"index {self.index}" if self.index is not None else "log"
        return f"{where}: {self.what}: expected {self.expected}, found {self.found}"


@dataclass
class AuditReport:
    entries: int = 0
    tiles: int = 0
    checkpoints: int = 0
    root_hash: bytes = b""
    problems: list[Divergence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Divergence | None:
        return min(
            self.problems, key=lambda d: (d.index is None, d.index if d.index is not None else 0)
        ) if self.problems else None


class CompactRange:
    """Perfect subtrees covering [0, n), largest first: enough to give the root at any n."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []  # (height, hash)
        self.size = 0

    def push(self, leaf_hash: bytes) -> None:
        h, value, n = 0, leaf_hash, self.size
        while n & 1:
            _, left = self.stack.pop()
            value = _SHA(b"\x01" + left + value).digest()
            h += 1
            n >>= 1
        self.stack.append((h, value))
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return _SHA(b"").digest()
        value = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            value = _SHA(b"\x01" + left + value).digest()
        return value


def _hex(b: bytes) -> str:
    return b.hex()


class _TileChecker:
    """Rebuilds tiles level by level as base hashes arrive and compares them with storage."""

    def __init__(self, fetch: Callable[[int, int], bytes | None], report: AuditReport) -> None:
        self.fetch = fetch
        self.report = report
        self.buffers: list[list[bytes]] = []
        self.counts: list[int] = []

    def add(self, level: int, h: bytes) -> None:
        while len(self.buffers) <= level:
            self.buffers.append([])
            self.counts.append(0)
        buf = self.buffers[level]
        buf.append(h)
        if len(buf) < TILE_WIDTH:
            return
        tile = self.counts[level]
        self.counts[level] += 1
        derived = build_tile_nodes(buf)
        self.buffers[level] = []
        stored = self.fetch(level, tile)
        self.report.tiles += 1
        first_leaf = tile * TILE_WIDTH ** (level + 1)
        if stored is None:
            self.report.problems.append(
                Divergence(first_leaf, f"tile {level}/{tile} missing", "a stored full tile", "none")
            )
        elif stored != derived:
            k = next(
                (i for i in range(0, len(derived), 32) if stored[i : i + 32] != derived[i : i + 32]),
                0,
            )
            pos = k // 32
            # Base hashes map to one leaf (level 0) or one lower tile; inner nodes to the
            # first leaf they cover — either way the first index at or after the damage.
            base_pos = pos if pos < TILE_WIDTH else 0
            index = first_leaf + base_pos * TILE_WIDTH**level
            self.report.problems.append(
                Divergence(
                    index,
                    f"tile {level}/{tile} node {pos} differs from the entries",
                    _hex(derived[k : k + 32]),
                    _hex(stored[k : k + 32]) if len(stored) > k else f"{len(stored)}-byte tile",
                )
            )
        self.add(level + 1, derived[ROOT_OFFSET:])


def audit_local(
    session: Session, origin: str, verifiers: Sequence[NoteVerifier], chunk: int = 50_000
) -> AuditReport:
    report = AuditReport()
    stored_cps = {
        int(c.size): c
        for c in session.execute(select(LogCheckpoint).order_by(LogCheckpoint.size)).scalars()
    }
    tile_cache: dict[tuple[int, int], bytes] = {}

    def fetch(level: int, idx: int) -> bytes | None:
        key = (level, idx)
        if key not in tile_cache:
            # Level-0 tiles are read a chunk at a time as the entries stream past.
            span = max(1, chunk // TILE_WIDTH) if level == 0 else 256
            rows = session.execute(
                select(LogTile.idx, LogTile.nodes).where(
                    LogTile.level == level, LogTile.idx >= idx, LogTile.idx < idx + span
                )
            )
            tile_cache.clear()
            for i, nodes in rows:
                tile_cache[(level, int(i))] = bytes(nodes)
        return tile_cache.pop(key, None)

    tiles = _TileChecker(fetch, report)
    crange = CompactRange()
    expected_idx = 0
    for rows in iter_entries(session, 0, chunk):
        for idx, stored_hash, body in rows:
            if idx != expected_idx:
                report.problems.append(
                    Divergence(expected_idx, "entry missing", f"index {expected_idx}", f"index {idx} next")
                )
                # The tree cannot be re-derived past a hole; what follows would only echo it.
                report.entries = expected_idx
                _check_checkpoints(report, stored_cps, crange, origin, verifiers, final=True)
                return report
            derived = _SHA(b"\x00" + body).digest()
            if derived != stored_hash:
                report.problems.append(
                    Divergence(idx, "leaf hash differs from the entry's bytes", _hex(derived), _hex(stored_hash))
                )
            crange.push(derived)
            tiles.add(0, derived)
            expected_idx += 1
            if expected_idx in stored_cps:
                _check_one(report, stored_cps.pop(expected_idx), crange, origin, verifiers)
    report.entries = expected_idx
    if 0 in stored_cps:
        _check_one(report, stored_cps.pop(0), crange, origin, verifiers)
    _check_checkpoints(report, stored_cps, crange, origin, verifiers, final=True)
    # Tiles the tree does not have (planted rows) are damage too.
    extra = session.execute(select(LogTile.level, LogTile.idx)).all()
    for level, idx in extra:
        have = (expected_idx >> (8 * int(level))) // TILE_WIDTH
        if int(idx) >= have:
            report.problems.append(
                Divergence(
                    None, f"tile {level}/{idx} stored beyond the tree", f"fewer than {have} tiles at level {level}", f"tile {idx}"
                )
            )
    report.root_hash = crange.root()
    return report


def _check_checkpoints(
    report: AuditReport,
    remaining: dict[int, LogCheckpoint],
    crange: CompactRange,
    origin: str,
    verifiers: Sequence[NoteVerifier],
    *,
    final: bool,
) -> None:
    for size in sorted(remaining):
        report.problems.append(
            Divergence(
                size - 1 if size else None,
                f"checkpoint for size {size} has no matching tree",
                f"size <= {crange.size}",
                f"size {size}",
            )
        )
    remaining.clear()


def _check_one(
    report: AuditReport,
    cp: LogCheckpoint,
    crange: CompactRange,
    origin: str,
    verifiers: Sequence[NoteVerifier],
) -> None:
    report.checkpoints += 1
    size = int(cp.size)
    at = size - 1 if size else None
    try:
        parsed, _note = open_checkpoint(cp.note, origin, verifiers)
    except LedgerError as exc:
        report.problems.append(Divergence(at, f"checkpoint {size} signature", "valid log signature", str(exc)))
        return
    root = crange.root()
    if parsed.size != size or parsed.root_hash != bytes(cp.root_hash):
        report.problems.append(
            Divergence(at, f"checkpoint {size} columns disagree with its note", f"size {parsed.size} root {_hex(parsed.root_hash)}", f"size {size} root {_hex(bytes(cp.root_hash))}")
        )
    if parsed.root_hash != root:
        report.problems.append(
            Divergence(at, f"checkpoint {size} root differs from the entries", _hex(root), _hex(parsed.root_hash))
        )
