"""Operating the service: readiness, Prometheus metrics, structured logs, start-up checks.

* ``GET /healthz`` (``api.app``) answers while the process runs (liveness).
* ``GET /readyz`` answers 200 only when the database answers ``SELECT 1`` (the primary and,
  when configured, the read replica) and the latest signed checkpoint verifies with this
  process's log key; otherwise 503 naming the failed check.  A replica started with another
  key must take no traffic: it would sign checkpoints nobody can verify.
* ``GET /metrics`` is Prometheus text.  Counters are counted where things happen (records
  ingested, batches refused by rule, verification verdicts, request latency by *route
  template* — never the raw path, which can carry a verification token).  Tree size and
  checkpoint age are read from the database at scrape time, so every worker and replica
  reports the same truth.  Under ``celedger serve --workers N`` each worker is its own
  process: ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the
  workers start, and every scrape (whichever worker answers it) sums the workers' files.
* Logs: ``CELEDGER_LOG_FORMAT=json`` writes one JSON object per line.  Nothing logs a request
  body, a query string, a raw path or a client address; as a second line of defence every log
  line is passed through :func:`redact` (citizen ID numbers, API keys, verification tokens,
  passwords in URLs).
* :func:`preflight` builds, once and before any worker starts, everything a worker would
  build, so a bad setting stops ``celedger serve`` with one message naming it instead of
  workers crashing in a loop.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import ValidationError
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from api.context import Context  # resolved at run time: Litestar reads handler signatures
from ledger.storage.log import LOCK_TIMES

if TYPE_CHECKING:
    from api.settings import Settings
    from verification.report import Report

__all__ = [
    "ID_NUMBER",
    "JsonFormatter",
    "RedactingFormatter",
    "StartupError",
    "count_batch_accepted",
    "count_batch_refused",
    "count_verification",
    "logging_config",
    "metrics",
    "metrics_middleware",
    "migrate",
    "preflight",
    "prepare_metrics_dir",
    "readiness",
    "readyz",
    "redact",
    "remove_metrics_dir",
    "settings_error_lines",
]

_log = logging.getLogger("celedger.ops")
_access = logging.getLogger("celedger.access")

# -- metrics -----------------------------------------------------------------------------------

RECORDS_INGESTED: Final = Counter(
    "celedger_records_ingested", "Completion records written to the ledger by accepted batches"
)
BATCHES: Final = Counter("celedger_batches", "Completion batches answered, by outcome", ["outcome"])
BATCHES_REFUSED: Final = Counter(
    "celedger_batches_refused",
    "Completion batches refused, by each rule that refused them (a batch that breaks two "
    "rules counts under both)",
    ["rule"],
)
VERIFICATIONS: Final = Counter(
    "celedger_verifications",
    "Public verifications answered, by verdict and by what was verified (token or pdf)",
    ["verdict", "via"],
)
REQUEST_SECONDS: Final = Histogram(
    "celedger_http_request_duration_seconds",
    "HTTP request latency by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

_LOCK_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
APPEND_LOCK_WAIT: Final = Histogram(
    "celedger_append_lock_wait_seconds",
    "How long a write waited for the log's append lock (appends go one at a time)",
    buckets=_LOCK_BUCKETS,
)
APPEND_LOCK_HELD: Final = Histogram(
    "celedger_append_lock_held_seconds",
    "How long a write held the log's append lock: from getting it to its transaction's end",
    buckets=_LOCK_BUCKETS,
)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _append_lock_released(session: Session) -> None:
    """A transaction that took the append lock has ended, and with it the lock."""
    times = session.info.pop(LOCK_TIMES, None)
    if times is not None:
        asked, got = times
        APPEND_LOCK_WAIT.observe(got - asked)
        APPEND_LOCK_HELD.observe(time.perf_counter() - got)


_BATCH_PATH: Final = re.compile(r"/api/v1/bases/[0-9]+/batches")


def count_batch_accepted(receipt: bytes) -> None:
    """An accepted (not replayed, not dry-run) batch: its receipt says how many records."""
    BATCHES.labels("accepted").inc()
    RECORDS_INGESTED.inc(int(json.loads(receipt)["count"]))


def count_batch_refused(request: Request[Any, Any, Any], exc: Exception) -> None:
    """Called by the problem handlers for every refused request; counts batch posts only."""
    if request.method != "POST" or not _BATCH_PATH.fullmatch(request.url.path):
        return
    rules = {
        e.rule for e in getattr(exc, "errors", ()) if isinstance(getattr(e, "rule", None), str)
    }
    if not rules:
        own = getattr(exc, "rule", None) or getattr(exc, "code", None)
        rules = {own if isinstance(own, str) else type(exc).__name__}
    BATCHES.labels("refused").inc()
    for rule in rules:
        BATCHES_REFUSED.labels(rule).inc()


def count_verification(report: Report, via: str) -> None:
    VERIFICATIONS.labels(report.verdict, via).inc()


class _LogCollector:
    """Tree size and checkpoint age, read from the database when Prometheus scrapes."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        from ledger.storage.log import Log

        size = GaugeMetricFamily("celedger_log_tree_size", "Entries in the latest checkpoint")
        age = GaugeMetricFamily(
            "celedger_log_checkpoint_age_seconds",
            "Seconds since the latest checkpoint was signed (a checkpoint is signed by every "
            "append, so this is also the time since the last append)",
        )
        with self.ctx.db.reader() as s:
            cp = Log.latest_checkpoint(s)
        if cp is not None:
            signed = cp.signed_at
            if signed.tzinfo is None:  # SQLite hands back naive UTC
                signed = signed.replace(tzinfo=UTC)
            size.add_metric([], float(cp.size))
            age.add_metric([], max(0.0, (datetime.now(UTC) - signed).total_seconds()))
        else:
            size.add_metric([], 0.0)
        yield size
        if cp is not None:
            yield age


