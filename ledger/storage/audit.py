"""``celedger audit``: an fsck for the log.

It trusts nothing stored except the entry bodies and the log's public key, and re-derives
everything else in one pass, in index order:

1. indices run 0, 1, 2, … without a gap and none is negative (a deleted, renumbered or
   inserted row shows here), and no entry lies past the latest checkpoint (every append
   signs one in its own transaction);
2. every stored leaf hash is SHA-256(0x00 ‖ body) (an edited body shows here), and the
   ``kind`` column names the kind the body states, when it states one (a relabelled row
   shows here) — on PostgreSQL the server computes both next to the bytes and sends only
   the rows it cannot vouch for in full (`_PG_CHECKED`), reading one chunk ahead;
3. every stored full tile equals the tile re-derived from the entries (an edited or swapped
   hash shows here), and no tile is stored that the tree does not have;
4. every stored checkpoint is signed by the log's key and by no other, names the log's
   origin, matches its own ``size``/``root_hash`` columns, and its root equals the re-derived
   root at its size — which also makes every pair of checkpoints consistent with each other.

Every divergence names the index where the stored log stops being what was signed; the
report's ``first`` is the earliest:

* an entry that disagrees with its leaf hash, its kind or a stored tile: that entry; a damaged
  tile node: the first entry under it; a missing entry: its index; entries past the latest
  checkpoint: the first of them; a checkpoint larger than the log: the first missing entry;
* a checkpoint that is malformed, badly signed or disagrees with its own columns: its last
  entry (size − 1); so is one whose root disagrees while a later checkpoint vouches for the
  entries (then the checkpoint is what is wrong);
* a root that disagrees with no other evidence to place the damage: the first entry after
  the last checkpoint that still agrees.  Entries in the partial tile at the right edge have
  no stored hash but their own, so a swap among them can be placed no closer than that.

Two changes cannot be seen here by design, because they leave tables the log could have
written itself: deleting a checkpoint other than the latest (as if two appends had been one),
and truncating entries, tiles and checkpoints together down to an earlier checkpoint.  A
checkpoint held elsewhere (a receipt, a witness, a mirror audited with ``--remote``) shows
them.  ``signed_at`` is not signed, so there is nothing to check it against.

Memory is O(log n): only one tile per level and a compact range of perfect subtrees are kept.
"""

from __future__ import annotations

import hashlib
import json
import queue
import sqlite3
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.canonical import canonicalize
from ledger.checkpoint import open_checkpoint
from ledger.entries import KINDS
from ledger.errors import LedgerError
from ledger.merkle import EMPTY_ROOT, fold, perfect_root
from ledger.note import NoteVerifier
from ledger.storage.db import driver
from ledger.storage.log import ROOT_OFFSET, build_tile_nodes
from ledger.tiles import TILE_WIDTH

_SHA = hashlib.sha256
_LEAF, _BODY, _KIND = itemgetter(1), itemgetter(2), itemgetter(3)
_VERDICT = itemgetter(2)  # of a PostgreSQL row, see _PG_CHECKED
# Below every index either database can store, so that a planted negative index is read too.
_LOWEST = -(1 << 63)


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


def _show(value: object) -> str:
    """A stored value in a message: hex for bytes, else its type and a short repr (a tampered
    SQLite column can hold any type)."""
    if isinstance(value, bytes):
        return value.hex() if value else "0 bytes"
    if isinstance(value, _Typed):
        return repr(value)
    return f"{type(value).__name__} {value!r:.80}"


def _first_covered(pos: int) -> int:
    """The first base position under node ``pos`` of a tile blob (bottom level first)."""
    start, width, sub = 0, TILE_WIDTH, 0
    while pos >= start + width and width > 1:
        start, width, sub = start + width, width // 2, sub + 1
    return (pos - start) << sub


