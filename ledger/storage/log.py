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
   that contradicts an earlier one.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
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
from ledger.storage.models import LogCheckpoint, LogEntry, LogLeafIndex, LogTile
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH

NODES_PER_TILE = 2 * TILE_WIDTH - 1
TILE_BYTES = NODES_PER_TILE * 32
MAX_ENTRY_BYTES = 0xFFFF  # entry bundles carry a uint16 length (c2sp.org/tlog-tiles)
# 'celedger' as a signed 64-bit integer: one lock id, shared by every replica.
APPEND_LOCK_ID = int.from_bytes(b"celedger", "big", signed=True)

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


class TileCache:
    """Process-wide LRU of full tiles.  Full tiles are immutable, so caching them is safe —
    provided only *committed* reads fill it (see ``TreeReader``)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._data: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = Lock()

    def get(self, key: tuple[int, int]) -> bytes | None:
        with self._lock:
            v = self._data.get(key)
            if v is not None:
                self._data.move_to_end(key)
            return v

    def put(self, key: tuple[int, int], value: bytes) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._capacity:
                self._data.popitem(last=False)


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
            for idx, nodes in self.session.execute(_TILES, {"lvl": level, "idxs": idxs}):
                found[(level, idx)] = bytes(nodes)
                if self.cache:
                    self.cache.put((level, idx), bytes(nodes))
        for k in keys:
            if k not in found:
                raise ProofError(
                    f"tile {k[0]}/{k[1]} should be stored (tree size {self.size}) but is not"
                )
        return found

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

    def partial_tile(self, level: int, tile: int) -> list[list[bytes]]:
        """Every complete node of the partial tile (level, tile), by sub-level."""
        start = tile * TILE_WIDTH
        end = self.size >> (TILE_HEIGHT * level)
        key = (-1 - level, tile * 1024 + (end - start))  # never collides with a full tile
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            flat = [cached[k : k + 32] for k in range(0, len(cached), 32)]
        else:
            flat = self.base_hashes(level, start, end)
            if self.cache:
                self.cache.put(key, b"".join(flat))
        levels = [flat]
        while len(levels[-1]) > 1:
            levels.append(merkle.parent_level(levels[-1]))
        return levels

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
        partial: dict[tuple[int, int], list[list[bytes]]] = {}
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

    def inclusion_proof(self, session: Session, index: int, size: int) -> list[bytes]:
        self._check_size(session, size)
        if not 0 <= index < size:
            raise ProofError(f"leaf index must be in [0, {size}), found {index}")
        return merkle.inclusion_proof(index, size, self.reader(session, size).read)

    def consistency_proof(self, session: Session, old: int, new: int) -> list[bytes]:
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
        if session.get_bind().dialect.name == "postgresql":
            # Why an advisory lock: it serialises appenders on every replica of the API
            # without a table lock that would also block readers, and it is released by the
            # transaction's end whatever happens to the process.
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_ID})
        # SQLite: the writer session already holds the database's single write lock.

    def append(self, session: Session, items: Sequence[tuple[str, bytes]]) -> AppendResult:
        """Append entries (kind, canonical bytes) and sign a checkpoint, in the caller's
        transaction.  Nothing is visible until the caller commits."""
        if not items:
            raise AppendError("nothing to append: expected at least one entry, found 0")
        for n, (_kind, body) in enumerate(items):
            if len(body) > MAX_ENTRY_BYTES:
                raise AppendError(
                    f"entry {n} is {len(body)} bytes: entries are at most {MAX_ENTRY_BYTES} bytes"
                )
        self.lock(session)
        old_size = self.size(session)
        hashes = [_SHA(b"\x00" + body).digest() for _k, body in items]
        rows = [
            (old_size + n, h, kind, body)
            for n, (h, (kind, body)) in enumerate(zip(hashes, items, strict=True))
        ]
        _bulk_insert_entries(session, rows)
        new_size = old_size + len(items)
        # One reader for the whole append, never cached across transactions: it sees this
        # transaction's uncommitted rows.
        reader = TreeReader(session, new_size)
        reader.known[0] = (old_size, hashes)
        self._complete_tiles(session, reader, old_size, new_size, hashes)
        return self._sign(session, reader, old_size, new_size)

    def _complete_tiles(
        self, session: Session, reader: TreeReader, old_size: int, new_size: int, fresh: list[bytes]
    ) -> None:
        level, old_c, new_c = 0, old_size, new_size
        while True:
            first, end = old_c // TILE_WIDTH, new_c // TILE_WIDTH
            if first == end:
                return
            roots: list[bytes] = []
            tile_rows: list[dict[str, Any]] = []
            for t in range(first, end):
                lo = t * TILE_WIDTH
                stored = reader.base_hashes(level, lo, old_c) if lo < old_c else []
                base = stored + fresh[max(lo, old_c) - old_c : lo + TILE_WIDTH - old_c]
                nodes = build_tile_nodes(base)
                tile_rows.append({"level": level, "idx": t, "nodes": nodes})
                roots.append(nodes[ROOT_OFFSET:])
            session.execute(insert(LogTile), tile_rows)
            reader.known[level + 1] = (first, roots)
            level, old_c, new_c, fresh = level + 1, first, end, roots

    def _sign(
        self, session: Session, reader: TreeReader, old_size: int, new_size: int
    ) -> AppendResult:
        prev = self.latest_checkpoint(session)
        # Read the nodes of the new root and of the consistency proof in one pass.
        wanted = merkle.root_nodes(new_size)
        if prev is not None:
            wanted += [
                n for group in merkle.consistency_proof_nodes(prev.size, new_size) for n in group
            ]
        memo = dict(zip(wanted, reader.read(wanted), strict=True))

        def read(nodes: Sequence[Node]) -> list[bytes]:
            return [memo[n] for n in nodes]

        root = merkle.tree_root(new_size, read)
        if prev is not None:
            if prev.size != old_size:
                raise AppendError(
                    f"latest checkpoint covers {prev.size} entries but the tree had {old_size}"
                )
            # Belt and braces: prove the new tree extends the last signed one before signing.
            proof = merkle.consistency_proof(prev.size, new_size, read)
            merkle.verify_consistency(prev.size, new_size, proof, bytes(prev.root_hash), root)
        note = sign_checkpoint(Checkpoint(self.origin, new_size, root), self.signer)
        session.add(
            LogCheckpoint(size=new_size, root_hash=root, note=note, signed_at=datetime.now(UTC))
        )
        session.flush()
        return AppendResult(old_size, new_size - old_size, new_size, root, note)


def _bulk_insert_entries(session: Session, rows: list[tuple[int, bytes, str, bytes]]) -> None:
    conn = session.connection()
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        # COPY is PostgreSQL's bulk path: several times faster than multi-row INSERT.
        with (
            driver.cursor() as cur,  # type: ignore[union-attr]
            cur.copy(
                "COPY log_entries (idx, leaf_hash, kind, body) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["bigint", "bytea", "text", "bytea"])
            for row in rows:
                copy.write_row(row)
    else:
        driver.executemany(  # type: ignore[union-attr]
            "INSERT INTO log_entries (idx, leaf_hash, kind, body) VALUES (?, ?, ?, ?)", rows
        )


def index_leaves(session: Session, limit: int = 100_000) -> int:
    """Extend the leaf-hash index over entries appended since it last ran; returns how many
    it indexed.  Safe to run from any process at any time (serialised by its own advisory
    lock on PostgreSQL, by the single writer on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_ID + 1})
    done = session.execute(select(func.max(LogLeafIndex.idx))).scalar_one()
    start = 0 if done is None else int(done) + 1
    rows = session.execute(
        select(LogEntry.leaf_hash, LogEntry.idx)
        .where(LogEntry.idx >= start, LogEntry.idx < start + limit)
        .order_by(LogEntry.idx)
    ).all()
    if rows:
        session.execute(insert(LogLeafIndex), [{"leaf_hash": h, "idx": i} for h, i in rows])
    return len(rows)