def _multiprocess() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


@get("/metrics", sync_to_thread=True, include_in_schema=False)
def metrics(ctx: NamedDependency[Context]) -> Response[bytes]:
    """Prometheus text exposition."""
    if _multiprocess():
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
    else:
        counted = REGISTRY
    live = CollectorRegistry(auto_describe=False)
    live.register(_LogCollector(ctx))
    try:
        log_part = generate_latest(live)
    except Exception:  # noqa: BLE001 - a scrape must still return the counters
        _log.warning("metrics: could not read the log's state", exc_info=True)
        log_part = b""
    return Response(
        generate_latest(counted) + log_part,
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )


def prepare_metrics_dir(workers: int) -> Path | None:
    """Before workers start: a clean ``PROMETHEUS_MULTIPROC_DIR`` when there are several.

    Returns the directory when this call created it (the caller removes it at exit).  An
    operator's own directory is emptied of the previous run's files, as prometheus_client
    requires; with one worker the process's own registry is exact and nothing is set."""
    if workers <= 1 and not _multiprocess():
        return None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        for old in Path(given).glob("*.db"):
            old.unlink()
        return None
    made = Path(tempfile.mkdtemp(prefix="celedger-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(made)
    return made


def remove_metrics_dir(made: Path | None) -> None:
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


_QUIET_ROUTES: Final = frozenset({"/healthz", "/readyz", "/metrics"})


def metrics_middleware(app: ASGIApp) -> ASGIApp:
    """Latency histogram and one access-log line per request, by route template."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            # The template, not the path: '/V/{token}' says which route without the token.
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", "GET"))
            if route != "/metrics":
                REQUEST_SECONDS.labels(method, route, str(status)).observe(elapsed)
            # Probes and scrapes come every few seconds: at DEBUG they do not drown the log.
            _access.log(
                logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
                "%s %s %d %.1f ms",
                method,
                route,
                status,
                elapsed * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )

    return middleware


# -- readiness ---------------------------------------------------------------------------------


def readiness(ctx: Context) -> dict[str, str]:
    """Each check's outcome: ``ok``, or what failed (an exception's class, never its text:
    a driver's message can name hosts and users)."""
    from ledger.checkpoint import open_checkpoint
    from ledger.errors import LedgerError
    from ledger.storage.log import Log

    checks: dict[str, str] = {}
    # SQLite: only the read engine — the write engine begins with BEGIN IMMEDIATE and a probe
    # must never queue behind a long append for the write lock.
    engines = {"database": ctx.db.read_engine}
    if ctx.db.dialect == "postgresql":
        engines = {"database": ctx.db.write_engine}
        if ctx.settings.read_database_url:
            engines["read_database"] = ctx.db.read_engine
    for name, engine in engines.items():
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            _log.warning("readiness: %s failed: %s", name, type(exc).__name__)
            checks[name] = f"failed: {type(exc).__name__}"
    if checks.get("database") != "ok":
        checks["log_key"] = "unknown: no database"
        return checks
    try:
        with ctx.db.reader() as s:
            cp = Log.latest_checkpoint(s)
        if cp is not None:
            open_checkpoint(cp.note, ctx.settings.origin, [ctx.log_verifier])
        checks["log_key"] = "ok"
    except LedgerError as exc:
        checks["log_key"] = f"failed: the latest checkpoint does not verify with this key: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["log_key"] = f"failed: {type(exc).__name__}"
    return checks


@get("/readyz", sync_to_thread=True, include_in_schema=False)
def readyz(ctx: NamedDependency[Context]) -> Response[dict[str, Any]]:
    """200 when the database answers and the log key matches the log; 503 otherwise."""
    checks = readiness(ctx)
    ok = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ready" if ok else "not ready", "checks": checks},
        status_code=200 if ok else 503,
        headers={"Cache-Control": "no-store"},
    )


# -- logs --------------------------------------------------------------------------------------

#: Citizen ID numbers (18 characters, plausible date) — as ledger.entries' tripwire.  Also
#: what api.problems masks in every problem detail.
ID_NUMBER: Final = re.compile(
    r"(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])"
)

_REDACTIONS: Final = [
    (ID_NUMBER, "[id-number]"),
    (re.compile(r"cek_[A-Za-z0-9_\-]+"), "cek_[redacted]"),
    (re.compile(r"ses_[A-Za-z0-9_\-]+"), "ses_[redacted]"),
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1[redacted]"),
    # A token in a URL path: verification (/V/<token>, /api/v1/verify/<token>) and share
    # links (/S/<token>, /api/v1/shares/<token>).
    (
        re.compile(r"(?i)(/v/|/s/|/verify/|/shares/)(?!pdf\b|bundle\b)[A-Za-z0-9.$%*+\-/:_]{16,}"),
        r"\1[token]",
    ),
    # user:password@ in a URL.
    (re.compile(r"(://[^/\s:@]+):[^/\s@]+@"), r"\1:[redacted]@"),
]


def redact(value: str) -> str:
    """The text with ID numbers, API keys, verification tokens and URL passwords masked."""
    for pattern, repl in _REDACTIONS:
        value = pattern.sub(repl, value)
    return value


_STANDARD_ATTRS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, pid, the record's scalar extras
    (e.g. route, status, duration_ms) and exc; every string passes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_") or key in out:
                continue
            if isinstance(value, str):
                out[key] = redact(value)
            elif value is None or isinstance(value, bool | int | float):
                out[key] = value
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    """The plain-text format, redacted like the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service (handed to uvicorn, which applies it
    in every worker): one stderr handler, JSON or text, uvicorn's loggers routed through it."""
    formatter: dict[str, Any] = (
        {"()": "api.ops.JsonFormatter"}
        if settings.log_format == "json"
        else {
            "()": "api.ops.RedactingFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": settings.log_level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": settings.log_level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": settings.log_level, "propagate": True},
            # uvicorn's access log prints raw paths (tokens); metrics_middleware logs routes.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


# -- configuration and start-up ----------------------------------------------------------------


def settings_error_lines(exc: ValidationError) -> list[str]:
    """One line per invalid setting, naming it as the operator spells it; never the value
    (it may be a secret)."""
    lines = []
    for e in exc.errors():
        if not e["loc"]:
            # A rule across settings (a model validator) names its settings in its message.
            lines.append("  " + e["msg"].removeprefix("Value error, "))
            continue
        name = "_".join(str(p) for p in e["loc"]).upper()
        if e["type"] == "extra_forbidden":
            # An unknown key in a .env file: name it as written (it may lack the prefix).
            lines.append(f"  {name}: not a CE Ledger setting (in the .env file)")
            continue
        lines.append(f"  CELEDGER_{name}: {e['msg']}")
    return lines


class StartupError(Exception):
    """The service cannot start; ``exit_code`` follows ``api.cli``'s table."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Another advisory lock id than the append lock's: replicas that start together migrate one
# at a time (the others then find the schema current).
MIGRATE_LOCK_ID: Final = int.from_bytes(b"celedgmg", "big", signed=True)


def migrate(url: str) -> None:
    """Apply the migrations, one process at a time: on PostgreSQL under an advisory lock held
    for the duration, on SQLite under an exclusive ``flock`` of ``<database>.migrate-lock``.
    Concurrent Alembic runs on an empty database otherwise collide (two CREATE TABLEs)."""
    import fcntl

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from ledger.storage.db import is_sqlite, normalise_url
    from ledger.storage.migrate import upgrade

    if is_sqlite(url):
        database = make_url(url).database
        if not database or database == ":memory:":
            upgrade(url)
            return
        with Path(database + ".migrate-lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                upgrade(url)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_LOCK_ID})
            conn.commit()
            try:
                upgrade(url)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATE_LOCK_ID})
                conn.commit()
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def preflight(settings: Settings, *, run_migrations: bool = True) -> None:
    """Everything a worker needs, checked once before any starts; raises ``StartupError``.

    Keys (log, personal data, key encryption) load and are well formed; in production the
    PDF-signing certificate loads; the database answers and is migrated; the latest
    checkpoint verifies with the log key."""
    from sqlalchemy.exc import SQLAlchemyError

    from api.context import Context
    from certificates.model import CertificateError
    from ledger.errors import LedgerError

    try:
        ctx = Context.from_settings(settings)
    except SystemExit as exc:  # the key loaders name the setting in their message
        raise StartupError(str(exc.code)) from None
    except LedgerError as exc:
        raise StartupError(f"CELEDGER_LOG_KEY_FILE: {exc}") from None
    try:
        if settings.environment == "production":
            try:
                ctx.issuer()
            except SystemExit as exc:
                raise StartupError(str(exc.code)) from None
            except (LedgerError, CertificateError) as exc:
                raise StartupError(f"CELEDGER_PDF_SIGNER_P12: {exc}") from None
        if run_migrations:
            try:
                migrate(settings.effective_database_url)
            except SQLAlchemyError as exc:
                raise StartupError(
                    f"CELEDGER_DATABASE_URL: cannot migrate "
                    f"{_safe_url(settings.effective_database_url)}: {type(exc).__name__}: "
                    f"{redact(str(exc).splitlines()[0])}",
                    exit_code=3,
                ) from None
        checks = readiness(ctx)
        failed = {k: v for k, v in checks.items() if v != "ok"}
        if failed:
            where = {
                "database": "CELEDGER_DATABASE_URL",
                "read_database": "CELEDGER_READ_DATABASE_URL",
                "log_key": "CELEDGER_LOG_KEY_FILE",
            }
            raise StartupError(
                "; ".join(f"{where.get(k, k)}: {v}" for k, v in failed.items()),
                exit_code=3 if "database" in failed or "read_database" in failed else 2,
            )
    finally:
        ctx.close()