class _TileChecker:
    """Rebuilds tiles level by level as base hashes arrive and compares them with storage."""

    def __init__(self, fetch: Callable[[int, int], object], report: AuditReport) -> None:
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
        unit = TILE_WIDTH**level
        first_leaf = tile * TILE_WIDTH * unit
        name = f"tile {level}/{tile}"
        if stored is None:
            self.report.problems.append(
                Divergence(first_leaf, f"{name} missing", "a stored full tile", "none")
            )
        elif not isinstance(stored, bytes):
            self.report.problems.append(
                Divergence(first_leaf, f"{name} is not a byte string", "bytes", _show(stored))
            )
        elif stored != derived:
            k = next(
                (
                    i
                    for i in range(0, len(derived), 32)
                    if stored[i : i + 32] != derived[i : i + 32]
                ),
                None,
            )
            if k is None:
                # Every node is right and something follows them.
                self.report.problems.append(
                    Divergence(
                        first_leaf,
                        f"{name} is longer than a tile",
                        f"{len(derived)} bytes",
                        f"{len(stored)} bytes",
                    )
                )
            else:
                pos = k // 32
                # Base hashes stand for one leaf (level 0) or one lower tile, an inner node for
                # the leaves under it: either way its first leaf is the first index it vouches
                # for wrongly.
                self.report.problems.append(
                    Divergence(
                        first_leaf + _first_covered(pos) * unit,
                        f"{name} node {pos} differs from the entries",
                        _hex(derived[k : k + 32]),
                        _show(stored[k : k + 32])
                        if len(stored) > k
                        else f"{len(stored)}-byte tile",
                    )
                )
        root = derived[ROOT_OFFSET:]
        up = self.buffers[level + 1]
        up.append(root)
        if len(up) == TILE_WIDTH:
            self.buffers[level + 1] = []
            self.add_tile(level + 1, up)
        return root


# PostgreSQL derives every leaf hash where the bytes are (sha256() is built in) and looks for
# the member ``"kind":<kind>`` (`_KindTags`) of a known kind in the body: a row it vouches for
# sends 32 bytes and a verdict instead of its body, and the audit hashes the tiles above while
# the server hashes the leaves.  The verdict is true only when both hold; a false or NULL one
# (an unknown or NULL kind, a NULL column, a body without its kind …) sends the row again,
# whole, to the same checks as SQLite's (`_check_entries`), which alone name what is wrong.
_PG_CHECKED = (
    "SELECT idx, leaf_hash, leaf_hash = sha256('\\x00'::bytea || body) "
    "AND position((%s::bytea[])[array_position(%s::text[], kind)] IN body) > 0 "
    "FROM log_entries WHERE idx >= %s ORDER BY idx LIMIT %s"
)
_PG_WHOLE = "SELECT idx, leaf_hash, body, kind FROM log_entries WHERE idx = ANY(%s) ORDER BY idx"
_SQLITE_ENTRIES = (
    "SELECT idx, leaf_hash, body, kind FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?"
)
# SQLite stores whatever type it is given, and a text value that is not UTF-8 cannot even be
# fetched as str: only when that happens is a chunk read again with every column as bytes
# and its type checked here instead (a wrongly typed value reads as NULL).
_SQLITE_ENTRIES_TYPED = (
    "SELECT idx, CASE typeof(leaf_hash) WHEN 'blob' THEN leaf_hash END, "
    "CASE typeof(body) WHEN 'blob' THEN body END, "
    "CASE typeof(kind) WHEN 'text' THEN CAST(kind AS BLOB) END "
    "FROM log_entries WHERE idx >= ? ORDER BY idx LIMIT ?"
)


def _utf8(value: object) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _stream_entries(
    session: Session, chunk: int, tags: _KindTags, tiles: dict[tuple[int, int], object]
) -> Iterator[list[tuple[int, Any, Any, Any]]]:
    """In index order, a chunk at a time, straight from the driver (an audit reads every row,
    and ORM row objects would triple its cost): (idx, leaf_hash, body, kind) on SQLite;
    (idx, leaf_hash, verdict, None) on PostgreSQL, which checks the bodies itself
    (`_PG_CHECKED`).  The level-0 tiles over each chunk are put in ``tiles`` before it is
    yielded.  The first chunk starts below 0, so that a row planted at a negative index is
    seen."""
    cur = driver(session).cursor()
    try:
        if session.connection().dialect.name == "postgresql":
            kinds = sorted(KINDS)
            needles = [tags[k] for k in kinds]
            chunks = _read_ahead(_chunks(lambda pos: _pg_chunk(cur, needles, kinds, pos, chunk)))
        else:
            # In process, reading holds the GIL most of the time: a thread gained nothing.
            chunks = _chunks(lambda pos: _sqlite_chunk(cur, pos, chunk))
        for rows, chunk_tiles in chunks:
            tiles.update(chunk_tiles)
            yield rows
    finally:
        cur.close()


