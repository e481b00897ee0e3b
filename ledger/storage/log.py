"""The append-only Merkle log over the ``log_*`` tables.

Invariants (each is tested, and re-checked by ``ledger.storage.audit``):

1. Entries are numbered 0, 1, 2, … with no gap: the index is assigned inside the same
   transaction that inserts the entry, while holding the append lock, so an acknowledged
   append is never lost, duplicated or reordered.
2. Appends are serialised: PostgreSQL by ``pg_advisory_xact_lock`` (released by commit or
   rollback, so a crashed appender can never leave it held); SQLite by its single writer,
   taken up front with ``BEGIN IMMEDIATE`` (``ledger.storage.db``).
3. A tile row is written only when the tile is full, so tile rows never change.  A proof
   reads O(log n) stored hashes: full tiles carry their inner nodes; only the growing right
   edge is hashed on the fly from at most 255 stored hashes per level.
4. Every append ends by signing a checkpoint for the new size, after checking that the new
   root is consistent with the latest stored checkpoint: the log never signs a checkpoint
   that contradicts an earlier one.  The checkpoint is stored in the append's transaction,
   so an acknowledged append is always covered by a stored signed checkpoint.
5. An append computes its tiles, root and consistency proof from the tree's right edge (the
   partial tile at each level, ``RightEdge``).  A ``Log`` keeps the edge of its last append
   and uses it only if the latest stored checkpoint, read under the append lock, has the
   same size and root; otherwise (a rolled-back transaction, another process appended) it
   reads the edge from the tables and refuses to append unless its root is that
   checkpoint's root.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Lock
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from ledger import merkle
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import AppendError, ProofError
from ledger.merkle import Node
from ledger.note import NoteSigner
from ledger.storage.db import driver
from ledger.storage.models import LogCheckpoint, LogEntry, LogLeafIndex, LogTile
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH

NODES_PER_TILE = 2 * TILE_WIDTH - 1
TILE_BYTES = NODES_PER_TILE * 32
MAX_ENTRY_BYTES = 0xFFFF  # entry bundles carry a uint16 length (c2sp.org/tlog-tiles)
# 'celedger' as a signed 64-bit integer: one lock id, shared by every replica.
APPEND_LOCK_ID = int.from_bytes(b"celedger", "big", signed=True)
#: ``session.info`` key: (asked, got) — ``time.perf_counter()`` when the transaction first asked
#: for the append lock and when it had it.  Every append waits for the one before it, so how
#: long appenders wait for and hold the lock is how much of the write path runs one at a
#: time; whoever owns the session (the API's metrics) reads this when the transaction ends.
LOCK_TIMES = "celedger.append_lock"

_SHA = hashlib.sha256


def build_tile_nodes(base: Sequence[bytes]) -> bytes:
    """The 511 nodes of a full tile, bottom level first, each level left to right."""
    if len(base) != TILE_WIDTH:
        raise AppendError(f"tile needs {TILE_WIDTH} base hashes, found {len(base)}")
    out = list(base)
    level = list(base)
    while len(level) > 1:
        level = merkle.parent_level(level)
        out.extend(level)
    return b"".join(out)


def _node_offset(sub: int, j: int) -> int:
    """Byte offset in a tile blob of the j-th node ``sub`` levels above the tile's base."""
    return (2 * TILE_WIDTH - (2 * TILE_WIDTH >> sub) + j) * 32


ROOT_OFFSET = _node_offset(TILE_HEIGHT, 0)


Pyramid = tuple[tuple[bytes, ...], ...]
"""Every complete node above a run of hashes at height 8·L that starts on a tile boundary, by
sub-level: entry ``s`` holds the hashes at height 8·L + s, left to right."""


