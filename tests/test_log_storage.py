"""The stored log on SQLite and PostgreSQL: appends, proofs, tiles, immutability, audit."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.errors import AppendError, ProofError
from ledger.merkle import MemoryTree
from ledger.note import NoteSigner
from ledger.storage.audit import audit_local
from ledger.storage.db import Database
from ledger.storage.log import Log, edge_from_bases, grow
from ledger.storage.models import drop_append_only_ddl

ORIGIN = "test.example/log"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(db_url)
    yield d
    d.dispose()


@pytest.fixture
def log() -> Log:
    return Log(ORIGIN, NoteSigner.generate(ORIGIN))


def _entries(start: int, n: int) -> list[tuple[str, bytes]]:
    return [("test", b'{"n":%d,"v":1}' % i) for i in range(start, start + n)]


def _fill(db: Database, log: Log, sizes: list[int]) -> MemoryTree:
    mem = MemoryTree()
    total = 0
    for n in sizes:
        with db.writer() as s:
            res = log.append(s, _entries(total, n))
        assert res.first_index == total and res.count == n
        for _k, body in _entries(total, n):
            mem.append(body)
        total += n
        assert res.root_hash == mem.root()
    return mem


def test_append_assigns_contiguous_indices_and_signs(db: Database, log: Log) -> None:
    mem = _fill(db, log, [1, 2, 300, 255, 1, 70000 - 559])
    with db.reader() as s:
        assert Log.size(s) == 70000
        cp = Log.latest_checkpoint(s)
        assert cp is not None and cp.size == 70000
        parsed, _ = open_checkpoint(cp.note, ORIGIN, [log.signer.verifier()])
        assert parsed.root_hash == mem.root()
        assert log.root(s, 70000) == mem.root()


def test_proofs_match_memory_tree(db: Database, log: Log) -> None:
    mem = _fill(db, log, [100, 156, 1, 256 * 3 + 17, 511])
    size = mem.size
    rng = random.Random(7)
    sizes = [rng.randint(1, size) for _ in range(60)]
    with db.reader() as s:
        # Twice over the same sizes: the second time the right edges come from the cache.
        for n in sizes + sizes:
            i = rng.randrange(n)
            proof = log.inclusion_proof(s, i, n)
            assert proof == mem.inclusion_proof(i, n)
            merkle.verify_inclusion(
                mem.read([(0, i)])[0], i, n, proof, merkle.tree_root(n, mem.read)
            )
            a = rng.randint(0, n)
            assert log.consistency_proof(s, a, n) == mem.consistency_proof(a, n)


def test_tiles_served_equal_memory_tree_hashes(db: Database, log: Log) -> None:
    mem = _fill(db, log, [256 * 256 + 300])
    size = mem.size
    with db.reader() as s:
        full = log.tile_hashes(s, 0, 3, 256, size)
        assert full == b"".join(mem.read([(0, i) for i in range(768, 1024)]))
        partial = log.tile_hashes(s, 0, 257, 44, size)
        assert partial == b"".join(mem.read([(0, i) for i in range(257 * 256, size)]))
        lvl1 = log.tile_hashes(s, 1, 0, 256, size)
        assert lvl1 == b"".join(mem.read([(8, i) for i in range(256)]))
        lvl1p = log.tile_hashes(s, 1, 1, 1, size)
        assert lvl1p == mem.read([(8, 256)])[0]
        lvl2 = log.tile_hashes(s, 2, 0, 1, size)
        assert lvl2 == mem.read([(16, 0)])[0]
        with pytest.raises(ProofError):
            log.tile_hashes(s, 0, 257, 43, size)  # a width the tree does not have


def test_bad_proof_requests_raise(db: Database, log: Log) -> None:
    _fill(db, log, [10])
    with db.reader() as s:
        for i, n in [(10, 10), (-1, 10), (0, 11), (0, 0)]:
            with pytest.raises(ProofError):
                log.inclusion_proof(s, i, n)
        for a, b in [(5, 4), (-1, 3), (0, 11)]:
            with pytest.raises(ProofError):
                log.consistency_proof(s, a, b)


def test_oversized_and_empty_appends_refused(db: Database, log: Log) -> None:
    with db.writer() as s, pytest.raises(AppendError):
        log.append(s, [])
    with db.writer() as s, pytest.raises(AppendError):
        log.append(s, [("test", b"x" * 70000)])
    with db.reader() as s:
        assert Log.size(s) == 0


def test_failed_transaction_leaves_nothing(db: Database, log: Log) -> None:
    _fill(db, log, [5])
    with pytest.raises(RuntimeError), db.writer() as s:
        log.append(s, _entries(5, 300))
        raise RuntimeError("client went away")
    with db.reader() as s:
        assert Log.size(s) == 5
        assert Log.latest_checkpoint(s).size == 5  # type: ignore[union-attr]
    _fill_more = _entries(5, 3)
    with db.writer() as s:
        assert log.append(s, _fill_more).first_index == 5


@pytest.mark.parametrize("table", ["log_entries", "log_tiles", "log_checkpoints"])
@pytest.mark.parametrize("op", ["UPDATE", "DELETE"])
def test_database_refuses_changes_to_ledger_tables(
    db: Database, log: Log, table: str, op: str
) -> None:
    _fill(db, log, [300])
    col = {"log_entries": "kind", "log_tiles": "nodes", "log_checkpoints": "note"}[table]
    value = "'x'" if col != "nodes" else "nodes"
    stmt = f"UPDATE {table} SET {col} = {value}" if op == "UPDATE" else f"DELETE FROM {table}"
    with pytest.raises(DBAPIError, match="append-only"), db.writer() as s:
        s.execute(text(stmt))


def test_truncate_refused_on_postgresql(db: Database, log: Log) -> None:
    if db.dialect != "postgresql":
        return  # SQLite has no TRUNCATE statement; DELETE is covered above
    _fill(db, log, [3])
    with pytest.raises(DBAPIError, match="append-only"), db.writer() as s:
        s.execute(text("TRUNCATE log_entries"))


def _bypass(db: Database):  # type: ignore[no-untyped-def]
    """Drop the append-only triggers, as an attacker with database access could."""
    with db.writer() as s:
        for stmt in drop_append_only_ddl(db.dialect):
            s.execute(text(stmt))


def _audit(db: Database, log: Log):  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return audit_local(s, ORIGIN, [log.signer.verifier()])


def test_audit_clean(db: Database, log: Log) -> None:
    mem = _fill(db, log, [1, 700, 256 * 256])
    report = _audit(db, log)
    assert report.ok, report.problems
    assert report.entries == mem.size and report.root_hash == mem.root()
    assert report.checkpoints == 3


def test_audit_finds_tampered_entry(db: Database, log: Log) -> None:
    _fill(db, log, [600])
    _bypass(db)
    with db.writer() as s:
        s.execute(
            text("UPDATE log_entries SET body = :b WHERE idx = 417"), {"b": b'{"n":999,"v":1}'}
        )
    report = _audit(db, log)
    assert not report.ok and report.first is not None and report.first.index == 417


def test_audit_finds_tampered_entry_with_rehashed_leaf(db: Database, log: Log) -> None:
    _fill(db, log, [600])
    _bypass(db)
    body = b'{"n":999,"v":1}'
    with db.writer() as s:
        s.execute(
            text("UPDATE log_entries SET body = :b, leaf_hash = :h WHERE idx = 100"),
            {"b": body, "h": merkle.leaf_hash(body)},
        )
    report = _audit(db, log)
    assert report.first is not None and report.first.index == 100


def test_audit_finds_deleted_entry(db: Database, log: Log) -> None:
    _fill(db, log, [600])
    _bypass(db)
    with db.writer() as s:
        s.execute(text("DELETE FROM log_entries WHERE idx = 33"))
    report = _audit(db, log)
    assert report.first is not None and report.first.index == 33


def test_audit_finds_swapped_pair(db: Database, log: Log) -> None:
    _fill(db, log, [600])
    _bypass(db)
    with db.writer() as s:
        a = s.execute(text("SELECT body, leaf_hash FROM log_entries WHERE idx = 10")).one()
        b = s.execute(text("SELECT body, leaf_hash FROM log_entries WHERE idx = 20")).one()
        s.execute(
            text("UPDATE log_entries SET body=:b, leaf_hash=:h WHERE idx = 10"),
            {"b": b[0], "h": b[1]},
        )
        s.execute(
            text("UPDATE log_entries SET body=:b, leaf_hash=:h WHERE idx = 20"),
            {"b": a[0], "h": a[1]},
        )
    report = _audit(db, log)
    assert report.first is not None and report.first.index == 10


def test_audit_finds_forged_checkpoint(db: Database, log: Log) -> None:
    mem = _fill(db, log, [50, 50])
    _bypass(db)
    forger = NoteSigner.generate(ORIGIN)  # right name, wrong key
    from ledger.checkpoint import Checkpoint, sign_checkpoint

    forged = sign_checkpoint(Checkpoint(ORIGIN, 50, mem.read([(0, 0)])[0]), forger)
    with db.writer() as s:
        s.execute(text("UPDATE log_checkpoints SET note = :n WHERE size = 50"), {"n": forged})
    report = _audit(db, log)
    assert report.first is not None and report.first.index == 49
    assert "signature" in report.first.what


def test_audit_finds_checkpoint_with_wrong_root_but_valid_signature(db: Database, log: Log) -> None:
    _fill(db, log, [50, 50])
    _bypass(db)
    from ledger.checkpoint import Checkpoint, sign_checkpoint

    # Signed by the real key: a log that was made to sign a lie (split view) is caught too.
    lie = sign_checkpoint(Checkpoint(ORIGIN, 50, b"\x07" * 32), log.signer)
    with db.writer() as s:
        s.execute(
            text("UPDATE log_checkpoints SET note = :n, root_hash = :r WHERE size = 50"),
            {"n": lie, "r": b"\x07" * 32},
        )
    report = _audit(db, log)
    assert report.first is not None and report.first.index == 49


def test_lookup_by_leaf_hash_before_and_after_indexing(db: Database, log: Log) -> None:
    from ledger.storage.log import index_leaves

    _fill(db, log, [10, 5])
    h = merkle.leaf_hash(_entries(0, 13)[12][1])
    with db.reader() as s:
        assert Log.index_of(s, h) == 12  # from the tail scan
    with db.writer() as s:
        assert index_leaves(s, limit=11) == 11
    with db.reader() as s:
        assert Log.index_of(s, h) == 12  # index covers 0..10, tail scan the rest
        assert Log.index_of(s, merkle.leaf_hash(_entries(0, 4)[3][1])) == 3  # from the index
        assert Log.index_of(s, b"\x01" * 32) is None
    with db.writer() as s:
        assert index_leaves(s) == 4
        assert index_leaves(s) == 0
    with db.reader() as s:
        assert Log.index_of(s, h) == 12


@pytest.mark.parametrize(
    ("level", "index", "width", "size", "ok"),
    [
        (None, 0, 256, 300, True),
        (None, 1, 44, 300, True),
        (None, 1, 43, 300, False),  # a width the tree does not have
        (None, 0, 255, 300, False),  # a full bundle asked for as partial
        (None, 2, 1, 300, False),  # beyond the tree
        (0, 1, 44, 300, True),
        (1, 0, 1, 300, True),
        (1, 0, 2, 300, False),
        (2, 0, 1, 300, False),  # the tree has no level-2 hashes yet
    ],
)
def test_check_tile(level: int | None, index: int, width: int, size: int, ok: bool) -> None:
    if ok:
        Log.check_tile(level, index, width, size)
    else:
        with pytest.raises(ProofError, match="not in the tree"):
            Log.check_tile(level, index, width, size)


# -- the right edge: appends that read nothing of the tree -------------------------------------


def _tile_blob(mem: MemoryTree, level: int, index: int) -> bytes:
    """The 511 nodes of full tile (level, index), bottom sub-level first, as stored."""
    return b"".join(
        b"".join(mem.read([(8 * level + s, (index << (8 - s)) + j) for j in range(256 >> s)]))
        for s in range(9)
    )


def _bases(mem: MemoryTree, size: int) -> list[list[bytes]]:
    """The partial tiles' base hashes of the tree of ``size``, one list per level."""
    out = []
    level = 0
    while count := size >> (8 * level):
        out.append(mem.read([(8 * level, i) for i in range(count & ~255, count)]))
        level += 1
    return out


