"""The production server as CI runs it: real `celedger serve` processes on SQLite and
PostgreSQL.

* Smoke test: production settings, two uvicorn workers, JSON logs — health, readiness, a
  batch, a certificate verified, metrics summed over the workers whichever answers, no
  personal data in the logs, and SIGTERM ends it cleanly.
* Two API processes posting batches at the same time to one database: every batch is
  accepted, the log indices have no gap and no duplicate, and the tree audits clean — the
  append lock (PostgreSQL advisory lock / SQLite's single writer) is what any replica relies
  on to accept batches.

Both run on both databases (the fixture's parameters): SQLite is a supported single-host
deployment, and the advisory lock is only exercised on PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select

from api.context import Context, load_or_create_log_signer
from certificates.pades import DevelopmentPKI
from ledger.completions.models import CompletionRecord
from ledger.storage.audit import audit_local
from ledger.storage.log import Log
from tests.completions_support import BATCHES, batch, id_number, record, world
from tests.reliability_support import free_port

ROOT = Path(__file__).resolve().parent.parent


def _env(settings: Any, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELEDGER_", "PROMETHEUS_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "CELEDGER_DATABASE_URL": settings.database_url,
            "CELEDGER_DATA_DIR": str(settings.data_dir),
            "CELEDGER_ORIGIN": settings.origin,
            "CELEDGER_PUBLIC_URL": settings.public_url,
            **more,
        }
    )
    return env


@contextmanager
def _server(
    env: dict[str, str], workers: int, log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "api.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=log.parent,
            env=env,
            stdout=err,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready in 60 s:\n" + log.read_text()
            time.sleep(0.2)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def _production(settings: Any, tmp_path: Path) -> tuple[Any, dict[str, str]]:
    """Production settings: keys made the way the README's first run makes them."""
    load_or_create_log_signer(settings)  # what `celedger keys init` does
    pii, kek = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    pki = DevelopmentPKI.load_or_create(tmp_path / "ca")
    p12 = tmp_path / "signer.p12"
    p12.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"signer", pki.signing_key, pki.signing_cert, [pki.root_cert],
            serialization.BestAvailableEncryption(b"p12-secret"),
        )
    )  # fmt: skip
    prod = settings.model_copy(
        update={
            "environment": "production",
            "pii_key": SecretStr(pii),
            "key_encryption_key": SecretStr(kek),
            "pdf_signer_p12": p12,
            "pdf_signer_password": SecretStr("p12-secret"),
        }
    )
    env = {
        "CELEDGER_ENVIRONMENT": "production",
        "CELEDGER_PII_KEY": pii,
        "CELEDGER_KEY_ENCRYPTION_KEY": kek,
        "CELEDGER_PDF_SIGNER_P12": str(p12),
        "CELEDGER_PDF_SIGNER_PASSWORD": "p12-secret",
        "CELEDGER_LOG_FORMAT": "json",
    }
    return prod, env