class TileCache:
    """Process-wide LRU of full tiles.  Full tiles are immutable, so caching them is safe —
    provided only *committed* reads fill it (see ``TreeReader``)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._data: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._capacity = capacity
        self._edges: OrderedDict[tuple[int, int], Pyramid] = OrderedDict()
        self._lock = Lock()

    def get(self, key: tuple[int, int]) -> bytes | None:
        with self._lock:
            v = self._data.get(key)
            if v is not None:
                self._data.move_to_end(key)
            return v

    def put(self, key: tuple[int, int], value: bytes) -> None:
        with self._lock:
            _remember(self._data, key, value, self._capacity)

    # The right edge: every proof against the latest checkpoint needs the nodes of the same
    # partial tiles (one per level), and hashing them up from their base hashes was ~0.3 ms
    # of a 0.6 ms proof at 10M entries.  Kept hashed, for the last few sizes asked.
    _EDGES = 64

    def edge(self, key: tuple[int, int]) -> Pyramid | None:
        with self._lock:
            return self._edges.get(key)

    def put_edge(self, key: tuple[int, int], nodes: Pyramid) -> None:
        with self._lock:
            _remember(self._edges, key, nodes, self._EDGES)


def _remember(
    store: OrderedDict[tuple[int, int], Any], key: tuple[int, int], value: object, capacity: int
) -> None:
    """Put ``value`` in an LRU ``store`` as the most recent, dropping the oldest past
    ``capacity``."""
    store[key] = value
    store.move_to_end(key)
    while len(store) > capacity:
        store.popitem(last=False)


# Statements built once: SQLAlchemy then only looks up their compiled form per call.
_LEAVES = (
    select(LogEntry.idx, LogEntry.leaf_hash)
    .where(LogEntry.idx >= bindparam("lo"), LogEntry.idx < bindparam("hi"))
    .order_by(LogEntry.idx)
)
_ROOTS = (
    select(LogTile.idx, func.substr(LogTile.nodes, ROOT_OFFSET + 1, 32))
    .where(
        LogTile.level == bindparam("lvl"),
        LogTile.idx >= bindparam("lo"),
        LogTile.idx < bindparam("hi"),
    )
    .order_by(LogTile.idx)
)
# One query per tile level: SQLite does not use the (level, idx) primary key for a row-value
# "(level, idx) IN (...)" and would scan every tile.
_PG_TILES = "SELECT idx, nodes FROM log_tiles WHERE level = %s AND idx = ANY(%s)"
_TILES = select(LogTile.idx, LogTile.nodes).where(
    LogTile.level == bindparam("lvl"), LogTile.idx.in_(bindparam("idxs", expanding=True))
)


class TreeReader:
    """Reads perfect-subtree hashes of the stored tree of a given size (a ``HashReader``).

    With a cache (committed reads only) it remembers full tiles and the partial tiles at the
    right edge of this size: both are fixed once committed, and every proof against the
    latest checkpoint needs the same right edge.
    """

    def __init__(self, session: Session, size: int, cache: TileCache | None = None) -> None:
        self.session = session
        self.size = size
        self.cache = cache
        # Hashes an appender already holds in memory, per level: (first position, hashes).
        self.known: dict[int, tuple[int, list[bytes]]] = {}

    # -- raw reads -------------------------------------------------------------------------
    def tiles(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        missing: list[tuple[int, int]] = []
        for k in keys:
            v = self.cache.get(k) if self.cache else None
            if v is None:
                missing.append(k)
            else:
                found[k] = v
        by_level: dict[int, list[int]] = {}
        for level, idx in missing:
            by_level.setdefault(level, []).append(idx)
        for level, idxs in by_level.items():
            for idx, nodes in self._tile_rows(level, idxs):
                found[(level, idx)] = bytes(nodes)
                if self.cache:
                    self.cache.put((level, idx), bytes(nodes))
        for k in keys:
            if k not in found:
                raise ProofError(
                    f"tile {k[0]}/{k[1]} should be stored (tree size {self.size}) but is not"
                )
        return found

    def _tile_rows(self, level: int, idxs: list[int]) -> Iterable[tuple[int, bytes]]:
        if self.session.connection().dialect.name == "postgresql":
            # Straight to the driver in binary: a proof at 10M reads about one level-0 tile
            # from the database, and the ORM's statement handling around that one small read
            # cost as much as the read (bench/bench_ledger.py, proof at 10M).
            cur = driver(self.session).cursor()
            try:
                cur.execute(_PG_TILES, (level, idxs), binary=True, prepare=True)
                return list(cur.fetchall())
            finally:
                cur.close()
        return [(int(i), n) for i, n in self.session.execute(_TILES, {"lvl": level, "idxs": idxs})]

    def base_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """Hashes at height 8·level for positions [start, end): leaf hashes at level 0,
        else the roots of the full tiles one level down."""
        if start >= end:
            return []
        if level in self.known:
            k0, have = self.known[level]
            k1 = k0 + len(have)
            if k0 <= start and end <= k1:
                return have[start - k0 : end - k0]
            if start < k0 < end <= k1:
                return self.base_hashes(level, start, k0) + have[: end - k0]
        if level == 0:
            rows = self.session.execute(_LEAVES, {"lo": start, "hi": end}).all()
        else:
            rows = self.session.execute(_ROOTS, {"lvl": level - 1, "lo": start, "hi": end}).all()
        if len(rows) != end - start or (rows and (rows[0][0] != start or rows[-1][0] != end - 1)):
            raise ProofError(
                f"level {level} hashes [{start}, {end}): expected {end - start} stored, "
                f"found {len(rows)}"
            )
        return [bytes(r[1]) for r in rows]

    def partial_tile(self, level: int, tile: int) -> Pyramid:
        """Every complete node of the partial tile (level, tile), by sub-level."""
        start = tile * TILE_WIDTH
        end = self.size >> (TILE_HEIGHT * level)
        key = (-1 - level, tile * 1024 + (end - start))  # never collides with a full tile
        cached = self.cache.edge(key) if self.cache else None
        if cached is not None:
            return cached
        nodes = _pyramid((), self.base_hashes(level, start, end))
        if self.cache:
            self.cache.put_edge(key, nodes)
        return nodes

    # -- the HashReader --------------------------------------------------------------------
    def read(self, nodes: Sequence[Node]) -> list[bytes]:
        plans: list[tuple[int, int, int, int]] = []  # (level, tile, sub, j)
        want_tiles: set[tuple[int, int]] = set()
        for h, i in nodes:
            if h < 0 or i < 0 or (i + 1) << h > self.size:
                raise ProofError(f"node ({h}, {i}) lies outside the tree of size {self.size}")
            if h == 0:
                level, sub, tile = 0, 0, i >> TILE_HEIGHT
                j = i & (TILE_WIDTH - 1)
            else:
                level = (h - 1) // TILE_HEIGHT
                sub = h - TILE_HEIGHT * level
                tile = i >> (TILE_HEIGHT - sub)
                j = i - (tile << (TILE_HEIGHT - sub))
            if (tile + 1) * TILE_WIDTH <= self.size >> (TILE_HEIGHT * level):
                want_tiles.add((level, tile))
            plans.append((level, tile, sub, j))
        full = self.tiles(want_tiles) if want_tiles else {}
        partial: dict[tuple[int, int], Pyramid] = {}
        out: list[bytes] = []
        for level, tile, sub, j in plans:
            blob = full.get((level, tile))
            if blob is not None:
                off = _node_offset(sub, j)
                out.append(blob[off : off + 32])
                continue
            if (level, tile) not in partial:
                partial[(level, tile)] = self.partial_tile(level, tile)
            out.append(partial[(level, tile)][sub][j])
        return out


@dataclass(frozen=True)
class RightEdge:
    """What an appender must know of the tree of ``size`` leaves: its root and, per tile level,
    the pyramid (sub-levels 0..7) of the partial tile at that level.

    The tiles an append completes, the new root and the consistency proof from ``size`` all
    follow from the edge and the new leaf hashes (``grow``), so an append that holds the edge
    of the latest signed tree reads nothing of the tree.  Instances are never mutated.
    """

    size: int
    root: bytes
    levels: tuple[Pyramid, ...]


def _pyramid(part: Pyramid, fresh: Sequence[bytes]) -> Pyramid:
    """Sub-levels 0..8 above ``part``'s base hashes followed by ``fresh``; only the nodes that
    ``part`` does not already hold are hashed."""
    sha = _SHA  # bound once: this is the hot loop of an append
    out = [part[0] + tuple(fresh) if part else tuple(fresh)]
    for s in range(1, TILE_HEIGHT + 1):
        have = part[s] if s < len(part) else ()
        todo = out[-1][2 * len(have) :]
        # An odd last hash has no parent yet: strict=False drops it, as it should.
        pairs = zip(todo[::2], todo[1::2], strict=False)
        out.append(have + tuple([sha(b"\x01" + a + b).digest() for a, b in pairs]))
    return tuple(out)


def _edge_reader(
    size: int, starts: Sequence[int], pyramids: Sequence[Pyramid]
) -> merkle.HashReader:
    """A ``HashReader`` over in-memory pyramids; pyramid L starts at position ``starts[L]``."""

    def read(nodes: Sequence[Node]) -> list[bytes]:
        out: list[bytes] = []
        for h, i in nodes:
            level, sub = divmod(h, TILE_HEIGHT)
            row = pyramids[level][sub] if 0 <= level < len(pyramids) else ()
            j = i - (starts[level] >> sub) if row else -1
            if not 0 <= j < len(row):
                raise AppendError(
                    f"node ({h}, {i}) should be on the right edge of the tree of size {size} "
                    "but is not"
                )
            out.append(row[j])
        return out

    return read


def edge_from_bases(size: int, bases: Sequence[Sequence[bytes]]) -> RightEdge:
    """The edge of the tree of ``size`` leaves from its partial tiles' base hashes, one list
    per level (``(size >> 8·L) % 256`` hashes at level L, for every L with ``size >> 8·L > 0``)."""
    levels = tuple(_pyramid((), b)[:TILE_HEIGHT] for b in bases)
    starts = [(size >> (TILE_HEIGHT * lvl)) & ~(TILE_WIDTH - 1) for lvl in range(len(levels))]
    return RightEdge(size, merkle.tree_root(size, _edge_reader(size, starts, levels)), levels)


@dataclass(frozen=True)
class Growth:
    """An edge grown by some leaves: the new edge, the full tiles to store (level, index,
    511 nodes), and a reader of every node of the new root and of the consistency proof from
    the old size."""

    edge: RightEdge
    tiles: list[tuple[int, int, bytes]]
    read: merkle.HashReader


def grow(edge: RightEdge, leaf_hashes: Sequence[bytes]) -> Growth:
    """Append ``leaf_hashes`` to ``edge`` in memory: about one hash per new node, no reads.

    Per level, the pyramid runs from the start of the old partial tile to the new end, so it
    holds every node of the new root (the new partial tiles) and of the consistency proof (the
    old partial tiles and nodes over new leaves only)."""
    old, new = edge.size, edge.size + len(leaf_hashes)
    starts: list[int] = []
    pyramids: list[Pyramid] = []
    kept: list[Pyramid] = []
    tiles: list[tuple[int, int, bytes]] = []
    carry: Sequence[bytes] = leaf_hashes
    level = 0
    while new >> (TILE_HEIGHT * level):
        start = (old >> (TILE_HEIGHT * level)) & ~(TILE_WIDTH - 1)
        p = _pyramid(edge.levels[level] if level < len(edge.levels) else (), carry)
        full = len(p[TILE_HEIGHT])  # one tile root per tile completed at this level
        for k in range(full):
            tiles.append(
                (
                    level,
                    (start >> TILE_HEIGHT) + k,
                    b"".join(
                        b"".join(p[s][k << (TILE_HEIGHT - s) : (k + 1) << (TILE_HEIGHT - s)])
                        for s in range(TILE_HEIGHT + 1)
                    ),
                )
            )
        kept.append(tuple(p[s][full << (TILE_HEIGHT - s) :] for s in range(TILE_HEIGHT)))
        starts.append(start)
        pyramids.append(p)
        carry = p[TILE_HEIGHT]
        level += 1
    read = _edge_reader(new, starts, pyramids)
    return Growth(RightEdge(new, merkle.tree_root(new, read), tuple(kept)), tiles, read)


@dataclass(frozen=True)
class AppendResult:
    first_index: int
    count: int
    tree_size: int
    root_hash: bytes
    checkpoint: str


class Log:
    """The log of one origin, signed by one key."""

    def __init__(self, origin: str, signer: NoteSigner, cache: TileCache | None = None) -> None:
        if signer.name != origin:
            raise AppendError(
                f"log key name must equal the origin: expected {origin!r}, found {signer.name!r}"
            )
        self.origin = origin
        self.signer = signer
        self.cache = cache if cache is not None else TileCache()
        # The right edge of the tree this process last appended to (see ``append``).
        self._edge: RightEdge | None = None

    # -- reading ---------------------------------------------------------------------------
    @staticmethod
    def size(session: Session) -> int:
        top = session.execute(select(func.max(LogEntry.idx))).scalar_one()
        return 0 if top is None else int(top) + 1

    @staticmethod
    def latest_checkpoint(session: Session) -> LogCheckpoint | None:
        return session.execute(
            select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)
        ).scalar_one_or_none()

    def reader(self, session: Session, size: int) -> TreeReader:
        """A cached reader: for committed reads only (appends build their own, uncached)."""
        return TreeReader(session, size, self.cache)

    def root(self, session: Session, size: int) -> bytes:
        return merkle.tree_root(size, self.reader(session, size).read)

    def inclusion_proof(
        self, session: Session, index: int, size: int, *, stored: bool = False
    ) -> list[bytes]:
        """The proof that leaf ``index`` is in the tree of ``size``.  ``stored=True`` says the
        caller checked the size against a stored checkpoint (at most its size), so the tree
        has it: the size query is skipped."""
        if not stored:
            self._check_size(session, size)
        if not 0 <= index < size:
            raise ProofError(f"leaf index must be in [0, {size}), found {index}")
        return merkle.inclusion_proof(index, size, self.reader(session, size).read)

    def consistency_proof(
        self, session: Session, old: int, new: int, *, stored: bool = False
    ) -> list[bytes]:
        """The proof that the tree of ``old`` is a prefix of the tree of ``new``; ``stored``
        as for `inclusion_proof`."""
        if not stored:
            self._check_size(session, new)
        if not 0 <= old <= new:
            raise ProofError(f"consistency needs 0 <= old <= new, found old={old}, new={new}")
        return merkle.consistency_proof(old, new, self.reader(session, new).read)

    def _check_size(self, session: Session, size: int) -> None:
        current = self.size(session)
        if not 0 <= size <= current:
            raise ProofError(f"tree size must be in [0, {current}], found {size}")

    @staticmethod
    def index_of(session: Session, leaf_hash: bytes) -> int | None:
        """The first index whose leaf hash is ``leaf_hash``: the index table, then a scan of
        the tail the indexer has not reached yet."""
        found = session.execute(
            select(func.min(LogLeafIndex.idx)).where(LogLeafIndex.leaf_hash == leaf_hash)
        ).scalar_one_or_none()
        if found is not None:
            return int(found)
        done = session.execute(select(func.max(LogLeafIndex.idx))).scalar_one()
        tail = session.execute(
            select(func.min(LogEntry.idx)).where(
                LogEntry.idx > (-1 if done is None else done), LogEntry.leaf_hash == leaf_hash
            )
        ).scalar_one_or_none()
        return None if tail is None else int(tail)

    @staticmethod
    def entries(session: Session, start: int, end: int) -> list[bytes]:
        rows = session.execute(
            select(LogEntry.body)
            .where(LogEntry.idx >= start, LogEntry.idx < end)
            .order_by(LogEntry.idx)
        ).scalars()
        return [bytes(b) for b in rows]

    @staticmethod
    def entry(session: Session, index: int) -> bytes | None:
        body = session.execute(
            select(LogEntry.body).where(LogEntry.idx == index)
        ).scalar_one_or_none()
        return None if body is None else bytes(body)

    @staticmethod
    def check_tile(level: int | None, index: int, width: int, size: int) -> None:
        """Raise ``ProofError`` unless the tree of ``size`` has this tile (level None: an
        entry bundle) at exactly this width.  A partial tile exists only at the width the
        tree has now; any other width would be a tile of some other tree."""
        count = size if level is None else size >> (TILE_HEIGHT * level)
        start = index * TILE_WIDTH
        if width != min(TILE_WIDTH, count - start):
            what = "entry bundle" if level is None else f"tile {level}/"
            raise ProofError(
                f"{what}{index} is not in the tree of size {size} at width {width}: expected "
                + (f"width {min(TILE_WIDTH, count - start)}" if count > start else "a lower index")
            )

    def tile_hashes(self, session: Session, level: int, index: int, width: int, size: int) -> bytes:
        """The c2sp tile (level, index, width) of the tree of the given size."""
        self.check_tile(level, index, width, size)
        if width == TILE_WIDTH:
            tile = self.reader(session, size).tiles({(level, index)})[(level, index)]
            return tile[: TILE_WIDTH * 32]
        start = index * TILE_WIDTH
        return b"".join(TreeReader(session, size).base_hashes(level, start, start + width))

    def entry_bundle(self, session: Session, index: int, width: int, size: int) -> list[bytes]:
        """The entries of bundle (index, width) of the tree of the given size."""
        self.check_tile(None, index, width, size)
        return self.entries(session, index * TILE_WIDTH, index * TILE_WIDTH + width)

    # -- appending -------------------------------------------------------------------------
    def lock(self, session: Session) -> None:
        """Take the append lock for the rest of the session's transaction (`LOCK_TIMES`)."""
        asked = time.perf_counter()
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            # Why an advisory lock: it serialises appenders on every replica of the API
            # without a table lock that would also block readers, and it is released by the
            # transaction's end whatever happens to the process.
            driver(session).execute(_PG_LOCK, (APPEND_LOCK_ID,))
        # SQLite: the writer session already holds the database's single write lock.
        session.info.setdefault(LOCK_TIMES, (asked, time.perf_counter()))

    def append(self, session: Session, items: Sequence[tuple[str, bytes]]) -> AppendResult:
        """Append entries (kind, canonical bytes) and sign a checkpoint, in the caller's
        transaction.  Nothing is visible until the caller commits.

        The statements are the lock, one read of the tree's state, the entries (COPY on
        PostgreSQL), and one write of the completed tiles with the checkpoint; the right edge
        of the tree comes from this process's last append when it is still the edge of the
        latest signed checkpoint, and is read from the tables otherwise."""
        if not items:
            raise AppendError("nothing to append: expected at least one entry, found 0")
        for n, (_kind, body) in enumerate(items):
            if len(body) > MAX_ENTRY_BYTES:
                raise AppendError(
                    f"entry {n} is {len(body)} bytes: entries are at most {MAX_ENTRY_BYTES} bytes"
                )
        # Whatever the caller added to the session reaches the database first, as before.
        session.flush()
        postgres = session.connection().dialect.name == "postgresql"
        db = driver(session)
        self.lock(session)
        # Read after the lock, in its own statement: under READ COMMITTED a statement's
        # snapshot is taken when it starts, so a read that waited for the lock would miss the
        # append it waited for.
        top, cp_size, cp_root = db.execute(_STATE).fetchone()
        old_size = 0 if top is None else int(top) + 1
        if (0 if cp_size is None else int(cp_size)) != old_size:
            raise AppendError(
                f"latest checkpoint covers {cp_size or 0} entries but the tree had {old_size}"
            )
        signed_root = merkle.EMPTY_ROOT if cp_root is None else bytes(cp_root)
        edge = self._edge
        # The cached edge is trusted only for the tree it was computed for: a rolled-back
        # append, or an append by another process, leaves a latest checkpoint that differs
        # in size or root, and then the edge is read again.
        if edge is None or edge.size != old_size or edge.root != signed_root:
            edge = self._read_edge(session, old_size)
            if edge.root != signed_root:
                raise AppendError(
                    f"stored tree of size {old_size} does not match the latest checkpoint: "
                    f"expected root {signed_root.hex()}, found {edge.root.hex()}"
                )
        hashes: list[bytes] = []
        with _inserting_entries(db, postgres, old_size, items, hashes):
            # On PostgreSQL this block runs while the server is still storing the COPY data:
            # the tree's hashing overlaps the server's work instead of waiting for it.
            growth = grow(edge, hashes)
            new_size, root = growth.edge.size, growth.edge.root
            if old_size:
                # Belt and braces: prove the new tree extends the last signed one before
                # signing.
                proof = merkle.consistency_proof(old_size, new_size, growth.read)
                try:
                    merkle.verify_consistency(old_size, new_size, proof, signed_root, root)
                except ProofError as exc:
                    raise AppendError(
                        f"new tree of size {new_size} does not extend the signed tree of size "
                        f"{old_size}: {exc}"
                    ) from exc
            note = sign_checkpoint(Checkpoint(self.origin, new_size, root), self.signer)
        checkpoint = (new_size, root, note, _signed_at(session))
        if postgres:
            if growth.tiles:
                levels, idxs, blobs = (list(col) for col in zip(*growth.tiles, strict=True))
                db.execute(_PG_TILES_AND_CHECKPOINT, (levels, idxs, blobs, *checkpoint))
            else:
                db.execute(_PG_CHECKPOINT, checkpoint)
        else:
            if growth.tiles:
                db.executemany(_SQLITE_TILE, growth.tiles)
            db.execute(_SQLITE_CHECKPOINT, checkpoint)
        # Cached before the commit, which is safe: the edge is used only when the latest
        # checkpoint read under the lock has its size and root.  Threads sharing this Log
        # are serialised by the append lock, and an edge is never mutated once built.
        self._edge = growth.edge
        return AppendResult(old_size, new_size - old_size, new_size, root, note)

    def _read_edge(self, session: Session, size: int) -> RightEdge:
        """The right edge of the stored tree of ``size`` leaves: at most 255 stored hashes per
        level, read in this transaction."""
        reader = TreeReader(session, size)
        bases = []
        level = 0
        while count := size >> (TILE_HEIGHT * level):
            bases.append(reader.base_hashes(level, count & ~(TILE_WIDTH - 1), count))
            level += 1
        return edge_from_bases(size, bases)