_Chunk = tuple[list[tuple[int, Any, Any, Any]], dict[tuple[int, int], object]]
_PG_CHUNK_TILES = "SELECT idx, nodes FROM log_tiles WHERE level = 0 AND idx >= %s AND idx <= %s"
_SQLITE_CHUNK_TILES = (
    "SELECT idx, CAST(nodes AS BLOB), typeof(nodes) FROM log_tiles "
    "WHERE level = 0 AND idx >= ? AND idx <= ?"
)


def _chunks(read: Callable[[int], _Chunk]) -> Iterator[_Chunk]:
    """``read(position)`` from below every index on, each chunk after the last one's index,
    until one comes back empty."""
    pos = _LOWEST
    while True:
        rows, tiles = read(pos)
        if not rows:
            return
        yield rows, tiles
        pos = rows[-1][0] + 1


def _tile_span(rows: list[tuple[int, Any, Any, Any]]) -> tuple[int, int] | None:
    """The first and last level-0 tile over the entries of a chunk (None: no entry at 0 or
    above)."""
    if not rows or rows[-1][0] < 0:
        return None
    return max(rows[0][0], 0) // TILE_WIDTH, rows[-1][0] // TILE_WIDTH


def _pg_chunk(cur: Any, needles: list[bytes], kinds: list[str], pos: int, chunk: int) -> _Chunk:
    """The PostgreSQL rows (idx, leaf_hash, verdict) of up to ``chunk`` entries from ``pos``,
    and the stored level-0 tiles over them."""
    # Binary results: bytea arrives as raw bytes instead of hex text to decode.
    cur.execute(_PG_CHECKED, (needles, kinds, pos, chunk), binary=True, prepare=True)
    rows = list(cur.fetchall())
    span = _tile_span(rows)
    if span is None:
        return rows, {}
    cur.execute(_PG_CHUNK_TILES, span, binary=True, prepare=True)
    return rows, {(0, int(i)): nodes for i, nodes in cur.fetchall()}


def _sqlite_chunk(cur: Any, pos: int, chunk: int) -> _Chunk:
    """The SQLite rows (idx, leaf_hash, body, kind) of up to ``chunk`` entries from ``pos``,
    and the stored level-0 tiles over them."""
    try:
        cur.execute(_SQLITE_ENTRIES, (pos, chunk))
        # The driver returns int and bytes for these columns: no per-row conversion.
        rows = cur.fetchall()
    except sqlite3.OperationalError:
        cur.execute(_SQLITE_ENTRIES_TYPED, (pos, chunk))
        rows = [(i, h, b, _utf8(k)) for i, h, b, k in cur.fetchall()]
    span = _tile_span(rows)
    if span is None:
        return rows, {}
    cur.execute(_SQLITE_CHUNK_TILES, span)
    return rows, {
        (0, int(i)): nodes if kind == "blob" else _Typed(kind, nodes)
        for i, nodes, kind in cur.fetchall()
    }


_DONE: Any = object()  # the end of `_read_ahead`'s queue


