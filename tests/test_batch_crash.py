"""Crash test: the server process is killed (SIGKILL) while a large batch is being posted.

After a restart the batch is either wholly present or wholly absent, a retry with the same key
either replays the receipt or posts it once, and ``celedger audit`` finds the ledger clean.  Run
on SQLite and PostgreSQL, at several moments of the request.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ledger.completions.models import CompletionBatch, CompletionRecord
from tests.completions_support import batch, id_number, record, world

ROWS = 4000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
    env.update(
        CELEDGER_DATA_DIR=str(settings.data_dir),
        CELEDGER_DATABASE_URL=settings.database_url,
        CELEDGER_ORIGIN=settings.origin,
        CELEDGER_LOG_LEVEL="WARNING",
    )
    return env


def _start(settings: Any, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--no-migrate"],
        env=_env(settings),
        cwd=Path(__file__).resolve().parent.parent,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start within 30 s")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _records(trial: int) -> list[dict[str, Any]]:
    # Distinct people per trial: birth dates spread over days of a year per trial.
    out = []
    for i in range(ROWS):
        n = i % 1000
        day = 1 + (i // 1000) + 5 * trial
        out.append(record(n, id_number=id_number(n, birth=f"1985{1 + trial:02d}{day:02d}")))
    return out


def _state(ctx: Any, key: str) -> tuple[int, int]:
    with ctx.db.reader() as s:
        batches = s.scalar(
            select(func.count())
            .select_from(CompletionBatch)
            .where(CompletionBatch.batch_key == key)
        )
        records = s.scalar(select(func.count()).select_from(CompletionRecord))
    return int(batches or 0), int(records or 0)


@pytest.mark.slow
def test_killed_mid_batch_is_all_or_nothing(settings: Any, ctx: Any) -> None:
    keys = world(ctx)
    headers = keys["base:1"]
    outcomes = []
    total = 0
    for trial, delay in enumerate((0.05, 0.4, 1.0, 2.5)):
        port = _free_port()
        server = _start(settings, port)
        body = batch(f"crash-{trial}", *_records(trial))
        sent: dict[str, Any] = {}

        def post(
            body: dict[str, Any] = body, port: int = port, sent: dict[str, Any] = sent
        ) -> None:
            try:
                sent["r"] = httpx.post(
                    f"http://127.0.0.1:{port}/api/v1/bases/1/batches",
                    json=body,
                    headers=headers,
                    timeout=60,
                )
            except httpx.HTTPError as exc:
                sent["error"] = exc

        t = threading.Thread(target=post)
        t.start()
        time.sleep(delay)
        _kill(server)
        t.join(timeout=60)
        present, records = _state(ctx, f"crash-{trial}")
        # All or nothing: the batch row and every one of its records, or none of them.
        assert (present, records) in ((0, total), (1, total + ROWS)), (present, records, total)
        if "r" in sent:  # answered before the kill: then it must be there
            assert sent["r"].status_code == 201 and present == 1
        outcomes.append("present" if present else "absent")
        # After a restart the same key either replays the receipt or posts the batch once.
        server = _start(settings, port)
        try:
            retry = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/bases/1/batches",
                json=body,
                headers=headers,
                timeout=120,
            )
            assert retry.status_code == (200 if present else 201), retry.text
            assert retry.json()["count"] == ROWS
        finally:
            _kill(server)
        total += ROWS
        assert _state(ctx, f"crash-{trial}") == (1, total)
        audit = subprocess.run(
            [sys.executable, "-m", "api.cli", "audit"],
            env=_env(settings),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert audit.returncode == 0 and "audit clean" in audit.stdout, audit.stdout + audit.stderr
    print("crash trial outcomes:", outcomes)
    # Killing after 50 ms cannot have let a 4,000-row batch commit; the retries made them whole.
    assert outcomes[0] == "absent", outcomes