def _check_growth(sizes: list[int]) -> None:
    mem = MemoryTree()
    edge = edge_from_bases(0, [])
    assert edge.root == merkle.EMPTY_ROOT
    n = 0
    for batch in sizes:
        hashes = [merkle.leaf_hash(b"%d" % i) for i in range(n, n + batch)]
        for h in hashes:
            mem.append_leaf_hash(h)
        growth = grow(edge, hashes)
        new = n + batch
        assert growth.edge.size == new
        assert growth.edge.root == mem.root()
        # Exactly the tiles this append completed, with the nodes a reader expects.
        expected = [
            (level, t)
            for level in range(4)
            for t in range(n >> (8 * level + 8), new >> (8 * level + 8))
        ]
        assert [(lvl, t) for lvl, t, _ in growth.tiles] == expected
        for level, t, blob in growth.tiles:
            assert blob == _tile_blob(mem, level, t)
        if n:
            assert merkle.consistency_proof(n, new, growth.read) == mem.consistency_proof(n, new)
        # Growing the edge gives what reading the edge of the whole tree gives.
        assert growth.edge == edge_from_bases(new, _bases(mem, new))
        edge, n = growth.edge, new


@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None)
def test_grown_edge_matches_memory_tree(sizes: list[int]) -> None:
    _check_growth(sizes)