def _read_ahead(chunks: Iterator[_Chunk]) -> Iterator[_Chunk]:
    """``chunks``, one ahead, from a thread: the server hashes the next chunk's leaves while
    this one's tiles are hashed here, so both cores of a small machine work (waiting for the
    server releases the GIL).  The thread shares the session's connection (an audit must see
    what its session sees, uncommitted changes included), which lets one statement at a time
    through: so the chunk's tiles are read ahead too, since a read of them here would wait for
    the next chunk's statement."""
    ready: queue.Queue[_Chunk | BaseException] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in chunks:
                ready.put(item)
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 -- handed to the reader, which raises it
            ready.put(exc)

    reader = threading.Thread(target=produce, name="audit-read-ahead", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # Stopped early (a gap ends the audit) or failed: let the thread finish its statement.
        stop.set()
        while reader.is_alive():
            with suppress(queue.Empty):
                ready.get(timeout=0.05)
        reader.join()


_KIND_KEY = b'"kind":'
_NO_KIND = b"\xff"  # never in UTF-8: the tag of a kind column that cannot match any body


class _KindTags(dict[object, bytes]):
    """``kind`` column value → the member ``"kind":<value>`` of a canonical body stating it.

    Inside a JSON string every quote is escaped, so the member can only occur as a key of some
    object; entries carry ``kind`` at the top level only."""

    def __missing__(self, kind: object) -> bytes:
        if not isinstance(kind, str):
            return _NO_KIND
        try:
            tag = _KIND_KEY + canonicalize(kind)
        except LedgerError:
            return _NO_KIND
        self[kind] = tag
        return tag


def _stated_kind(body: bytes) -> str:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return "the kind the body states (it is not JSON)"
    return repr(obj.get("kind")) if isinstance(obj, dict) else "the kind the body states"


def _check_entries(
    rows: list[tuple[int, Any, Any, Any]], tags: _KindTags, report: AuditReport
) -> list[bytes]:
    """The leaf hashes of ``rows`` derived from their bodies; entries whose stored leaf hash or
    kind disagrees with the body are reported."""
    bodies = list(map(_BODY, rows))
    try:
        derived = [_SHA(b"\x00" + b).digest() for b in bodies]
        kinds_found = min(map(bytes.find, bodies, map(tags.__getitem__, map(_KIND, rows)))) >= 0
    except TypeError:  # a body that is not bytes (SQLite): looked at row by row below
        derived = [_SHA(b"\x00" + b).digest() if isinstance(b, bytes) else b"" for b in bodies]
        kinds_found = False
    if kinds_found and derived == list(map(_LEAF, rows)):
        return derived
    for (idx, leaf, body, kind), want in zip(rows, derived, strict=True):
        if not isinstance(body, bytes):
            report.problems.append(
                Divergence(idx, "entry body is not a byte string", "bytes", _show(body))
            )
            continue
        if leaf != want:
            report.problems.append(
                Divergence(idx, "leaf hash differs from the entry's bytes", _hex(want), _show(leaf))
            )
        # An entry may state no kind (the log takes any bytes); then the label is free text.
        if body.find(tags[kind]) < 0 and (_KIND_KEY in body or not isinstance(kind, str)):
            report.problems.append(
                Divergence(
                    idx,
                    "kind column differs from the entry's bytes",
                    _stated_kind(body),
                    _show(kind),
                )
            )
    return derived


def _checked_by_database(
    session: Session, rows: list[tuple[int, Any, Any, Any]], tags: _KindTags, report: AuditReport
) -> list[bytes]:
    """The leaf hashes of PostgreSQL rows (idx, leaf_hash, verdict, None): the stored ones
    where the database re-derived them from the bodies, else derived here from the whole row."""
    leaves: list[bytes] = list(map(_LEAF, rows))
    if all(map(_VERDICT, rows)):
        return leaves
    where = {r[0]: k for k, r in enumerate(rows) if r[2] is not True}
    cur = driver(session).cursor()
    try:
        cur.execute(_PG_WHOLE, (list(where),), binary=True)
        whole = cur.fetchall()
    finally:
        cur.close()
    for (idx, *_), leaf in zip(whole, _check_entries(whole, tags, report), strict=True):
        leaves[where[idx]] = leaf
    return leaves


_PG_CHECKPOINTS = (
    "SELECT size, root_hash, 'blob', note, 'text' FROM log_checkpoints "
    "WHERE size > :above ORDER BY size"
)
# As bytes with their types, for the reason given at _SQLITE_ENTRIES_TYPED.
_SQLITE_CHECKPOINTS = (
    "SELECT size, CAST(root_hash AS BLOB), typeof(root_hash), CAST(note AS BLOB), typeof(note) "
    "FROM log_checkpoints WHERE size > :above ORDER BY size"
)
_PG_TILES = (
    "SELECT idx, nodes, 'blob' FROM log_tiles WHERE level = :lvl AND idx >= :lo AND idx < :hi"
)
_SQLITE_TILES = (
    "SELECT idx, CAST(nodes AS BLOB), typeof(nodes) FROM log_tiles "
    "WHERE level = :lvl AND idx >= :lo AND idx < :hi"
)
# The log's size is read in the same statement as the tile keys, so that a tile appended
# while the audit ran is not taken for a planted one.
_TILE_KEYS = "SELECT level, idx, (SELECT max(idx) FROM log_entries) FROM log_tiles"


class _Typed:
    """A stored value of the wrong type (SQLite), kept for the message."""

    def __init__(self, kind: str, value: object) -> None:
        self.kind, self.value = kind, value

    def __repr__(self) -> str:
        return f"a {self.kind} value {self.value!r:.60}"


def _checkpoints(session: Session, above: int) -> dict[int, tuple[object, object]]:
    """size → (root_hash column, note) for the stored checkpoints larger than ``above``."""
    sqlite = session.connection().dialect.name == "sqlite"
    out: dict[int, tuple[object, object]] = {}
    rows = session.execute(
        text(_SQLITE_CHECKPOINTS if sqlite else _PG_CHECKPOINTS), {"above": above}
    )
    for size, root, root_type, note, note_type in rows:
        if root_type != "blob":
            root = _Typed(root_type, root)
        if note_type != "text":
            note = _Typed(note_type, note)
        elif isinstance(note, bytes):
            decoded = _utf8(note)
            note = _Typed("non-UTF-8 text", note) if decoded is None else decoded
        out[int(size)] = (root, note)
    return out


# Entries read per statement.  Small chunks keep a chunk's rows in the CPU's caches and give
# the garbage collector few live tuples to walk: over 1M entries on SQLite 65,536 gave
# 454k-469k/s and 2,048 547k-571k/s; PostgreSQL, reading ahead, is the same either way.
AUDIT_CHUNK = 2_048


def audit_local(
    session: Session, origin: str, verifiers: Sequence[NoteVerifier], chunk: int = AUDIT_CHUNK
) -> AuditReport:
    report = AuditReport()
    sqlite = session.connection().dialect.name == "sqlite"
    stored_cps = _checkpoints(session, _LOWEST)
    last_cp = max(stored_cps, default=0)
    # Verdicts on the checkpoints: sizes whose root agrees with the entries, and the roots
    # that disagree, which are placed once the whole log has been read (see the docstring).
    agree: list[int] = []
    disagree: list[tuple[int, bytes, bytes]] = []
    cp_problems: list[Divergence] = []

    def judge(size: int, root: bytes) -> None:
        cp_root, note = stored_cps.pop(size)
        signed = _check_one(report, cp_problems, size, cp_root, note, origin, verifiers)
        if signed is None:
            return
        if signed == root:
            agree.append(size)
        else:
            disagree.append((size, root, signed))

    for size in [s for s in stored_cps if s < 0]:
        report.checkpoints += 1
        del stored_cps[size]
        cp_problems.append(
            Divergence(None, f"checkpoint for size {size}", "a size of 0 or more", str(size))
        )
    if 0 in stored_cps:
        judge(0, EMPTY_ROOT)

    tile_cache: dict[tuple[int, int], object] = {}
    tiles_sql = text(_SQLITE_TILES if sqlite else _PG_TILES)

    def fetch(level: int, idx: int) -> object:
        key = (level, idx)
        if key not in tile_cache:
            # Level-0 tiles are read with each chunk of entries (`_read_ahead`): only a
            # missing one comes here.
            span = max(1, chunk // TILE_WIDTH) if level == 0 else 256
            rows = session.execute(tiles_sql, {"lvl": level, "lo": idx, "hi": idx + span})
            for old in [k for k in tile_cache if k[0] == level]:
                del tile_cache[old]
            for i, nodes, kind in rows:
                tile_cache[(level, int(i))] = nodes if kind == "blob" else _Typed(kind, nodes)
        return tile_cache.pop(key, None)

    tiles = _TileChecker(fetch, report)
    kind_tags = _KindTags()
    crange = CompactRange()  # over full level-0 tiles; the partial tile's leaves kept apart
    pending: list[bytes] = []  # leaf hashes of the current, not yet full, level-0 tile
    expected_idx = 0
    cp_sizes = sorted(stored_cps)
    next_cp = 0
    stop = False
    for rows in _stream_entries(session, chunk, kind_tags, tile_cache):
        if rows[0][0] < 0:
            for r in rows:
                if r[0] < 0:
                    report.problems.append(
                        Divergence(None, "entry at a negative index", "indices from 0", str(r[0]))
                    )
            rows = [r for r in rows if r[0] >= 0]
            if not rows:
                continue
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
        if not rows:
            derived = []
        elif sqlite:
            derived = _check_entries(rows, kind_tags, report)
        else:
            derived = _checked_by_database(session, rows, kind_tags, report)
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
                judge(cp_at, crange.root(pending))
        expected_idx += n
        if stop:
            break
    report.entries = expected_idx
    report.root_hash = crange.root(pending)
    size = expected_idx

    if not stop and size > last_cp:
        # Entries past every checkpoint read at the start: an append may have committed since
        # (it stores its checkpoint with its entries), so look again before calling them
        # unsigned.
        stored_cps.update(_checkpoints(session, last_cp))
        if size in stored_cps:
            judge(size, report.root_hash)
        else:
            report.problems.append(
                Divergence(
                    last_cp,
                    "entries past the latest checkpoint",
                    f"a checkpoint for size {size}",
                    f"the latest for size {last_cp}",
                )
            )
    for cp_size in sorted(s for s in stored_cps if s > size and s <= last_cp):
        report.checkpoints += 1
        cp_problems.append(
            Divergence(
                size,
                f"checkpoint {cp_size} covers entries the log does not have",
                f"{cp_size} entries",
                f"{size}",
            )
        )

    # A root that disagrees is placed by the other evidence (see the docstring).
    agree.sort()
    placed = sorted(p.index for p in report.problems if p.index is not None)
    cp_problems.extend(
        _place(cp_size, root, signed, agree, placed) for cp_size, root, signed in disagree
    )
    report.problems.extend(cp_problems)

    # Tiles the tree does not have (planted rows) are damage too.
    for level, idx, top in session.execute(text(_TILE_KEYS)).all():
        try:
            level, idx = int(level), int(idx)
        except (TypeError, ValueError):
            report.problems.append(
                Divergence(None, f"tile {level!r}/{idx!r}", "integer level and index", "other")
            )
            continue
        now = max(size, 0 if top is None else int(top) + 1)
        have = (now >> (8 * level)) // TILE_WIDTH if level >= 0 else 0
        if level < 0 or idx < 0:
            report.problems.append(
                Divergence(None, f"tile {level}/{idx} stored", "no negative key", f"{level}/{idx}")
            )
        elif idx >= have:
            # From level 8 up a tile spans 2**64 entries: more than any index can reach.
            first = max(idx * TILE_WIDTH ** (level + 1), size) if level < 8 else None
            report.problems.append(
                Divergence(
                    first,
                    f"tile {level}/{idx} stored beyond the tree",
                    f"fewer than {have} tiles at level {level}",
                    f"tile {idx}",
                )
            )
    return report


def _place(
    size: int, root: bytes, signed: bytes, agree: list[int], placed: list[int]
) -> Divergence:
    """Where a checkpoint whose root disagrees with the entries puts the damage, given the
    sorted sizes of the checkpoints that agree and the indices already placed by the entries."""
    k = bisect_left(agree, size)
    if not size or k < len(agree):
        # A later checkpoint vouches for these entries (or it is the empty tree): the
        # checkpoint itself is what is wrong.
        what = f"checkpoint {size} root differs from the entries" + (
            f", which checkpoint {agree[k]} vouches for" if size else ""
        )
        return Divergence(size - 1 if size else None, what, _hex(root), _hex(signed))
    prev = agree[k - 1] if k else 0
    j = bisect_left(placed, prev)
    if j < len(placed) and placed[j] < size:
        # Explained by an entry already placed between the two checkpoints.
        return Divergence(
            size - 1, f"checkpoint {size} root differs from the entries", _hex(root), _hex(signed)
        )
    return Divergence(
        prev,
        f"checkpoint {size} root differs from the entries (the damage lies in [{prev}, {size}))",
        _hex(root),
        _hex(signed),
    )


def _check_one(
    report: AuditReport,
    problems: list[Divergence],
    size: int,
    root_column: object,
    note: object,
    origin: str,
    verifiers: Sequence[NoteVerifier],
) -> bytes | None:
    """The root a sound checkpoint signs; None (and the problem recorded) if it is unsound."""
    report.checkpoints += 1
    at = size - 1 if size else None
    if not isinstance(note, str):
        problems.append(Divergence(at, f"checkpoint {size} note", "text", _show(note)))
        return None
    try:
        parsed, opened = open_checkpoint(note, origin, verifiers)
    except LedgerError as exc:
        problems.append(
            Divergence(at, f"checkpoint {size} signature", "valid log signature", str(exc))
        )
        return None
    if len(opened.verified) != len(opened.sigs):
        # The log stores its own signature only (cosignatures live apart): any other line
        # was added afterwards.
        others = [f"{s.name}+{s.key_id.hex()}" for s in opened.sigs if s not in opened.verified]
        problems.append(
            Divergence(at, f"checkpoint {size} signatures", "the log's only", ", ".join(others))
        )
        return None
    if parsed.size != size or parsed.root_hash != root_column:
        problems.append(
            Divergence(
                at,
                f"checkpoint {size} columns disagree with its note",
                f"size {parsed.size} root {_hex(parsed.root_hash)}",
                f"size {size} root {_show(root_column)}",
            )
        )
        return None
    return parsed.root_hash
