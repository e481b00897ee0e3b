"""Public verification under load: ``GET /api/v1/verify/{token}`` on a ledger of 1,000,000
completion records, against a bare Litestar route returning a constant.

Setup (not timed): a fresh database (PostgreSQL by default) seeded with the demo registry, then
``--records`` completion records posted in-process through the real service path
(``ledger.completions.services.post_batch``, 10,000-row batches from
``parse_json_records``: every rule, every ledger append, personal data sealed), spread over
base 1's four 2026 classes.  ``VACUUM ANALYZE`` afterwards (as autovacuum would, but not in the
middle of a measurement).  Certificates are issued (``completion_certificates``: PDF, PAdES,
credential) for ``--sample`` records drawn at random over the whole ledger; their QR tokens are
what the load asks for, every one checked to verify as ``valid`` first.

Load: ``wrk`` on this machine, ``--connections`` (64) connections, cycling through the token
list (``bench/verify_wrk.lua``) so no cache is flattered by one hot token.  The baseline is
``bench/bare_app.py`` (one route at the same path returning a constant) served by the SAME
uvicorn command line (same workers, same options; it is what ``celedger serve`` runs) and
measured in the same run, alternating with the real service.  Printed for each ``--workers``
count: medians of ``--runs`` runs of requests/s, p50 and p99 latency for both, and the ratio;
also the p50 of one connection alone (the floor of the latency, without queueing).
Targets (issue): verify >= 0.5x the bare route, and p99 <= 20 ms.

With more than one worker uvicorn binds the listening socket itself and leaves it without
TCP_NODELAY (uvicorn issue #3149): every keep-alive response then waits ~40 ms for the
client's delayed ACK.  ``celedger serve`` makes the listener itself (``IPPROTO_TCP``) and
hands it to uvicorn; multi-worker counts are measured that way (`serve_fixed_listener`), and
with ``--unfixed`` also on plain uvicorn's listener.

``--reports kept,computed``: the service as configured by default keeps each verified report
per process until the next ledger append (`certificates.verifier`), so after the warm-up (which
visits every token) the load measures answering a token scanned before; ``computed`` turns
that off (``CELEDGER_VERIFY_REPORT_CACHE=0``): every request verifies from the database, what
a token nobody scanned before costs.  Both are printed.

Then, unless ``--no-anatomy``: where the time of one verification goes, in process (no HTTP):
per phase of ``OnlineVerifier.verify`` and per SQL statement (count and time per request).
``--py-spy SECONDS`` also samples the 1-worker server under load with py-spy (``pip install
py-spy`` into the venv first) and prints the hottest functions.

    python bench/bench_verify.py [--records 1000000] [--sample 2000] [--dbs postgresql]
        [--workers 1,2] [--runs 3] [--duration 15] [--keep DIR] [--py-spy 20]

``--keep DIR`` keeps the built database (and its keys, tokens) under DIR and reuses it on the
next run with the same ``--records`` (building 1M records takes a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from bench.bench_batches import person
from bench.common import PG_ADMIN, fresh_db, median
from ledger.registry.demo import DEMO_YEAR
from ledger.registry.services import CHINA_TZ
from ledger.storage.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
LUA = ROOT / "bench" / "verify_wrk.lua"
SEEDED_AT = datetime(DEMO_YEAR - 1, 12, 1, 9, 0, tzinfo=CHINA_TZ)
#: Base 1's approved 2026 classes (ledger.registry.demo): category, mode, start, end, hours, fee.
CLASSES: dict[str, tuple[str, str, str, str, str, str]] = {
    "01": ("公需", "面授", "03-10", "03-10", "6", "0"),
    "02": ("专业", "面授", "05-10", "05-13", "24", "1200"),
    "03": ("专业", "网络", "07-10", "07-11", "12", "300"),
    "04": ("选修", "会议", "09-10", "09-10", "6", "200.50"),
}
TARGET_RATIO = 0.5
TARGET_P99_MS = 20.0


def records(start: int, count: int, klass: str) -> list[dict[str, Any]]:
    """count records of distinct people (person start..start+count-1) in one class."""
    category, mode, s, e, hours, fee = CLASSES[klass]
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


# -- the database ---------------------------------------------------------------------------


def _settings(data_dir: Path, url: str) -> Any:
    from api.settings import Settings

    return Settings(_env_file=None, data_dir=data_dir, database_url=url)


def build(data_dir: Path, url: str, total: int, batch: int) -> None:
    """Seed the registry and post ``total`` records through ``post_batch``."""
    from api.context import Context
    from ledger.completions import services as cs
    from ledger.completions.intake import parse_json_records
    from ledger.registry.auth import Principal
    from ledger.registry.demo import seed_demo

    ctx = Context.from_settings(_settings(data_dir, url))
    try:
        seed_demo(ctx.db, ctx.log, now=SEEDED_AT)
        base = Principal("base:1", "base", "CN-SC-PZH", base=1)
        classes = sorted(CLASSES)
        t0 = time.perf_counter()
        for k, start in enumerate(range(0, total, batch)):
            count = min(batch, total - start)
            raw = parse_json_records(
                records(start, count, classes[k % len(classes)]), max_rows=batch
            )
            with ctx.db.writer() as s:
                cs.post_batch(s, ctx.log, ctx.vault, base, 1, raw, batch_key=f"bench-{k}")
            done = start + count
            if (k + 1) % 10 == 0 or done == total:
                rate = done / (time.perf_counter() - t0)
                print(f"  posted {done:>9,} records ({rate:,.0f}/s)", flush=True)
        ctx.index_leaves()  # what the service does after each write, here once at the end
    finally:
        ctx.close()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        # Fresh statistics and visibility maps, as autovacuum would leave them: without this
        # autovacuum may wake up in the middle of a measurement.
        c.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    engine.dispose()


def issue(data_dir: Path, url: str, sample: int, seed: int) -> list[str]:
    """Certificates for ``sample`` records drawn over the whole ledger: their QR tokens."""
    from api.context import Context
    from certificates.issue import completion_certificates
    from ledger.completions.models import CompletionRecord

    ctx = Context.from_settings(_settings(data_dir, url))
    try:
        with ctx.db.reader() as s:
            ids = list(s.scalars(select(CompletionRecord.id).order_by(CompletionRecord.log_index)))
        chosen = random.Random(seed).sample(ids, min(sample, len(ids)))
        t0 = time.perf_counter()
        with ctx.db.writer() as s:
            issued = completion_certificates(s, ctx.issuer(), "bench", chosen, workers=2)
        elapsed = time.perf_counter() - t0
        print(f"  issued {len(issued):,} certificates in {elapsed:.1f} s", flush=True)
        return [p.verify_url.rsplit("/", 1)[1] for p in issued]
    finally:
        ctx.close()


@dataclass
class Ledger:
    kind: str
    url: str
    data_dir: Path
    tokens_file: Path


def _record_count(url: str) -> int:
    from ledger.completions.models import CompletionRecord

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return int(c.scalar(select(func.count()).select_from(CompletionRecord)) or 0)
    finally:
        engine.dispose()


@contextmanager
def ledger(kind: str, args: argparse.Namespace) -> Iterator[Ledger]:
    """The built database: reused from ``--keep`` when it matches, else built (and dropped at
    the end unless ``--keep``)."""
    with ExitStack() as stack:
        if args.keep is None:
            where = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="celedger-bv-")))
            url = stack.enter_context(fresh_db(kind))
        else:
            where = Path(args.keep).resolve() / kind
            where.mkdir(parents=True, exist_ok=True)
            state_file = where / "state.json"
            state = json.loads(state_file.read_text()) if state_file.exists() else {}
            if state.get("records") == args.records and state.get("sample") == args.sample:
                print(f"  reusing {state['url']} ({args.records:,} records)", flush=True)
                upgrade(state["url"])  # migrations added since it was built
                yield Ledger(kind, state["url"], where / "data", where / "tokens.txt")
                return
            # Something else is there: start again from nothing.
            if state.get("url"):
                _drop(state["url"])
            shutil.rmtree(where / "data", ignore_errors=True)
            url = _create(kind, where)
        data_dir = where / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        build(data_dir, url, args.records, args.batch)
        print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
        tokens = issue(data_dir, url, args.sample, seed=1)
        tokens_file = where / "tokens.txt"
        tokens_file.write_text("\n".join(tokens) + "\n")
        if args.keep is not None:
            (where / "state.json").write_text(
                json.dumps({"url": url, "records": args.records, "sample": args.sample})
            )
        yield Ledger(kind, url, data_dir, tokens_file)


def _create(kind: str, where: Path) -> str:
    if kind == "sqlite":
        path = where / "bench.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        name = f"celedger_bench_verify_{int(time.time())}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url


def _drop(url: str) -> None:
    u = make_url(url)
    if u.get_backend_name() != "postgresql":
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    admin.dispose()


# -- servers and load -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_argv(app: str, port: int, workers: int) -> list[str]:
    """The uvicorn command line, the same for both apps: what ``celedger serve`` runs
    (``uvicorn.run(app, factory=True, workers=N, access_log=False,
    timeout_graceful_shutdown=20)``)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "20",
    ]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    base: str
    argv: list[str] = field(default_factory=list)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def fixed_argv(app: str, port: int, workers: int) -> list[str]:
    """The same server, but started through `serve_fixed_listener` (see there)."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve-fixed",
        app,
        str(port),
        str(workers),
    ]


def serve_fixed_listener(app: str, port: int, workers: int) -> None:
    """What ``uvicorn.run`` does for the same options, except that the listening socket is made
    with ``proto=IPPROTO_TCP``.  uvicorn's own ``Config.bind_socket`` (used whenever workers > 1)
    leaves proto at 0, accepted sockets inherit it, and asyncio then never sets TCP_NODELAY:
    every keep-alive response waits ~40 ms for the client's delayed ACK (uvicorn issue #3149)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        app,
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=20,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.set_inheritable(True)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()


