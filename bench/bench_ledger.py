"""Ledger benchmark (issue: foundation).  Prints, for SQLite and PostgreSQL:

* append throughput (entries/s) in batches of 1,000 and 10,000, and its ratio to a raw bulk
  insert of the same rows into the same database in the same run (target ≥ 0.5×);
* audit rate over 1M entries (target ≥ 500k entries/s);
* median inclusion-proof time at 1M and 10M entries (target ≤ 1 ms at 10M);
* append rate at 10M relative to the rate at 0 (target within 20%).

Usage: python bench/bench_ledger.py [--big 10000000] [--mid 1000000] [--dbs sqlite,postgresql]
Medians of several rounds are reported; machines are noisy, so compare the ratios.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.common import fresh_db, median, row
from ledger.entries import encode_entry
from ledger.note import NoteSigner
from ledger.storage.audit import audit_local
from ledger.storage.db import Database
from ledger.storage.log import Log

ORIGIN = "bench.celedger.example/log"


def make_entries(start: int, n: int) -> list[tuple[str, bytes]]:
    # A realistic completion entry (~330 bytes): ids, commitment, class, hours, dates.
    out = []
    for i in range(start, start + n):
        payload = {
            "record": f"R{i:016x}",
            "subject": f"{i * 2654435761 % 2**64:064x}",
            "base": "B-51-0401-0007",
            "plan": "2026",
            "class": f"C{i % 500:04d}",
            "category": "专业",
            "mode": "面授",
            "hours": "8.0",
            "start": "2026-03-01",
            "end": "2026-03-02",
            "result": "合格",
        }
        out.append(("completion", encode_entry("completion", payload)))
    return out


# The baseline table has the same shape as log_entries, so the ratio measures what the log
# adds — hashing, tiles, checkpoint — not the schema.
RAW_DDL = {
    "sqlite": [
        "CREATE TABLE raw_entries (idx INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, kind VARCHAR(32) NOT NULL, body BLOB NOT NULL)",
    ],
    "postgresql": [
        "CREATE TABLE raw_entries (idx BIGINT PRIMARY KEY, leaf_hash BYTEA NOT NULL, kind VARCHAR(32) NOT NULL, body BYTEA NOT NULL)",
    ],
}


def raw_insert(db: Database, rows: list[tuple[int, bytes, str, bytes]]) -> None:
    """The baseline: the same rows, bulk-inserted (COPY / executemany) with no hashing,
    no tiles, no checkpoint."""
    with db.writer() as s:
        conn = s.connection()
        drv = conn.connection.driver_connection
        if db.dialect == "postgresql":
            with (
                drv.cursor() as cur,
                cur.copy(
                    "COPY raw_entries (idx, leaf_hash, kind, body) FROM STDIN (FORMAT BINARY)"
                ) as cp,
            ):  # type: ignore[union-attr]
                cp.set_types(["bigint", "bytea", "text", "bytea"])
                for r in rows:
                    cp.write_row(r)
        else:
            drv.executemany(
                "INSERT INTO raw_entries (idx, leaf_hash, kind, body) VALUES (?,?,?,?)", rows
            )  # type: ignore[union-attr]


def append_rate(
    db: Database, log: Log, batch: int, rounds: int, pool: list[tuple[str, bytes]]
) -> float:
    rates = []
    for _ in range(rounds):
        items = pool[:batch]
        t0 = time.perf_counter()
        with db.writer() as s:
            log.append(s, items)
        rates.append(batch / (time.perf_counter() - t0))
    return median(rates)


def raw_rate(
    db: Database, batch: int, rounds: int, pool: list[tuple[str, bytes]], start: list[int]
) -> float:
    rates = []
    for _ in range(rounds):
        rows = [
            (start[0] + k, os.urandom(32), kind, body)
            for k, (kind, body) in enumerate(pool[:batch])
        ]
        start[0] += batch
        t0 = time.perf_counter()
        raw_insert(db, rows)
        rates.append(batch / (time.perf_counter() - t0))
    return median(rates)


def bulk_fill(db: Database, log: Log, target: int, chunk: int = 50_000) -> None:
    """Grow the log to ``target`` entries with the real appender (large batches)."""
    with db.reader() as s:
        size = Log.size(s)
    t0 = time.perf_counter()
    while size < target:
        n = min(chunk, target - size)
        with db.writer() as s:
            log.append(s, make_entries(size, n))
        size += n
        if size % 1_000_000 == 0:
            print(
                f"    … {size:,} entries ({size / (time.perf_counter() - t0):,.0f}/s)", flush=True
            )


def proof_median(db: Database, log: Log, size: int, n: int = 2000) -> float:
    rng = random.Random(1)
    times = []
    with db.reader() as s:
        for _ in range(n):
            i = rng.randrange(size)
            t0 = time.perf_counter()
            log.inclusion_proof(s, i, size)
            times.append(time.perf_counter() - t0)
    return median(times) * 1000


def run(kind: str, mid: int, big: int) -> None:
    print(f"\n== {kind} ==", flush=True)
    with fresh_db(kind) as url:
        db = Database(url)
        log = Log(ORIGIN, NoteSigner.generate(ORIGIN))
        with db.writer() as s:
            for ddl in RAW_DDL[kind]:
                s.execute(text(ddl))
        pool = make_entries(0, 10_000)
        raw_start = [0]
        rates0 = {}
        for batch, rounds in ((1000, 15), (10_000, 5)):
            # Interleave so that both see the same machine state.
            a = append_rate(db, log, batch, rounds, pool)
            r = raw_rate(db, batch, rounds, pool, raw_start)
            rates0[batch] = a
            row(
                f"append batch {batch:,} (size ~0)",
                f"{a:,.0f}/s",
                f"raw {r:,.0f}/s",
                f"ratio {a / r:.2f}x",
                "target >=0.5x",
            )
        bulk_fill(db, log, mid)
        t0 = time.perf_counter()
        with db.reader() as s:
            rep = audit_local(s, ORIGIN, [log.signer.verifier()])
        dt = time.perf_counter() - t0
        assert rep.ok, rep.problems[:3]
        row(
            f"audit {rep.entries:,} entries",
            f"{rep.entries / dt:,.0f}/s",
            f"{dt:.1f} s",
            "",
            "target >=500k/s",
        )
        row(f"inclusion proof at {mid:,}", f"{proof_median(db, log, mid):.3f} ms", "median", "", "")
        if big > mid:
            bulk_fill(db, log, big)
            with db.reader() as s:
                size = Log.size(s)
            row(
                f"inclusion proof at {size:,}",
                f"{proof_median(db, log, size):.3f} ms",
                "median",
                "",
                "target <=1 ms",
            )
            for batch, rounds in ((1000, 15), (10_000, 5)):
                a = append_rate(db, log, batch, rounds, pool)
                row(
                    f"append batch {batch:,} at {size:,}",
                    f"{a:,.0f}/s",
                    f"vs size 0: {a / rates0[batch]:.2f}x",
                    "",
                    "target >=0.8x",
                )
        db.dispose()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mid", type=int, default=1_000_000)
    p.add_argument("--big", type=int, default=10_000_000)
    p.add_argument("--dbs", default="sqlite,postgresql")
    a = p.parse_args()
    print("CE Ledger — ledger benchmark (medians; ratios measured in the same run)")
    for kind in a.dbs.split(","):
        run(kind, a.mid, a.big)


if __name__ == "__main__":
    main()