def test_grown_edge_across_tile_levels() -> None:
    # 65,536 completes a level-1 tile and starts level 2; the batches around it cross every
    # kind of boundary: a tile at two levels at once, a one-leaf append, a partial top level.
    _check_growth([65_535, 1, 2, 255, 256 * 255 + 1, 300])


def test_reading_a_node_off_the_edge_is_refused() -> None:
    leaves = [merkle.leaf_hash(b"%d" % i) for i in range(610)]
    growth = grow(grow(edge_from_bases(0, []), leaves[:600]).edge, leaves[600:])
    assert growth.read([(0, 512), (1, 304), (9, 0)])  # the partial tile at 512, level 1 base
    for node in [(0, 3), (1, 255), (0, 610), (8, 3), (24, 0)]:
        with pytest.raises(AppendError, match="right edge"):
            growth.read([node])  # inside a full tile, beyond the tree, above the top level


def test_rolled_back_append_then_other_entries_of_the_same_count(db: Database, log: Log) -> None:
    """The cached edge of a rolled-back append has the size the next tree will have: the root
    comparison, not the size, must send the appender back to the tables."""
    mem = _fill(db, log, [300])
    with pytest.raises(RuntimeError), db.writer() as s:
        log.append(s, [("test", b'{"lost":%d}' % i) for i in range(300)])
        raise RuntimeError("client went away")
    # Another process (its own Log, its own cache) appends 300 other entries.
    other = Log(ORIGIN, log.signer)
    with db.writer() as s:
        other.append(s, _entries(300, 300))
    for _k, body in _entries(300, 300):
        mem.append(body)
    with db.writer() as s:
        res = log.append(s, _entries(600, 1))
    mem.append(_entries(600, 1)[0][1])
    assert (res.first_index, res.tree_size, res.root_hash) == (600, 601, mem.root())
    report = _audit(db, log)
    assert report.ok, report.problems