def serve(name: str, app: str, workers: int, env: dict[str, str], fixed: bool = False) -> Server:
    port = _free_port()
    argv = (fixed_argv if fixed else server_argv)(app, port, workers)
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} server exited at start with code {proc.returncode}")
        try:
            if httpx.get(base + "/api/v1/verify/PING", timeout=2).status_code == 200:
                time.sleep(1.0 if workers > 1 else 0)  # let every worker come up
                return Server(name, proc, base, argv)
        except httpx.HTTPError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"{name} server did not answer within 60 s")


def service_env(lg: Ledger, workers: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
    env.update(
        CELEDGER_DATA_DIR=str(lg.data_dir),
        CELEDGER_DATABASE_URL=lg.url,
        CELEDGER_LOG_LEVEL="WARNING",
        # The load comes from one address: a per-client limit would answer it 429, and one
        # raised out of reach would keep a minute of its timestamps (Litestar's limiter keeps
        # a list per client), growing the work per request without bound.  So the limit is
        # left to the front proxy here (0), as a deployment behind one may do; its cost at a
        # real limit is printed separately (`limiter_cost`).
        CELEDGER_VERIFY_RATE_PER_MINUTE="0",
    )
    return env


def check_tokens(base: str, tokens: list[str]) -> None:
    """Every token of the list verifies as valid (else the load would measure something else)."""
    bad = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for t in tokens:
            r = http.get(f"/api/v1/verify/{t}")
            if r.status_code != 200 or r.json().get("verdict") != "valid":
                bad.append((t[:20], r.status_code, r.text[:200]))
    if bad:
        raise SystemExit(f"expected every sampled token to verify as valid, found {bad[:3]}")
    print(f"  all {len(tokens):,} sampled tokens verify as valid", flush=True)


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int


def wrk(base: str, tokens_file: Path, duration: int, connections: int, threads: int) -> Load:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
        "--",
        str(tokens_file),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    lines = [x for x in out.stdout.splitlines() if x.startswith("BENCH-JSON ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(
            f"wrk failed ({out.returncode}): {out.stdout[-1000:]} {out.stderr[-1000:]}"
        )
    r = json.loads(lines[-1].removeprefix("BENCH-JSON "))
    errors = {k: v for k, v in r.items() if k.startswith("errors_") and v}
    if errors or r["requests"] == 0:
        # Errors (429s, resets, timeouts) would make a figure look better than it is.
        raise SystemExit(f"wrk against {base}: expected no errors, found {errors} ({r})")
    return Load(
        r["requests"] / (r["duration_us"] / 1e6),
        r["p50_us"] / 1e3,
        r["p99_us"] / 1e3,
        r["requests"],
    )


def _row(*cols: str) -> None:
    print(f"  {cols[0]:<34}" + "".join(f"{c:>14}" for c in cols[1:]), flush=True)


def measure(
    lg: Ledger,
    workers: int,
    args: argparse.Namespace,
    check: bool,
    fixed: bool = False,
    reports: str = "kept",
) -> None:
    env = service_env(lg, workers)
    if reports == "computed":
        # Every request verified from the database (the snapshot of keys and checkpoint is
        # still kept): what a scan of a token nobody scanned before costs.
        env["CELEDGER_VERIFY_REPORT_CACHE"] = "0"
    tokens = lg.tokens_file.read_text().split()
    real = serve("verify", "api.asgi:app_factory", workers, env, fixed)
    try:
        bare = serve("bare", "bench.bare_app:app_factory", workers, env, fixed)
    except BaseException:
        real.stop()
        raise
    try:
        if check:
            check_tokens(real.base, tokens)
        print(
            f"  server: {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(real.argv))}"
        )
        if fixed:
            print("  (listener made with proto=IPPROTO_TCP: the uvicorn#3149 workaround)")
        print(
            "  reports: "
            + (
                "kept per process (the default; warm-up visits every token)"
                if reports == "kept"
                else "computed for every request (CELEDGER_VERIFY_REPORT_CACHE=0)"
            )
        )
        # Warm both (connection pools, caches, the JIT-less interpreter's own warm-up).
        for s in (real, bare):
            wrk(s.base, lg.tokens_file, args.warmup, args.connections, args.wrk_threads)
        # One connection, one request at a time: the floor of the latency, without queueing.
        single = [wrk(s.base, lg.tokens_file, 3, 1, 1).p50_ms for s in (real, bare)]
        print(f"  1 connection, p50: verify {single[0]:.2f} ms, bare {single[1]:.2f} ms")
        ours: list[Load] = []
        base: list[Load] = []
        for k in range(args.runs):
            # Alternate, so that other work on the machine falls on both alike.
            ours.append(
                wrk(real.base, lg.tokens_file, args.duration, args.connections, args.wrk_threads)
            )
            base.append(
                wrk(bare.base, lg.tokens_file, args.duration, args.connections, args.wrk_threads)
            )
            print(
                f"  run {k + 1}: verify {ours[-1].rps:,.0f} req/s p50 {ours[-1].p50_ms:.1f} ms "
                f"p99 {ours[-1].p99_ms:.1f} ms | bare {base[-1].rps:,.0f} req/s "
                f"p50 {base[-1].p50_ms:.1f} ms p99 {base[-1].p99_ms:.1f} ms",
                flush=True,
            )
        label = (" (listener fixed)" if fixed else "") + f", reports {reports}"
        summarise(workers, args, ours, base, label)
        if args.py_spy and workers == 1:
            profile(real, lg, args)
    finally:
        real.stop()
        bare.stop()


def summarise(
    workers: int, args: argparse.Namespace, ours: list[Load], base: list[Load], label: str
) -> None:
    v_rps, b_rps = median([x.rps for x in ours]), median([x.rps for x in base])
    v50, v99 = median([x.p50_ms for x in ours]), median([x.p99_ms for x in ours])
    b50, b99 = median([x.p50_ms for x in base]), median([x.p99_ms for x in base])
    ratio = v_rps / b_rps
    print(f"\n  {workers} worker(s){label}, medians of {args.runs} runs of {args.duration} s:")
    _row("", "verify", "bare route")
    _row("requests/s", f"{v_rps:,.0f}", f"{b_rps:,.0f}")
    _row("p50 latency (ms)", f"{v50:.2f}", f"{b50:.2f}")
    _row("p99 latency (ms)", f"{v99:.2f}", f"{b99:.2f}")
    _row("ratio verify / bare", f"{ratio:.2f}x")
    print(
        f"  target ratio >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'MISSED'}; "
        f"target verify p99 <= {TARGET_P99_MS:.0f} ms: "
        f"{'met' if v99 <= TARGET_P99_MS else 'MISSED'}"
    )
    print(flush=True)


# -- where the time goes --------------------------------------------------------------------


def limiter_cost(lg: Ledger, per_client: int = 600, clients: int = 5) -> None:
    """What the per-client rate limit costs a request, in process (no HTTP): the same kept
    reports answered by the app with the default limit (600/min) and with none, ``clients``
    addresses each making ``per_client`` requests (so each history grows to the limit)."""
    import asyncio

    from api.app import create_app

    tokens = lg.tokens_file.read_text().split()[:per_client]

    async def call(app: Any, path: str, host: str) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1")],
            "client": (host, 5555),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status = [0]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]

        await app(scope, receive, send)
        return status[0]

    async def run(limit: int) -> float:
        settings = _settings(lg.data_dir, lg.url).model_copy(
            update={"verify_rate_per_minute": limit}
        )
        app = create_app(settings)
        for t in tokens:  # keep every report first
            assert await call(app, f"/api/v1/verify/{t}", "10.9.9.9") == 200
        t0 = time.perf_counter()
        for k in range(clients):
            for t in tokens:
                assert await call(app, f"/api/v1/verify/{t}", f"10.0.0.{k}") == 200
        return (time.perf_counter() - t0) / (clients * len(tokens)) * 1e6

    # Alternated, medians: the difference is small against the machine's noise.
    offs, ons = [], []
    for _ in range(3):
        offs.append(asyncio.run(run(0)))
        ons.append(asyncio.run(run(per_client)))
    print(
        f"\n  rate limit cost, in process, kept reports: {median(ons):.0f} µs per request "
        f"with {per_client}/min per client, {median(offs):.0f} µs without (medians of 3)",
        flush=True,
    )


def anatomy(lg: Ledger, n: int) -> None:
    """One verification, in process, taken apart: phases and SQL statements per request."""
    import certificates.verifier as cv
    from api.context import Context

    ctx = Context.from_settings(_settings(lg.data_dir, lg.url))
    tokens = lg.tokens_file.read_text().split()[:n]
    spent: dict[str, float] = defaultdict(float)

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0

        return wrapper

    v = ctx.verifier()
    # Instance attributes shadow the methods; module globals are what verify() looks up.
    for name in ("_token", "_resolve", "_status", "_inclusion", "_recognised", "_describe"):
        setattr(v, name, timed(f"verify.{name}", getattr(v, name)))
    for name in ("keyset", "verify_token", "open_checkpoint"):
        setattr(cv, name, timed(f"  {name}", getattr(cv, name)))
    ctx.log.inclusion_proof = timed("  log.inclusion_proof", ctx.log.inclusion_proof)  # type: ignore[method-assign]
    v.vault.open = timed("  vault.open (AES-GCM)", v.vault.open)  # type: ignore[method-assign]

    sql: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    started: dict[int, float] = {}

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        key = re.sub(r"\s+", " ", statement)
        key = re.sub(r"SELECT .*? FROM", "SELECT … FROM", key, count=1)
        s = sql[key[:150]]
        s[0] += 1
        s[1] += time.perf_counter() - started.pop(id(cursor), time.perf_counter())

    event.listen(ctx.db.read_engine, "before_cursor_execute", before)
    event.listen(ctx.db.read_engine, "after_cursor_execute", after)
    try:
        for t in tokens[:50]:  # warm the pool and caches; not counted
            with ctx.db.reader() as s:
                v.verify(s, t)
        spent.clear()
        sql.clear()
        t_all = time.perf_counter()
        for t in tokens:
            t0 = time.perf_counter()
            with ctx.db.reader() as s:
                t1 = time.perf_counter()
                report = v.verify(s, t)
                t2 = time.perf_counter()
            spent["reader session: open + BEGIN"] += t1 - t0
            spent["verify() total"] += t2 - t1
            spent["reader session: COMMIT + close"] += time.perf_counter() - t2
            t3 = time.perf_counter()
            body = json.dumps(report.to_json(), ensure_ascii=False)
            spent["report.to_json + json.dumps"] += time.perf_counter() - t3
            assert '"verdict": "valid"' in body, body[:200]
        total = time.perf_counter() - t_all
    finally:
        ctx.close()
    print(
        f"\n  one verification in process ({len(tokens)} tokens, {lg.kind}): "
        f"{total / len(tokens) * 1e3:.2f} ms per request"
    )
    _row("phase", "µs/request")
    for name, secs in spent.items():
        _row(name, f"{secs / len(tokens) * 1e6:,.0f}")
    queries = sum(c for c, _ in sql.values())
    print(
        f"\n  SQL: {queries / len(tokens):.1f} statements per request "
        f"({sum(t for _, t in sql.values()) / len(tokens) * 1e6:,.0f} µs)"
    )
    _row("per request   µs/request", "statement")
    for stmt, (count, secs) in sorted(sql.items(), key=lambda kv: -kv[1][1]):
        print(f"  {count / len(tokens):>5.1f} {secs / len(tokens) * 1e6:>9,.0f}   {stmt}")


def profile(real: Server, lg: Ledger, args: argparse.Namespace) -> None:
    """py-spy samples of the 1-worker server while wrk loads it: hottest functions."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise SystemExit(f"--py-spy: expected {spy} (pip install py-spy into the venv)")
    out = Path(tempfile.mkdtemp(prefix="celedger-spy-")) / "verify.raw"
    rec = subprocess.Popen(
        [str(spy), "record", "--pid", str(real.proc.pid), "--duration", str(args.py_spy),
         "--rate", "250", "--gil", "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wrk(real.base, lg.tokens_file, args.py_spy + 2, args.connections, args.wrk_threads)
    rec.wait(timeout=120)
    self_: dict[str, int] = defaultdict(int)
    incl: dict[str, int] = defaultdict(int)
    total = 0
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue  # a frame name with a line break in it: too rare to matter
        count = int(n)
        frames = [re.sub(r" \((.*?/)?(site-packages/|main/)?", " (", f) for f in stack.split(";")]
        total += count
        self_[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    print(
        f"\n  py-spy --gil: {total} samples of the thread holding the GIL in the 1-worker "
        f"verify server under load, i.e. where its CPU goes ({out})"
    )
    print("  inclusive (share of all samples):")
    for f, c in sorted(incl.items(), key=lambda kv: -kv[1])[:40]:
        print(f"  {c / total:6.1%}  {f}")
    print("  self:")
    for f, c in sorted(self_.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {c / total:6.1%}  {f}")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-fixed":  # internal: see fixed_argv
        serve_fixed_listener(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--sample", type=int, default=2_000, help="certificates issued (tokens)")
    p.add_argument("--dbs", default="postgresql", help="postgresql, sqlite or both")
    p.add_argument("--workers", default="1,2", help="server worker counts to measure")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    p.add_argument("--warmup", type=int, default=10, help="seconds of unmeasured load first")
    p.add_argument(
        "--reports",
        default="kept,computed",
        help="kept (the default service: reports kept per process), computed (none kept)",
    )
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--keep", help="keep (and reuse) the built ledger under this directory")
    p.add_argument(
        "--unfixed",
        action="store_true",
        help="also measure several workers on plain uvicorn's listener (uvicorn#3149)",
    )
    p.add_argument("--no-anatomy", action="store_true")
    p.add_argument("--anatomy-tokens", type=int, default=1000)
    p.add_argument("--py-spy", type=int, default=0, help="seconds of py-spy under load (0: no)")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    for kind in args.dbs.split(","):
        print(
            f"\n== {kind}: GET /api/v1/verify/{{token}} on {args.records:,} completion records, "
            f"{args.sample:,} tokens; wrk {args.connections} connections, "
            f"{args.wrk_threads} thread(s), on this machine ({os.cpu_count()} cores)",
            flush=True,
        )
        with ledger(kind, args) as lg:
            first = True
            for reports in args.reports.split(","):
                for workers in (int(w) for w in args.workers.split(",")):
                    # Several workers: `celedger serve` makes the listener itself (fixed);
                    # --unfixed also shows plain uvicorn's.
                    if workers == 1 or args.unfixed:
                        measure(lg, workers, args, check=first, reports=reports)
                        first = False
                    if workers > 1:
                        measure(lg, workers, args, check=first, fixed=True, reports=reports)
                        first = False
            limiter_cost(lg)
            if not args.no_anatomy:
                anatomy(lg, args.anatomy_tokens)


if __name__ == "__main__":
    main()