# The append path talks to the driver directly: it runs on every append, and SQLAlchemy's
# per-statement work costs more than the statements themselves at a batch of 1,000.
_PG_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_STATE = (
    "SELECT (SELECT max(idx) FROM log_entries), (SELECT max(size) FROM log_checkpoints), "
    "(SELECT root_hash FROM log_checkpoints ORDER BY size DESC LIMIT 1)"
)
_PG_CHECKPOINT = (
    "INSERT INTO log_checkpoints (size, root_hash, note, signed_at) VALUES (%s, %s, %s, %s)"
)
# Tiles and checkpoint in one round trip: a data-modifying WITH runs to completion even
# though the outer statement does not read it.
_PG_TILES_AND_CHECKPOINT = (
    "WITH tiles AS (INSERT INTO log_tiles (level, idx, nodes) "
    "SELECT * FROM unnest(%b::smallint[], %b::bigint[], %b::bytea[])) "
    "INSERT INTO log_checkpoints (size, root_hash, note, signed_at) VALUES (%s, %s, %s, %s)"
)
_PG_COPY_ENTRIES = "COPY log_entries (idx, leaf_hash, kind, body) FROM STDIN (FORMAT BINARY)"
_SQLITE_ENTRY = "INSERT INTO log_entries (idx, leaf_hash, kind, body) VALUES (?, ?, ?, ?)"
_SQLITE_TILE = "INSERT INTO log_tiles (level, idx, nodes) VALUES (?, ?, ?)"
_SQLITE_CHECKPOINT = (
    "INSERT INTO log_checkpoints (size, root_hash, note, signed_at) VALUES (?, ?, ?, ?)"
)


