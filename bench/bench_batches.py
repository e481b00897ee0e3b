"""Completion batches through the HTTP API, against a raw bulk insert of the same rows.

For each database (SQLite, PostgreSQL): a real server process (``celedger serve``) on a fresh
database seeded with the demo registry; 200,000 completion records posted as 10,000-row JSON
batches from a client on the same machine; records/s overall and the median batch time.  The
baseline, in the same run: the same rows (same columns as the ``completions`` table) bulk
inserted into a bare table — PostgreSQL COPY, SQLite executemany — records/s.  Then an XLSX
upload of 10,000 rows, timed end to end.

Targets (issue): >= 20,000 records/s on PostgreSQL and >= 0.3x the raw COPY rate; XLSX 10,000
rows in under 5 s.

    python bench/bench_batches.py [--rows 200000] [--batch 10000] [--dbs sqlite,postgresql]
                                  [--repeat 3]

The raw baseline is measured just before and just after the posts (their mean), so that the
ratio sees the load the posts saw: other work on the machine comes and goes.

Where the time went, per 10,000 records posted (Linux): CPU seconds of the server's processes
and of PostgreSQL's, and how much of the machine stayed idle; and "lock held", the share of
the posting time during which some batch held the log's append lock (from the server's
``celedger_append_lock_held_seconds``): appends go one at a time, so near 100% they queue
for it — whether that is what sets the rate shows only when work moves out of it (on two
cores it did not: README, "Completion batches").  ``--without-constraints`` (PostgreSQL)
repeats the run with the completions table stripped to the raw table's indexes:
an experiment that shows what the table's foreign keys and indexes cost, never a setting.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, inspect, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import CpuMeter, fresh_db, median
from ledger.identity import check_character
from ledger.registry.demo import DEMO_YEAR
from ledger.registry.services import CHINA_TZ

ROOT = Path(__file__).resolve().parent.parent
SEEDED_AT = datetime(DEMO_YEAR - 1, 12, 1, 9, 0, tzinfo=CHINA_TZ)
NAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"


def person(i: int) -> tuple[str, str]:
    """A distinct valid (name, ID number) for every i < 14 million."""
    birth = date(1960, 1, 1) + timedelta(days=i // 1000)
    first17 = f"510402{birth:%Y%m%d}{i % 1000:03d}"
    return NAMES[i % len(NAMES)] + NAMES[(i // 7) % len(NAMES)] + "明", first17 + check_character(
        first17
    )


def records(start: int, count: int, klass: str = "02") -> list[dict[str, Any]]:
    shape = {
        "02": ("专业", "面授", "05-10", "05-13", "24", "1200"),
        "03": ("专业", "网络", "07-10", "07-11", "12", "300"),
    }[klass]
    category, mode, s, e, hours, fee = shape
    out = []
    for i in range(start, start + count):
        name, number = person(i)
        out.append(
            {
                "name": name,
                "id_number": number,
                "employer": "攀枝花市示例医院",
                "year": DEMO_YEAR,
                "category": category,
                "class_code": f"PZXY-{DEMO_YEAR}-{klass}",
                "mode": mode,
                "start": f"{DEMO_YEAR}-{s}",
                "end": f"{DEMO_YEAR}-{e}",
                "hours": hours,
                "result": "合格",
                "fee_yuan": fee,
            }
        )
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
    env.update(
        CELEDGER_DATA_DIR=str(data_dir),
        CELEDGER_DATABASE_URL=url,
        CELEDGER_LOG_LEVEL="WARNING",
        CELEDGER_MAX_BATCH_ROWS="10000",
    )
    return env


def seed(data_dir: Path, url: str) -> str:
    """Seed the demo registry as of 1 Dec of the year before; return base 1's API key."""
    from api.context import Context
    from api.settings import Settings
    from ledger.registry.demo import seed_demo

    ctx = Context.from_settings(
        Settings(_env_file=None, data_dir=data_dir, database_url=url)  # type: ignore[call-arg]
    )
    try:
        return seed_demo(ctx.db, ctx.log, now=SEEDED_AT).key_for("base:1")
    finally:
        ctx.close()


