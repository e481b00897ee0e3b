"""Shared helpers for the benchmarks: fresh databases, timing, medians, printing."""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger.storage.db import Database
from ledger.storage.migrate import upgrade

PG_ADMIN = os.environ.get(
    "CELEDGER_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def fresh_db(kind: str) -> Iterator[str]:
    """A migrated, empty database of the given kind; removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="celedger-bench-") as d:
            url = f"sqlite:///{Path(d) / 'bench.db'}"
            upgrade(url)
            yield url
        return
    name = f"celedger_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite_checkpoint(db: Database, mode: str) -> None:
    """On SQLite, copy the write-ahead log into the database (``PASSIVE``), or do so and empty
    it (``TRUNCATE``); elsewhere nothing.  Benchmarks call it around a timed phase so that the
    phase pays for the checkpoint of its own pages and of no one else's."""
    if db.dialect != "sqlite":
        return
    if mode not in ("PASSIVE", "TRUNCATE"):
        raise ValueError(f"checkpoint mode: expected PASSIVE or TRUNCATE, found {mode!r}")
    # A raw connection: outside any transaction, which a checkpoint must be.
    conn = db.write_engine.raw_connection()
    try:
        busy, _frames, _done = conn.cursor().execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    finally:
        conn.close()
    if busy:
        raise RuntimeError(f"wal_checkpoint({mode}): expected to complete, found it blocked")


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def row(*cols: object) -> None:
    print("  ".join(f"{c:>14}" if not isinstance(c, str) else f"{c:<34}" for c in cols), flush=True)


class CpuMeter:
    """Where the machine's CPU went between two readings (Linux ``/proc``; elsewhere nothing):
    the seconds used by a process tree (the server and its workers), by PostgreSQL's
    processes, and the share of the machine left idle.  A rate alone cannot say whether a run
    was bound by the service's own work, by the database's, or by waiting."""

    def __init__(self, root_pid: int) -> None:
        self.root = root_pid
        self._start = self._read() if Path("/proc/stat").exists() else None

    @staticmethod
    def _processes() -> dict[int, tuple[int, str, int]]:
        """pid → (parent pid, command name, user + system clock ticks)."""
        out: dict[int, tuple[int, str, int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # the process ended meanwhile
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = text[text.rindex(")") + 2 :].split()
            out[int(stat.parent.name)] = (int(fields[1]), name, int(fields[11]) + int(fields[12]))
        return out

    def _read(self) -> tuple[dict[int, tuple[int, str, int]], list[int]]:
        first = Path("/proc/stat").read_text().split("\n", 1)[0]
        machine = [int(v) for v in first.split()[1:]]
        return self._processes(), machine

    def figures(self) -> tuple[float, float, float] | None:
        """(service CPU s, PostgreSQL CPU s, idle %) since the meter was made."""
        if self._start is None:
            return None
        (before, m0), (after, m1) = self._start, self._read()
        tick = os.sysconf("SC_CLK_TCK")
        children: dict[int, list[int]] = {}
        for pid, (parent, _, _) in after.items():
            children.setdefault(parent, []).append(pid)
        tree, todo = set(), [self.root]
        while todo:  # by parent links, not pid order: pids wrap around
            pid = todo.pop()
            tree.add(pid)
            todo.extend(children.get(pid, ()))

        def used(pids: set[int]) -> float:
            return sum(after[p][2] - before.get(p, (0, "", 0))[2] for p in pids) / tick

        postgres = {p for p, (_, name, _) in after.items() if name == "postgres"}
        idle = (m1[3] - m0[3]) / max(1, sum(m1) - sum(m0)) * 100
        return used(tree & set(after)), used(postgres), idle
