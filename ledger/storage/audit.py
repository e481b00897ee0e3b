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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError
from ledger.merkle import fold, perfect_root
from ledger.note import NoteVerifier
from ledger.storage.log import ROOT_OFFSET, build_tile_nodes
from ledger.storage.models import LogCheckpoint, LogTile
from ledger.tiles import TILE_WIDTH

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
        return (
            min(
                self.problems,
                key=lambda d: (d.index is None, d.index if d.index is not None else 0),
            )
            if self.problems
            else None
        )


class CompactRange:
    """Perfect subtrees covering [0, n), largest first: enough to give the root at any n."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []  # (height, hash)
        self.size = 0

    def push(self, leaf_hash: bytes) -> None:
        self.push_subtree(0, leaf_hash)

    def push_subtree(self, height: int, value: bytes) -> None:
        """Append a perfect subtree of 2**height leaves; the range must be aligned to it."""
        if self.size & ((1 << height) - 1):
            raise ValueError(f"size {self.size} is not aligned to a subtree of height {height}")
        n = self.size >> height
        self.size += 1 << height
        while n & 1:
            _, left = self.stack.pop()
            value = _SHA(b"\x01" + left + value).digest()
            height += 1
            n >>= 1
        self.stack.append((height, value))

    def root(self, tail: Sequence[bytes] = ()) -> bytes:
        """The root of the covered range followed by ``tail`` leaf hashes (fewer than the
        smallest aligned block, e.g. the leaves of a partial tile)."""
        hashes = [v for _, v in self.stack]
        pos = 0
        rem = len(tail)
        for bit in reversed(range(rem.bit_length())):
            if rem >> bit & 1:
                hashes.append(perfect_root(tail[pos : pos + (1 << bit)]))
                pos += 1 << bit
        return fold(hashes)


def _hex(b: bytes) -> str:
    return b.hex()


class _TileChecker:
    """Rebuilds tiles level by level as base hashes arrive and compares them with storage."""

    def __init__(self, fetch: Callable[[int, int], bytes | None], report: AuditReport) -> None:
        self.fetch = fetch
        self.report = report
        self.buffers: list[list[bytes]] = []
        self.counts: list[int] = []

    def add_tile(self, level: int, base: list[bytes]) -> bytes:
        """Check one full tile of ``level`` built from ``base``; returns the tile's root and
        feeds it to the level above."""
        derived = build_tile_nodes(base)
        tile = self.counts[level] if level < len(self.counts) else 0
        while len(self.counts) <= level + 1:
            self.counts.append(0)
            self.buffers.append([])
        self.counts[level] = tile + 1
        stored = self.fetch(level, tile)
        self.report.tiles += 1
        first_leaf = tile * TILE_WIDTH ** (level + 1)
        if stored is None:
            self.report.problems.append(
                Divergence(first_leaf, f"tile {level}/{tile} missing", "a stored full tile", "none")
            )
        elif stored != derived:
            k = next(
                (
                    i
                    for i in range(0, len(derived), 32)
                    if stored[i : i + 32] != derived[i : i + 32]
                ),
                0,
            )
            pos = k // 32
            # Base hashes map to one leaf (level 0) or one lower tile; inner nodes to the
            # first leaf they cover — either way the first index at or after the damage.
            base_pos = pos if pos < TILE_WIDTH else 0
            self.report.problems.append(
                Divergence(
                    first_leaf + base_pos * TILE_WIDTH**level,
                    f"tile {level}/{tile} node {pos} differs from the entries",
                    _hex(derived[k : k + 32]),
                    _hex(stored[k : k + 32]) if len(stored) > k else f"{len(stored)}-byte tile",
                )
            )
        root = derived[ROOT_OFFSET:]
        up = self.buffers[level + 1]
        up.append(root)
        if len(up) == TILE_WIDTH:
            self.buffers[level + 1] = []
            self.add_tile(level + 1, up)
        return root


def _stream_entries(session: Session, chunk: int) -> Iterator[list[tuple[int, bytes, bytes]]]:
    """(idx, leaf_hash, body) in index order, a chunk at a time, straight from the driver:
    an audit reads every row, and ORM row objects would triple its cost."""
    conn = session.connection()
    sql = (
        "SELECT idx, leaf_hash, body FROM log_entries WHERE idx >= %s ORDER BY idx LIMIT %s"
        if conn.dialect.name == "postgresql"
        else "SELECT idx, leaf_hash, body FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?"
    )
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    binary = conn.dialect.name == "postgresql"
    pos = 0
    try:
        while True:
            if binary:
                # Binary results: bytea arrives as raw bytes instead of hex text to decode.
                cur.execute(sql, (pos, chunk), binary=True)
            else:
                cur.execute(sql, (pos, chunk))
            rows = cur.fetchall()
            if not rows:
                return
            # Both drivers return int and bytes for these columns: no per-row conversion.
            yield rows
            pos = rows[-1][0] + 1
    finally:
        cur.close()


def audit_local(
    session: Session, origin: str, verifiers: Sequence[NoteVerifier], chunk: int = 65_536
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
    crange = CompactRange()  # over full level-0 tiles; the partial tile's leaves kept apart
    pending: list[bytes] = []  # leaf hashes of the current, not yet full, level-0 tile
    expected_idx = 0
    cp_sizes = sorted(stored_cps)
    next_cp = 0
    for rows in _stream_entries(session, chunk):
        n = len(rows)
        if rows[0][0] != expected_idx or rows[-1][0] != expected_idx + n - 1:
            # Indices are unique and ordered, so matching endpoints mean no gap inside.
            gap = next(
                (expected_idx + k for k, r in enumerate(rows) if r[0] != expected_idx + k),
                expected_idx,
            )
            report.problems.append(
                Divergence(gap, "entry missing", f"index {gap}", "a gap in the indices")
            )
            rows = [r for k, r in enumerate(rows) if r[0] == expected_idx + k and r[0] < gap]
            n = len(rows)
            stop = True
        else:
            stop = False
        derived = [_SHA(b"\x00" + r[2]).digest() for r in rows]
        stored = [r[1] for r in rows]
        if derived != stored:
            for k in range(n):
                if derived[k] != stored[k]:
                    report.problems.append(
                        Divergence(
                            expected_idx + k,
                            "leaf hash differs from the entry's bytes",
                            _hex(derived[k]),
                            _hex(stored[k]),
                        )
                    )
        pos = 0
        while pos < n:
            # Feed up to the next tile boundary or checkpoint, whichever comes first.
            size_now = expected_idx + pos
            to_tile = TILE_WIDTH - len(pending)
            while next_cp < len(cp_sizes) and cp_sizes[next_cp] <= size_now:
                next_cp += 1
            cp_at = cp_sizes[next_cp] if next_cp < len(cp_sizes) else None
            step = min(to_tile, n - pos)
            if cp_at is not None and size_now < cp_at <= size_now + step:
                step = cp_at - size_now
            pending.extend(derived[pos : pos + step])
            pos += step
            if len(pending) == TILE_WIDTH:
                crange.push_subtree(8, tiles.add_tile(0, pending))
                pending = []
            if cp_at is not None and expected_idx + pos == cp_at:
                _check_one(report, stored_cps.pop(cp_at), crange.root(pending), origin, verifiers)
        expected_idx += n
        if stop:
            break
    report.entries = expected_idx
    if 0 in stored_cps:
        _check_one(report, stored_cps.pop(0), crange.root(pending), origin, verifiers)
    for size in sorted(stored_cps):
        report.problems.append(
            Divergence(
                size - 1 if size else None,
                f"checkpoint for size {size} has no matching tree",
                f"size <= {expected_idx}",
                f"size {size}",
            )
        )
    # Tiles the tree does not have (planted rows) are damage too.
    for level, idx in session.execute(select(LogTile.level, LogTile.idx)).all():
        have = (expected_idx >> (8 * int(level))) // TILE_WIDTH
        if int(idx) >= have:
            report.problems.append(
                Divergence(
                    None,
                    f"tile {level}/{idx} stored beyond the tree",
                    f"fewer than {have} tiles at level {level}",
                    f"tile {idx}",
                )
            )
    report.root_hash = crange.root(pending)
    return report


def _check_one(
    report: AuditReport,
    cp: LogCheckpoint,
    root: bytes,
    origin: str,
    verifiers: Sequence[NoteVerifier],
) -> None:
    report.checkpoints += 1
    size = int(cp.size)
    at = size - 1 if size else None
    try:
        parsed, _note = open_checkpoint(cp.note, origin, verifiers)
    except LedgerError as exc:
        report.problems.append(
            Divergence(at, f"checkpoint {size} signature", "valid log signature", str(exc))
        )
        return
    if parsed.size != size or parsed.root_hash != bytes(cp.root_hash):
        report.problems.append(
            Divergence(
                at,
                f"checkpoint {size} columns disagree with its note",
                f"size {parsed.size} root {_hex(parsed.root_hash)}",
                f"size {size} root {_hex(bytes(cp.root_hash))}",
            )
        )
    if parsed.root_hash != root:
        report.problems.append(
            Divergence(
                at,
                f"checkpoint {size} root differs from the entries",
                _hex(root),
                _hex(parsed.root_hash),
            )
        )