def serve(data_dir: Path, url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "serve",
            "--port",
            str(port),
            "--no-migrate",
            "--workers",
            str(workers),
        ],
        env=_env(data_dir, url),
        cwd=ROOT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def raw_rate(url: str, rows: list[dict[str, Any]], batch: int, table: str = "bench_raw") -> float:
    """Records/s for a bare bulk insert of completion-shaped rows (COPY / executemany) into a
    fresh ``table``, dropped afterwards."""
    tuples = [
        (
            f"r_{secrets.token_hex(13)}",
            secrets.token_bytes(16),
            "completion",
            None,
            i + 1,
            1,
            1,
            r["class_code"],
            r["year"],
            i + 1,
            secrets.token_bytes(16),
            secrets.token_hex(32),
            secrets.token_bytes(120),
            r["category"],
            r["mode"],
            240,
            date(DEMO_YEAR, 5, 10),
            date(DEMO_YEAR, 5, 13),
            r["result"],
            120000,
            "base:1",
            datetime.now(CHINA_TZ),
            i,
        )
        for i, r in enumerate(rows)
    ]
    columns = (
        "id, token, kind, batch_id, row_number, base_id, plan_id, class_code, year, person_id, "
        "salt, subject, sealed, category, mode, hours_tenths, start_date, end_date, result, "
        "fee_fen, posted_by, posted_at, log_index"
    )
    engine = create_engine(url)
    is_pg = engine.dialect.name == "postgresql"
    blob = "bytea" if is_pg else "blob"
    ddl = (
        f"CREATE TABLE {table} (id varchar(32) primary key, token {blob} unique, kind text, "
        f"batch_id text, row_number int, base_id int, plan_id int, class_code text, year int, "
        f"person_id bigint, salt {blob}, subject text, sealed {blob}, category text, mode text, "
        f"hours_tenths int, start_date date, end_date date, result text, fee_fen bigint, "
        f"posted_by text, posted_at timestamp with time zone, log_index bigint unique)"
    )
    with engine.begin() as c:
        c.execute(text(ddl))
    t0 = time.perf_counter()
    for k in range(0, len(tuples), batch):
        chunk = tuples[k : k + batch]
        with engine.begin() as c:
            if is_pg:
                raw = c.connection.dbapi_connection
                assert raw is not None
                with raw.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as cp:  # type: ignore[attr-defined]
                    for t in chunk:
                        cp.write_row(t)
            else:
                marks = ", ".join("?" * len(chunk[0]))
                c.connection.dbapi_connection.executemany(  # type: ignore[union-attr]
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})", chunk
                )
    elapsed = time.perf_counter() - t0
    with engine.begin() as c:
        c.execute(text(f"DROP TABLE {table}"))
    engine.dispose()
    return len(tuples) / elapsed


