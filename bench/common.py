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


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def row(*cols: object) -> None:
    print("  ".join(f"{c:>14}" if not isinstance(c, str) else f"{c:<34}" for c in cols), flush=True)