def test_rollback_leaves_next_append_correct(db: Database, log: Log) -> None:
    mem = _fill(db, log, [5, 251])
    for n in (300, 1, 256):
        with pytest.raises(RuntimeError), db.writer() as s:
            log.append(s, [("test", b'{"lost":%d}' % i) for i in range(n)])
            raise RuntimeError("client went away")
        with db.writer() as s:
            res = log.append(s, _entries(mem.size, 7))
        for _k, body in _entries(mem.size, 7):
            mem.append(body)
        assert res.root_hash == mem.root() and res.tree_size == mem.size
    with db.reader() as s:
        cp = Log.latest_checkpoint(s)
        assert cp is not None
        assert open_checkpoint(cp.note, ORIGIN, [log.signer.verifier()])[0].root_hash == mem.root()
    report = _audit(db, log)
    assert report.ok, report.problems


def test_rolled_back_savepoint_then_append_in_the_same_transaction(db: Database, log: Log) -> None:
    mem = _fill(db, log, [10])
    with db.writer() as s:
        savepoint = s.begin_nested()
        log.append(s, [("test", b'{"lost":1}')] * 3)
        savepoint.rollback()
        res = log.append(s, _entries(10, 4))
        res2 = log.append(s, _entries(14, 250))  # a second append in the same transaction
    for _k, body in _entries(10, 254):
        mem.append(body)
    assert res.first_index == 10 and res2.first_index == 14
    assert res2.root_hash == mem.root()
    report = _audit(db, log)
    assert report.ok, report.problems