def _signed_at(session: Session) -> Any:
    """Now, as the ``signed_at`` column's type would bind it (SQLite stores text)."""
    dialect = session.connection().dialect
    now = datetime.now(UTC)
    column = LogCheckpoint.__table__.c.signed_at
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return now if process is None else process(now)


@contextmanager
def _inserting_entries(
    db: Any, postgres: bool, first: int, items: Sequence[tuple[str, bytes]], hashes: list[bytes]
) -> Iterator[None]:
    """Insert the entries from index ``first``, filling ``hashes`` with their leaf hashes.

    Each entry is hashed as it is written, so PostgreSQL starts storing rows at once.  The
    COPY is finished after the with-block, which then runs while the server catches up."""
    sha = _SHA
    if postgres:
        # COPY is PostgreSQL's bulk path: several times faster than multi-row INSERT.
        with db.cursor() as cur, cur.copy(_PG_COPY_ENTRIES) as copy:
            copy.set_types(["bigint", "bytea", "text", "bytea"])
            write = copy.write_row
            for idx, (kind, body) in enumerate(items, first):
                h = sha(b"\x00" + body).digest()
                hashes.append(h)
                write((idx, h, kind, body))
            yield
        return

    def rows() -> Iterator[tuple[int, bytes, str, bytes]]:
        for idx, (kind, body) in enumerate(items, first):
            h = sha(b"\x00" + body).digest()
            hashes.append(h)
            yield idx, h, kind, body

    db.executemany(_SQLITE_ENTRY, rows())
    yield


def index_leaves(session: Session, limit: int = 100_000) -> int:
    """Extend the leaf-hash index over entries appended since it last ran; returns how many
    it indexed.  Safe to run from any process at any time (serialised by its own advisory
    lock on PostgreSQL, by the single writer on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_ID + 1})
    done = session.execute(select(func.max(LogLeafIndex.idx))).scalar_one()
    start = 0 if done is None else int(done) + 1
    # Entries are dense (index = position), so how many there are to index is known without
    # reading them; INSERT … SELECT then copies the hashes inside the database, with no Python
    # per entry (this runs after every write response, in the serving process).
    top = session.execute(select(func.max(LogEntry.idx))).scalar_one()
    end = min(start + limit, 0 if top is None else int(top) + 1)
    if end <= start:
        return 0
    session.execute(
        insert(LogLeafIndex).from_select(
            ["leaf_hash", "idx"],
            select(LogEntry.leaf_hash, LogEntry.idx).where(
                LogEntry.idx >= start, LogEntry.idx < end
            ),
        )
    )
    return end - start
