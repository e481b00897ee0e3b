"""Helpers for the reliability tests (no tests here): a real server in a subprocess that can be
killed with SIGKILL (the privacy scan and the browser tests start theirs with it too), batches
of distinct people, and the ledger's state read straight from the database.

The server runs as ``python -m api.cli serve`` in its own session (process group), so SIGKILL
to the group also takes its uvicorn workers: nothing of it survives to finish a transaction.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from ledger.completions.models import CompletionBatch, CompletionRecord
from ledger.storage.models import LogCheckpoint, LogEntry
from tests.completions_support import MATERIALS, id_number, record

ROOT = Path(__file__).resolve().parent.parent
#: Base 2's approved 2026 plan (see ledger.registry.demo): class 02 is 专业 面授 24 学时 on
#: 05-10..05-13 at 1200 元, like base 1's MATERIALS, so ``record``'s defaults fit both.
HOSPITAL_MATERIALS = MATERIALS.replace("PZXY", "ZXYY")
CLASS_OF_BASE = {1: MATERIALS, 2: HOSPITAL_MATERIALS}


# Each test worker (pytest-xdist's gw0, gw1, …) takes ports from its own block below the
# kernel's ephemeral range.  Asking the kernel for a free port (bind to 0) and starting the
# server on it seconds later lets the other worker be handed the same port in between: with
# dozens of servers a run, that collided about once in a few thousand runs.
_PORTS = itertools.count(20_000 + 1_000 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]))


def free_port() -> int:
    """A port no other test worker will use, and nothing on this machine holds right now."""
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("unreachable: the port counter is endless")


def server_env(settings: Any, **extra: str) -> dict[str, str]:
    """The test's settings as the environment of a ``celedger`` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
    env.update(
        CELEDGER_DATA_DIR=str(settings.data_dir),
        CELEDGER_DATABASE_URL=settings.database_url,
        CELEDGER_ORIGIN=settings.origin,
        CELEDGER_PUBLIC_URL=settings.public_url,
        CELEDGER_LOG_LEVEL="WARNING",
        # A verdict may otherwise be up to a second old (the default freshness): a page
        # opened right after a revocation raced it.
        CELEDGER_VERIFY_FRESHNESS_SECONDS=str(settings.verify_freshness_seconds),
    )
    env.update(extra)
    return env


class Server:
    """``celedger serve`` on a free port, in its own process group; ``kill()`` is SIGKILL.
    Links it makes (QR codes, redirects) lead back to it."""

    def __init__(
        self, settings: Any, *, workers: int = 1, log: Path | None = None, **env: str
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log = None if log is None else log.open("ab")
        argv = ["serve", "--no-migrate", "--port", str(self.port), "--workers", str(workers)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", *argv],
            env=server_env(settings, **{"CELEDGER_PUBLIC_URL": self.url, **env}),
            cwd=ROOT,
            start_new_session=True,
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_log()
                raise AssertionError(
                    f"the server exited with {self.proc.returncode} at start{self._tail()}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    if self.proc.poll() is None:  # and it was this server that answered
                        return
                    continue
            except httpx.HTTPError:
                time.sleep(0.05)
        self.kill()
        raise AssertionError(
            f"the server did not answer /healthz within {timeout:.0f} s{self._tail()}"
        )

    def _tail(self, lines: int = 15) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return ":\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL to the whole process group (server and workers), then reap it."""
        with contextlib.suppress(ProcessLookupError):  # it may have died already
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._close_log()

    def stop(self) -> None:
        """SIGTERM (a graceful stop: logs flushed), SIGKILL if it is not gone within 30 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.kill()


@dataclass
class People:
    """Distinct people for a whole test: a person posted twice to one class would be refused
    as a ledger duplicate, so every record gets an ID number nobody else had."""

    next: int = 0

    def records(self, n: int, class_code: str = MATERIALS) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            k = self.next
            self.next += 1
            born = date(1960, 1, 1) + timedelta(days=k // 1000)
            out.append(
                record(
                    k,
                    class_code=class_code,
                    id_number=id_number(k, birth=f"{born:%Y%m%d}"),
                )
            )
        return out


def run_cli(settings: Any, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=server_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def audit_clean(settings: Any) -> tuple[bool, str]:
    """``celedger audit`` on the test's database: (exit 0 and 'audit clean', its output)."""
    r = run_cli(settings, "audit")
    out = r.stdout + r.stderr
    return r.returncode == 0 and "audit clean" in r.stdout, out


def db_kind(settings: Any) -> str:
    """'sqlite' or 'postgresql': the name the figures carry."""
    return str(make_url(settings.database_url).get_backend_name())


def stored_batch(ctx: Any, base: int, key: str) -> tuple[int, dict[str, int]] | None:
    """(record_count on the batch row, {record id: log index} of its records), or None when
    the batch is not stored."""
    with ctx.db.reader() as s:
        row = s.execute(
            select(CompletionBatch.id, CompletionBatch.record_count).where(
                CompletionBatch.base_id == base, CompletionBatch.batch_key == key
            )
        ).one_or_none()
        if row is None:
            return None
        records = s.execute(
            select(CompletionRecord.id, CompletionRecord.log_index).where(
                CompletionRecord.batch_id == row.id
            )
        ).all()
    return int(row.record_count), {r.id: int(r.log_index) for r in records}


@dataclass(frozen=True)
class LedgerCounts:
    size: int  # max(idx) + 1
    entries: int  # rows in log_entries
    checkpoint: int  # size of the latest signed checkpoint
    completion_entries: int
    completion_records: int


def ledger_counts(ctx: Any) -> LedgerCounts:
    with ctx.db.reader() as s:
        top, rows, completions = s.execute(
            select(
                func.max(LogEntry.idx),
                func.count(),
                func.count().filter(LogEntry.kind == "completion"),
            )
        ).one()
        cp = s.scalar(select(func.max(LogCheckpoint.size)))
        records = s.scalar(select(func.count()).select_from(CompletionRecord))
    return LedgerCounts(
        size=0 if top is None else int(top) + 1,
        entries=int(rows),
        checkpoint=int(cp or 0),
        completion_entries=int(completions),
        completion_records=int(records or 0),
    )