def test_appenders_in_two_processes_take_turns(db: Database, log: Log) -> None:
    """Each appender's cached edge goes stale when the other appends; every checkpoint must
    still be the right root, and the stored tiles what the audit re-derives."""
    other = Log(ORIGIN, log.signer)
    mem = MemoryTree()
    rng = random.Random(3)
    for turn in range(12):
        appender = (log, other)[turn % 2 if turn < 8 else rng.randrange(2)]
        n = rng.choice([1, 17, 255, 256, 600])
        with db.writer() as s:
            res = appender.append(s, _entries(mem.size, n))
        for _k, body in _entries(mem.size, n):
            mem.append(body)
        assert (res.tree_size, res.root_hash) == (mem.size, mem.root())
    report = _audit(db, log)
    assert report.ok, report.problems
    assert report.checkpoints == 12


def test_append_refused_when_stored_edge_contradicts_checkpoint(db: Database, log: Log) -> None:
    _fill(db, log, [300])
    _bypass(db)
    with db.writer() as s:  # a leaf of the partial tile (256..299) that the next append reads
        s.execute(
            text("UPDATE log_entries SET leaf_hash = :h WHERE idx = 299"), {"h": b"\x07" * 32}
        )
    fresh = Log(ORIGIN, log.signer)  # a new process: nothing cached, the edge is read
    with pytest.raises(AppendError, match="does not match the latest checkpoint"), db.writer() as s:
        fresh.append(s, _entries(300, 1))
    with db.reader() as s:
        assert Log.size(s) == 300


def test_append_refused_when_entries_outrun_checkpoints(db: Database, log: Log) -> None:
    _fill(db, log, [3])
    with db.writer() as s:  # inserting is allowed; an entry without a checkpoint is not
        s.execute(
            text("INSERT INTO log_entries (idx, leaf_hash, kind, body) VALUES (3, :h, 't', :b)"),
            {"h": merkle.leaf_hash(b"{}"), "b": b"{}"},
        )
    with pytest.raises(AppendError, match="covers 3 entries but the tree had 4"), db.writer() as s:
        log.append(s, _entries(4, 1))


def test_error_while_entries_are_being_written_keeps_its_type_and_leaves_nothing(
    db: Database, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tree is computed while PostgreSQL's COPY is still open: an error there must abort
    the COPY, reach the caller as itself, and leave the log as it was."""
    import ledger.storage.log as log_module

    mem = _fill(db, log, [40])

    def broken(*_args: object) -> None:
        raise AppendError("simulated failure while the entries are being written")

    monkeypatch.setattr(log_module, "grow", broken)
    with pytest.raises(AppendError, match="simulated"), db.writer() as s:
        log.append(s, _entries(40, 5))
    monkeypatch.undo()
    with db.reader() as s:
        assert Log.size(s) == 40
    with db.writer() as s:
        res = log.append(s, _entries(40, 5))
    for _k, body in _entries(40, 5):
        mem.append(body)
    assert (res.first_index, res.root_hash) == (40, mem.root())