def xlsx_bytes(rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook

    from ledger.completions.intake import COLUMNS

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([c.header for c in COLUMNS])
    for r in rows:
        sheet.append([r.get(c.key) for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class Figures:
    rate: float
    batch_s: float
    raw: float
    xlsx_s: float
    load: float
    #: CPU seconds per 10,000 records, service and PostgreSQL, and idle % (None: no /proc).
    cpu: tuple[float, float, float] | None = None
    #: Share of the posting time during which some batch held the log's append lock.
    locked: float = 0.0

    @property
    def ratio(self) -> float:
        return self.rate / self.raw


def strip_completions(url: str) -> None:
    """``--without-constraints``: the completions table reduced to what the raw baseline's
    table has (primary key, unique token, unique log index), read from the database itself —
    every foreign key, every other index and unique constraint dropped."""
    engine = create_engine(url)
    found = inspect(engine)
    kept = {("token",), ("log_index",)}
    drops = [
        *(f"ALTER TABLE completions DROP CONSTRAINT {fk['name']}"
          for fk in found.get_foreign_keys("completions")),
        *(f"ALTER TABLE completions DROP CONSTRAINT {uq['name']}"
          for uq in found.get_unique_constraints("completions")
          if tuple(uq["column_names"]) not in kept),
        *(f"DROP INDEX {ix['name']}" for ix in found.get_indexes("completions")
          if not ix["unique"]),
    ]  # fmt: skip
    with engine.begin() as c:
        for statement in drops:
            c.execute(text(statement))
    engine.dispose()


def run(
    kind: str,
    total: int,
    batch: int,
    workers: int,
    clients: int,
    fresh_connections: bool,
    without_constraints: bool = False,
) -> Figures:
    with fresh_db(kind) as url, tempfile.TemporaryDirectory(prefix="celedger-bench-") as d:
        data_dir = Path(d)
        key = seed(data_dir, url)
        if without_constraints:  # an experiment, never a configuration
            strip_completions(url)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        bodies = [
            json.dumps(
                {"batch_key": f"bench-{k}", "records": records(k, batch)}, ensure_ascii=False
            ).encode()
            for k in range(0, total, batch)
        ]
        # The raw baseline runs just before and just after the posts, on the same database:
        # other work on the machine comes and goes, and the ratio should see the same load.
        same_shape = [r for b in bodies[:1] for r in json.loads(b)["records"]] * (total // batch)
        raw_before = raw_rate(url, same_shape, batch, "bench_raw_before")
        load = os.getloadavg()[0]
        proc, base = serve(data_dir, url, workers)
        times: list[float] = []

        def client(mine: list[bytes]) -> None:
            # With keep-alive a client's batches all go to whichever worker accepted its
            # connection (both clients often land on the same one); a connection per batch,
            # as separate uploads would make, lets the server's workers share the batches.
            limits = httpx.Limits(max_keepalive_connections=0 if fresh_connections else None)
            with httpx.Client(base_url=base, timeout=600, limits=limits) as http:
                for body in mine:
                    t0 = time.perf_counter()
                    r = http.post("/api/v1/bases/1/batches", content=body, headers=headers)
                    times.append(time.perf_counter() - t0)
                    if r.status_code != 201:
                        raise SystemExit(f"batch refused: {r.status_code} {r.text[:500]}")

        try:
            with httpx.Client(base_url=base, timeout=600) as http:
                held_before = lock_held_seconds(http)
                meter = CpuMeter(proc.pid)
                t_all = time.perf_counter()
                with ThreadPoolExecutor(clients) as pool:
                    for f in [pool.submit(client, bodies[i::clients]) for i in range(clients)]:
                        f.result()
                elapsed = time.perf_counter() - t_all
                used = meter.figures()
                locked = (lock_held_seconds(http) - held_before) / elapsed
                xrows = records(10_000_000, 10_000, "03")
                xbody = xlsx_bytes(xrows)
                t0 = time.perf_counter()
                r = http.post(
                    "/api/v1/bases/1/batches",
                    content=xbody,
                    headers={
                        "Authorization": f"Bearer {key}",
                        "Idempotency-Key": "bench-xlsx",
                        "Content-Type": "application/vnd.openxmlformats-officedocument."
                        "spreadsheetml.sheet",
                    },
                )
                xlsx_s = time.perf_counter() - t0
                if r.status_code != 201:
                    raise SystemExit(f"xlsx refused: {r.status_code} {r.text[:500]}")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        raw_after = raw_rate(url, same_shape, batch, "bench_raw_after")
        return Figures(
            rate=total / elapsed,
            batch_s=median(times),
            raw=(raw_before + raw_after) / 2,
            xlsx_s=xlsx_s,
            load=max(load, os.getloadavg()[0]),
            cpu=None
            if used is None
            else (used[0] * batch / total, used[1] * batch / total, used[2]),
            locked=locked,
        )


def lock_held_seconds(http: httpx.Client) -> float:
    """Seconds the server's writes have held the append lock, summed over its workers
    (``celedger_append_lock_held_seconds`` on ``/metrics``)."""
    r = http.get("/metrics")
    r.raise_for_status()
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name == "celedger_append_lock_held_seconds_sum":
                return float(sample.value)
    raise SystemExit("/metrics has no celedger_append_lock_held_seconds")


def _row(*cols: str) -> None:
    print(f"  {cols[0]:<8}" + "".join(f"{c:>13}" for c in cols[1:]), flush=True)


def _cpu(f: Figures) -> tuple[str, str, str]:
    if f.cpu is None:
        return "-", "-", "-"
    service, postgres, idle = f.cpu
    return f"{service:.2f}", f"{postgres:.2f}", f"{idle:.0f}%"


def report(runs: list[Figures]) -> None:
    _row("run", "HTTP rec/s", "batch s", "raw rec/s", "ratio", "XLSX s", "load",
         "svc CPU s", "PG CPU s", "idle", "lock held")  # fmt: skip
    for i, f in enumerate(runs, start=1):
        _row(
            f"{i}",
            f"{f.rate:,.0f}",
            f"{f.batch_s:.3f}",
            f"{f.raw:,.0f}",
            f"{f.ratio:.2f}x",
            f"{f.xlsx_s:.2f}",
            f"{f.load:.1f}",
            *_cpu(f),
            f"{100 * f.locked:.0f}%",
        )
    if len(runs) > 1:
        _row(
            "median",
            f"{median([f.rate for f in runs]):,.0f}",
            f"{median([f.batch_s for f in runs]):.3f}",
            f"{median([f.raw for f in runs]):,.0f}",
            f"{median([f.ratio for f in runs]):.2f}x",
            f"{median([f.xlsx_s for f in runs]):.2f}",
            "",
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--dbs", default="sqlite,postgresql")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (2 cores)")
    p.add_argument("--clients", type=int, default=2, help="concurrent posting clients")
    p.add_argument("--repeat", type=int, default=1, help="runs per database (medians printed)")
    p.add_argument(
        "--new-connections",
        action="store_true",
        help="a new HTTP connection per batch (default: each client keeps its connection)",
    )
    p.add_argument(
        "--without-constraints",
        action="store_true",
        help="PostgreSQL experiment: drop the completions table's foreign keys and secondary "
        "indexes after seeding (what the write would cost if it were no more than the raw "
        "baseline's table; never how the service runs)",
    )
    args = p.parse_args()
    for kind in args.dbs.split(","):
        print(
            f"\n== {kind}: {args.rows:,} records in batches of {args.batch:,} through HTTP "
            f"({args.workers} server worker(s), {args.clients} concurrent client(s)); raw = "
            "mean of a bare bulk insert just before and just after; load = 1-min load average",
            flush=True,
        )
        runs = []
        for _ in range(args.repeat):
            runs.append(
                run(
                    kind,
                    args.rows,
                    args.batch,
                    args.workers,
                    args.clients,
                    args.new_connections,
                    args.without_constraints and kind == "postgresql",
                )
            )
            print(
                f"  run {len(runs)}: {runs[-1].rate:,.0f} records/s, {runs[-1].ratio:.2f}x raw",
                flush=True,
            )
        report(runs)


if __name__ == "__main__":
    main()