def test_production_server_smoke(settings: Any, tmp_path: Path) -> None:
    prod, env = _production(settings, tmp_path)
    ctx = Context.from_settings(prod)
    try:
        keys = world(ctx)
    finally:
        ctx.close()
    log = tmp_path / "server.log"
    rows = [record(n) for n in range(1, 6)]
    with (
        _server(_env(settings, **env), 2, log) as (base, proc),
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json()["status"] == "ready"
        r = http.post(BATCHES, json=batch("smoke", *rows), headers=keys["base:1"])
        assert r.status_code == 201, r.text
        rid = r.json()["records"][0]["record"]
        c = http.post(f"/api/v1/completions/{rid}/certificate?format=json", headers=keys["base:1"])
        assert c.status_code == 201, c.text
        token = c.json()["verify_url"].rsplit("/", 1)[1]
        report = http.get(f"/api/v1/verify/{token}").json()
        assert report["verdict"] == "valid", report
        assert http.get(f"/V/{token}").status_code == 200
        checkpoint = http.get("/log/checkpoint")
        assert checkpoint.status_code == 200
        assert checkpoint.text.startswith(settings.origin + "\n")
        # Whichever worker answers the scrape, the counts are the sum over both workers.
        for _ in range(6):
            text = http.get("/metrics").text
            assert _metric(text, "celedger_records_ingested_total") == len(rows)
            # Two verifications: the JSON report and the QR's landing page.
            assert _metric(text, "celedger_verifications_total", verdict="valid", via="token") == 2
            # The tree grew past the batch: the first certificate created the issuing key.
            assert _metric(text, "celedger_log_tree_size") == int(checkpoint.text.split("\n")[1])
            assert _metric(
                text, "celedger_http_request_duration_seconds_count",
                route="/api/v1/bases/{base}/batches", status="201",
            ) == 1  # fmt: skip
            assert token not in text
        # Graceful shutdown: SIGTERM arrives while a batch's body is still being uploaded;
        # the request in flight completes (201) and then everything exits 0.
        body = json.dumps(batch("drain", *[record(n) for n in range(6, 11)])).encode()
        sent_first = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield body[:100]
            sent_first.set()
            time.sleep(1.5)
            yield body[100:]

        result: dict[str, Any] = {}

        def post_slowly() -> None:
            result["r"] = httpx.post(
                base + BATCHES,
                content=slow_body(),
                headers={**keys["base:1"], "Content-Type": "application/json",
                         "Content-Length": str(len(body))},
                timeout=30,
            )  # fmt: skip

        poster = threading.Thread(target=post_slowly)
        poster.start()
        assert sent_first.wait(10)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        poster.join(30)
        assert result["r"].status_code == 201, result["r"].text
        assert proc.wait(timeout=30) == 0  # the supervisor and its workers exit 0
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line is one JSON object
    started = {r["pid"] for r in records if r["msg"].startswith("Started server process")}
    assert len(started) == 2, lines  # two workers, each its own process
    assert any(r["logger"] == "celedger.access" and r.get("status") == 201 for r in records)
    assert any("Shutting down" in r["msg"] for r in records)
    assert any(r["msg"].startswith("Waiting for connections to close") for r in records)
    blob = log.read_text()
    for secret in (token, id_number(1), rows[0]["name"], keys["base:1"]["Authorization"][7:],
                   env["CELEDGER_PII_KEY"], "p12-secret"):  # fmt: skip
        assert secret not in blob


def test_two_api_processes_append_one_consistent_tree(
    settings: Any, ctx: Any, tmp_path: Path
) -> None:
    keys = world(ctx)
    with ctx.db.reader() as s:
        start = Log.size(s)
    env = _env(settings)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        _server(env, 1, tmp_path / "a" / "server.log") as (a, _pa),
        _server(env, 1, tmp_path / "b" / "server.log") as (b, _pb),
    ):

        def post(job: int) -> dict[str, Any]:
            base = (a, b)[job % 2]
            rows = [record(job * 25 + k) for k in range(25)]
            r = httpx.post(
                base + BATCHES, json=batch(f"c{job}", *rows), headers=keys["base:1"], timeout=60
            )
            assert r.status_code == 201, r.text
            return dict(r.json())

        with ThreadPoolExecutor(4) as pool:
            receipts = list(pool.map(post, range(16)))
    indices = [x["log_index"] for r in receipts for x in r["records"]]
    # No gap, no duplicate: the 400 records hold exactly the indices after the registry's.
    assert sorted(indices) == list(range(start, start + 400))
    # Each batch is one contiguous run (one append), and both processes appended.
    for r in receipts:
        own = [x["log_index"] for x in r["records"]]
        assert own == list(range(own[0], own[0] + 25))
    with ctx.db.reader() as s:
        assert Log.size(s) == start + 400
        assert s.scalar(select(func.count()).select_from(CompletionRecord)) == 400
        report = audit_local(s, settings.origin, [ctx.log_verifier])
    assert report.ok, report.first
    assert report.entries == start + 400
    # Every batch's signed checkpoint is in the one tree (the last is the latest checkpoint).
    sizes = sorted(r["ledger"]["tree_size"] for r in receipts)
    assert sizes[-1] == start + 400 and len(set(sizes)) == 16


def test_replicas_starting_together_migrate_one_at_a_time(db_url: str, tmp_path: Path) -> None:
    """Three `celedger db upgrade` at once on an empty database (what replicas starting
    together do before serving): all succeed and the schema is at head.  Without the
    migration lock two of them fail on a duplicate CREATE TABLE."""
    import secrets as _secrets

    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.engine import make_url

    from tests.conftest import PG_ADMIN

    if db_url.startswith("sqlite"):
        url, drop = f"sqlite:///{tmp_path / 'empty.db'}", None
    else:
        name = f"celedger_m_{_secrets.token_hex(6)}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url, drop = make_url(db_url).set(database=name).render_as_string(hide_password=False), name
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
        env.update({"PYTHONPATH": str(ROOT), "CELEDGER_DATABASE_URL": url,
                    "CELEDGER_DATA_DIR": str(tmp_path / "data")})  # fmt: skip
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "api.cli", "db", "upgrade"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        outs = [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in procs]
        assert [rc for rc, _ in outs] == [0, 0, 0], outs
        engine = create_engine(url)
        try:
            assert "log_entries" in inspect(engine).get_table_names()
        finally:
            engine.dispose()
    finally:
        if drop is not None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))
            admin.dispose()
