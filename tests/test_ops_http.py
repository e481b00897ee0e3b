"""Health, readiness and metrics through the HTTP app, on SQLite and PostgreSQL; and the logs
carry no personal data."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import Any

from litestar.testing import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.context import Context
from api.ops import JsonFormatter, RedactingFormatter, redact
from ledger.storage.db import Database
from ledger.storage.log import Log
from tests.completions_support import BATCHES, batch, id_number, record, world

BATCH_ROUTE = "/api/v1/bases/{base}/batches"


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _scrape(client: Any) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(r.text):
        for sample in fam.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def test_metrics_time_the_append_lock(client: Any, ctx: Any, db_url: str) -> None:
    keys = world(ctx)

    def lock_figures() -> tuple[float, float, float, float]:
        return (
            _value("celedger_append_lock_held_seconds_count"),
            _value("celedger_append_lock_held_seconds_sum"),
            _value("celedger_append_lock_wait_seconds_count"),
            _value("celedger_append_lock_wait_seconds_sum"),
        )

    # A batch is one transaction that takes the lock (twice: before its checks and in the
    # append): counted once.
    held, _, waited, _ = lock_figures()
    r = client.post(BATCHES, json=batch("lock", record(1)), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    assert lock_figures()[0] == held + 1 and lock_figures()[2] == waited + 1
    # A transaction that holds the lock while another asks for it: the first one's hold and,
    # on PostgreSQL, the second one's wait are what the histograms show.  (SQLite's writers
    # queue for the database's write lock when their transaction begins, before any asking.)
    held, held_sum, waited, wait_sum = lock_figures()
    locked = threading.Event()

    def hold() -> None:
        with ctx.db.writer() as s:
            ctx.log.lock(s)
            locked.set()
            time.sleep(1.0)  # long enough that the waiter is surely asking by half of it

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10)
    with ctx.db.writer() as s:
        ctx.log.lock(s)
    holder.join()
    after = lock_figures()
    assert after[0] == held + 2 and after[2] == waited + 2
    assert after[1] - held_sum >= 1.0
    if "postgresql" in db_url:
        assert after[3] - wait_sum >= 0.5
    # A transaction that ends in a rollback lets the lock go too: counted.
    with contextlib.suppress(RuntimeError), ctx.db.writer() as s:
        ctx.log.lock(s)
        raise RuntimeError("refused after the lock")
    assert lock_figures()[0] == held + 3


def test_healthz_and_readyz(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "log_key": "ok"}}
    assert r.headers["cache-control"] == "no-store"


def test_readyz_503_when_the_database_is_down(settings: Any, ctx: Any) -> None:
    # Port 1: nothing listens there, so every connection is refused at once.
    down = Context(
        settings=settings,
        db=Database("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"),
        log=ctx.log,
        vault=ctx.vault,
        kek=ctx.kek,
    )
    with TestClient(app=create_app(settings, context=down)) as tc:
        r = tc.get("/readyz")
        assert tc.get("/healthz").status_code == 200  # alive, but not ready
    down.close()
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "failed: OperationalError"
    assert "127.0.0.1" not in r.text  # a driver's message never reaches the client


def test_readyz_503_when_the_log_key_does_not_sign_this_log(
    settings: Any, ctx: Any, client: Any
) -> None:
    world(ctx)  # the registry's acts give the log signed checkpoints
    other = settings.model_copy(update={"log_key_file": settings.data_dir / "other.key"})
    wrong = Context.from_settings(other)  # same origin, same database, another key
    with TestClient(app=create_app(other, context=wrong)) as tc:
        r = tc.get("/readyz")
    wrong.close()
    assert r.status_code == 503, r.text
    assert r.json()["checks"]["database"] == "ok"
    assert r.json()["checks"]["log_key"].startswith("failed: the latest checkpoint does not verify")
    assert client.get("/readyz").status_code == 200  # the right key: ready


def test_metrics_count_what_happens(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    ingested = _value("celedger_records_ingested_total")
    accepted = _value("celedger_batches_total", outcome="accepted")
    r = client.post(
        BATCHES, json=batch("m1", record(1), record(2), record(3)), headers=keys["base:1"]
    )
    assert r.status_code == 201, r.text
    assert _value("celedger_records_ingested_total") == ingested + 3
    assert _value("celedger_batches_total", outcome="accepted") == accepted + 1
    # A retried key answers the same receipt and ingests nothing more.
    again = client.post(
        BATCHES, json=batch("m1", record(1), record(2), record(3)), headers=keys["base:1"]
    )
    assert again.status_code == 200
    assert _value("celedger_records_ingested_total") == ingested + 3

    # A refused batch counts under every rule that refused it.
    bad = client.post(
        BATCHES,
        json=batch("m2", record(4, id_number="110101199003071234"), record(5, hours="-1")),
        headers=keys["base:1"],
    )
    assert bad.status_code == 422, bad.text
    rules = {e["rule"] for e in bad.json()["errors"]}
    assert len(rules) == 2, rules
    before = {rule: _value("celedger_batches_refused_total", rule=rule) for rule in rules}
    refused = _value("celedger_batches_total", outcome="refused")
    client.post(
        BATCHES,
        json=batch("m3", record(4, id_number="110101199003071234"), record(5, hours="-1")),
        headers=keys["base:1"],
    )
    for rule in rules:
        assert _value("celedger_batches_refused_total", rule=rule) == before[rule] + 1
    assert _value("celedger_batches_total", outcome="refused") == refused + 1
    # A malformed body is refused by its own rule too.
    malformed = _value("celedger_batches_refused_total", rule="batch.malformed")
    client.post(
        BATCHES,
        content=b"{not json",
        headers={**keys["base:1"], "Content-Type": "application/json"},
    )
    assert _value("celedger_batches_refused_total", rule="batch.malformed") == malformed + 1

    # Verification verdicts.
    rid = r.json()["records"][0]["record"]
    cert = client.post(f"/api/v1/completions/{rid}/certificate?format=json", headers=keys["base:1"])
    assert cert.status_code == 201, cert.text
    token = cert.json()["verify_url"].rsplit("/", 1)[1]
    valid = _value("celedger_verifications_total", verdict="valid", via="token")
    forged = _value("celedger_verifications_total", verdict="forged", via="token")
    assert client.get(f"/api/v1/verify/{token}").json()["verdict"] == "valid"
    # One signature character changed (a changed last character can be the same token: its
    # spare bits are often zero already).
    forged_token = token[:100] + ("B" if token[100] == "A" else "A") + token[101:]
    assert client.get(f"/api/v1/verify/{forged_token}").json()["verdict"] in ("forged", "unknown")
    assert _value("celedger_verifications_total", verdict="valid", via="token") == valid + 1
    assert (
        _value("celedger_verifications_total", verdict="forged", via="token")
        + _value("celedger_verifications_total", verdict="unknown", via="token")
        > forged
    )

    # Tree size and checkpoint age come from the database at scrape time.
    scraped = _scrape(client)
    with ctx.db.reader() as s:
        size = Log.size(s)
    assert scraped["celedger_log_tree_size"] == [({}, float(size))]
    ((_, age),) = scraped["celedger_log_checkpoint_age_seconds"]
    assert 0 <= age < 300
    # Latency by route template: the batch route is there, and no token is anywhere.
    routes = {
        labels["route"] for labels, _ in scraped["celedger_http_request_duration_seconds_count"]
    }
    assert BATCH_ROUTE in routes
    assert "/api/v1/verify/{token}" in routes
    text = client.get("/metrics").text
    assert token not in text and token.lower() not in text


def test_metrics_on_an_empty_log(client: Any) -> None:
    scraped = _scrape(client)
    assert scraped["celedger_log_tree_size"] == [({}, 0.0)]
    assert "celedger_log_checkpoint_age_seconds" not in scraped


def test_logs_carry_no_personal_data_or_secrets(client: Any, ctx: Any, caplog: Any) -> None:
    keys = world(ctx)
    with caplog.at_level(logging.INFO):
        r = client.post(BATCHES, json=batch("log", record(7)), headers=keys["base:1"])
        assert r.status_code == 201
        rid = r.json()["records"][0]["record"]
        url = client.post(
            f"/api/v1/completions/{rid}/certificate?format=json", headers=keys["base:1"]
        ).json()["verify_url"]
        token = url.rsplit("/", 1)[1]
        assert client.get(f"/V/{token}").status_code == 200
    access = [rec for rec in caplog.records if rec.name == "celedger.access"]
    assert {getattr(rec, "route", None) for rec in access} >= {BATCH_ROUTE, "/V/{token}"}
    lines = [JsonFormatter().format(rec) for rec in caplog.records]
    blob = "\n".join(lines)
    for secret in (id_number(7), record(7)["name"], token, keys["base:1"]["Authorization"][7:]):
        assert secret not in blob
    for line in lines:
        parsed = json.loads(line)
        assert {"ts", "level", "logger", "msg", "pid"} <= set(parsed)
    one = json.loads(JsonFormatter().format(access[0]))
    assert isinstance(one["status"], int) and isinstance(one["duration_ms"], float)


def test_redaction_is_a_second_line_of_defence() -> None:
    rec = logging.LogRecord(
        "celedger.api", logging.ERROR, __file__, 1,
        "failed for %s at /V/%s with cek_AbC123 via postgresql://u:hunter2@db/x",
        (id_number(3), "A" * 40), None,
    )  # fmt: skip
    for out in (JsonFormatter().format(rec), RedactingFormatter().format(rec)):
        assert id_number(3) not in out and "A" * 40 not in out
        assert "hunter2" not in out and "cek_AbC123" not in out
        assert "[id-number]" in out and "/V/[token]" in out
    assert redact("/api/v1/verify/pdf") == "/api/v1/verify/pdf"
    assert redact("shared at /S/" + "B" * 30) == "shared at /S/[token]"
    assert redact("GET /V/{token} 200") == "GET /V/{token} 200"
    assert redact("session ses_AbC-123_x ended") == "session ses_[redacted] ended"
    assert redact("GET /api/v1/shares/" + "C" * 30) == "GET /api/v1/shares/[token]"
