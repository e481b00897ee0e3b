"""Public verification through HTTP (HTML and JSON), on SQLite and PostgreSQL: every verdict,
forgeries, match / no match, and the abuse protections."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ledger.issuing import active_signer, mark_compromised
from ledger.registry.demo import DEMO_YEAR
from tests.asgi_support import asgi_get
from tests.completions_support import BATCHES, ETHICS, batch, id_number, record, world
from verification.token import TokenClaims, issue_token, token_url

CITY = "authority:CN-SC-PZH"


def _issue(client: Any, keys: dict[str, dict[str, str]], rid: str) -> str:
    r = client.post(f"/api/v1/completions/{rid}/certificate?format=json", headers=keys["base:1"])
    assert r.status_code == 201, r.text
    return str(r.json()["verify_url"])


def _path(url: str) -> str:
    return urlsplit(url).path


def _verdict(client: Any, url: str) -> dict[str, Any]:
    token = _path(url).rsplit("/", 1)[1]
    j = client.get(f"/api/v1/verify/{token}")
    assert j.status_code == 200, j.text
    page = client.get(_path(url))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'data-verdict="{j.json()["verdict"]}"' in page.text
    assert "<script" not in page.text
    body: dict[str, Any] = j.json()
    return body


def _post(client: Any, keys: dict[str, dict[str, str]], *rows: dict[str, Any]) -> list[str]:
    r = client.post(BATCHES, json=batch("v", *rows), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    return [x["record"] for x in r.json()["records"]]


def test_valid_then_revoked(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    (rid,) = _post(client, keys, record(1))
    url = _issue(client, keys, rid)
    report = _verdict(client, url)
    assert report["verdict"] == "valid" and report["valid"] is True
    assert [c["id"] for c in report["checks"]] == [
        "signature", "key-status", "ledger-inclusion", "record-status", "base-recognised",
    ]  # fmt: skip
    assert all(c["ok"] for c in report["checks"])
    shown = report["records"][0]
    assert shown["holder"]["name"] == "张*甲" and shown["holder"]["id_number"].count("*") == 16
    assert shown["hours"] == "24.0" and shown["record"] == rid
    page = client.get(_path(url)).text
    assert "有效" in page and id_number(1) not in page and "张二甲" not in page
    assert "Valid" in client.get(_path(url) + "?lang=en").text
    assert client.get(_path(url).replace("/V/", "/v/")).status_code == 200
    client.post(f"/api/v1/completions/{rid}/revocation",
                json={"reason_code": "fraud", "reason": "查实未参训"}, headers=keys[CITY])  # fmt: skip
    report = _verdict(client, url)
    assert report["verdict"] == "revoked" and report["valid"] is False
    status = next(c for c in report["checks"] if c["id"] == "record-status")
    assert status["outcome"] == "revoked" and "fraud" in status["reason"]["en"]
    assert "查实未参训" not in str(report)  # the free-text reason stays internal


def test_superseded_links_to_the_current_version(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    (rid,) = _post(client, keys, record(1, hours="20"))
    url = _issue(client, keys, rid)
    fix = client.post(f"/api/v1/completions/{rid}/corrections",
                      json={"reason": "学时有误", "changes": {"hours": "24"}}, headers=keys["base:1"])  # fmt: skip
    assert fix.status_code == 201
    report = _verdict(client, url)
    assert report["verdict"] == "superseded"
    link = report["notes"][0]["en"].split("current record: ")[1]
    current = _verdict(client, link)
    assert current["verdict"] == "valid" and current["records"][0]["hours"] == "24.0"


def test_base_revoked_after_the_training_still_valid(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    (rid,) = _post(client, keys, record(1))
    url = _issue(client, keys, rid)
    r = client.post("/api/v1/registry/bases/1/revoke", json={"reason": "年检不合格，取消资格"},
                    headers=keys[CITY])  # fmt: skip
    assert r.status_code in (200, 201), r.text
    report = _verdict(client, url)
    assert report["verdict"] == "valid-base-revoked-later" and report["valid"] is True
    check = next(c for c in report["checks"] if c["id"] == "base-recognised")
    assert check["ok"] is True and "revoked later" in check["reason"]["en"]


def test_key_compromised_and_forgeries(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    rid, other = _post(client, keys, record(1), record(2))
    url = _issue(client, keys, rid)
    token = _path(url).rsplit("/", 1)[1]
    # One character changed, anywhere: never valid.
    for i in (0, len(token) // 2, len(token) - 5):
        swapped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        assert _verdict(client, f"/V/{swapped}")["verdict"] in ("forged", "unknown")
    # Not a token at all; a well-signed token for no record.
    assert _verdict(client, "/V/HELLO")["verdict"] == "unknown"
    with ctx.db.reader() as s:
        signer = active_signer(s, ctx.kek)
    ghost = TokenClaims(secrets.token_bytes(16), 3, int(datetime.now(UTC).timestamp()), signer.kid)
    assert (
        _verdict(client, token_url("http://x", issue_token(ghost, signer)))["verdict"] == "unknown"
    )
    # A token signed by a key nobody published.
    from ledger.keyset import IssuingSigner

    rogue = IssuingSigner.generate()
    forged = TokenClaims(secrets.token_bytes(16), 3, int(datetime.now(UTC).timestamp()), rogue.kid)
    assert (
        _verdict(client, token_url("http://x", issue_token(forged, rogue)))["verdict"] == "forged"
    )
    # The QR of one record with the ledger position of another.
    with ctx.db.reader() as s:
        from ledger.completions.models import CompletionRecord

        a = s.get(CompletionRecord, rid)
        b = s.get(CompletionRecord, other)
        assert a is not None and b is not None
        mixed = TokenClaims(
            bytes(a.token), b.log_index, int(datetime.now(UTC).timestamp()), signer.kid
        )
    assert (
        _verdict(client, token_url("http://x", issue_token(mixed, signer)))["verdict"] == "forged"
    )
    # The issuing key is compromised from an hour ago: what it signed since is refused.
    with ctx.db.writer() as s:
        mark_compromised(s, ctx.log, signer.kid, datetime.now(UTC) - timedelta(hours=1), "leak")
    report = _verdict(client, url)
    assert report["verdict"] == "key-compromised"
    assert next(c for c in report["checks"] if c["id"] == "key-status")["outcome"] == "compromised"


def test_transcript_token(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    rid, _ = _post(client, keys, record(1), record(1, class_code=ETHICS, category="公需",
                   start=f"{DEMO_YEAR}-03-10", end=f"{DEMO_YEAR}-03-10", hours="6", fee_yuan="0"))  # fmt: skip
    r = client.post("/api/v1/transcripts?format=json",
                    json={"id_number": id_number(1), "years": [DEMO_YEAR]}, headers=keys[CITY])  # fmt: skip
    assert r.status_code == 201, r.text
    url = r.json()["verify_url"]
    report = _verdict(client, url)
    assert report["verdict"] == "valid" and report["document"]["kind"] == "transcript"
    assert len(report["records"]) == 2
    client.post(f"/api/v1/completions/{rid}/revocation",
                json={"reason_code": "error", "reason": "x"}, headers=keys[CITY])  # fmt: skip
    assert _verdict(client, url)["verdict"] == "revoked"


def test_match_no_match_never_the_data(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    (rid,) = _post(client, keys, record(1))
    url = _issue(client, keys, rid)
    token = _path(url).rsplit("/", 1)[1]
    api = f"/api/v1/verify/{token}/match"
    name = record(1)["name"]
    assert client.post(api, json={"name": name, "id_number": id_number(1)}).json() == {
        "name": "match", "id_number": "match",
    }  # fmt: skip
    assert client.post(api, json={"name": "李四", "id_number": id_number(2)}).json() == {
        "name": "no-match", "id_number": "no-match",
    }  # fmt: skip
    assert client.post(api, json={"id_number": "not a number"}).json() == {"id_number": "no-match"}
    assert client.post(api, json={}).status_code == 400
    assert client.post("/api/v1/verify/HELLO/match", json={"name": "x"}).status_code == 404
    page = client.post(_path(url), data={"name": name, "id_number": ""})
    assert page.status_code == 200 and "一致" in page.text and id_number(1) not in page.text
    assert page.headers["cache-control"] == "no-store"


def test_security_headers_caching_and_rate_limit(settings: Any, ctx: Any) -> None:
    from litestar.testing import TestClient

    from api.app import create_app

    limited = settings.model_copy(update={"verify_rate_per_minute": 5})
    with TestClient(app=create_app(limited, context=ctx)) as client:
        r = client.get("/V/HELLO")
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert set(r.headers["cache-control"].split(", ")) == {"public", "max-age=60"}
        codes = [client.get("/api/v1/verify/HELLO").status_code for _ in range(8)]
        assert 429 in codes and codes[0] == 200
        # Other routes are not limited by the verification budget.
        assert client.get("/healthz").status_code == 200
        assert client.get("/log/checkpoint").status_code in (200, 404)
    # 0 leaves limiting to the front proxy: the service itself never answers 429.
    unlimited = settings.model_copy(update={"verify_rate_per_minute": 0})
    with TestClient(app=create_app(unlimited, context=ctx)) as client:
        codes = [client.get("/api/v1/verify/HELLO").status_code for _ in range(8)]
        assert set(codes) == {200} and "x-ratelimit-limit" not in {
            k.lower() for k in client.get("/api/v1/verify/HELLO").headers
        }


def test_reports_are_kept_until_the_next_append_and_forgeries_never(client: Any, ctx: Any) -> None:
    # The report cache is keyed by the latest checkpoint: a hit must be the very same report,
    # and any append (here an unrelated batch) must start a fresh snapshot.
    keys = world(ctx)
    (rid,) = _post(client, keys, record(1))
    token = _path(_issue(client, keys, rid)).rsplit("/", 1)[1]
    verifier = ctx.verifier()
    with ctx.db.reader() as s:
        first = verifier.verify(s, token)
        assert verifier.verify(s, token) is first
        snap = verifier.snapshot(s)
        forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        assert verifier.verify(s, forged).verdict in ("forged", "unknown")
        assert list(snap.reports) == [token]  # the forgery was not kept
    later = client.post(BATCHES, json=batch("later", record(2)), headers=keys["base:1"])
    assert later.status_code == 201, later.text
    with ctx.db.reader() as s:
        again = verifier.verify(s, token)
        assert verifier.snapshot(s).size > snap.size
    assert again is not first and again.verdict == first.verdict == "valid"
    assert again.checks[2].en != first.checks[2].en  # names the new checkpoint size


async def _verify_at_once(app: Any, tokens: list[str]) -> list[str]:
    """GET /api/v1/verify/{token} for every token concurrently, straight on the ASGI app (the
    test clients send one request at a time): the verdicts."""
    import json

    import anyio

    verdicts: list[str] = []

    async def one(token: str) -> None:
        status, _, body = await asgi_get(app, f"/api/v1/verify/{token}")
        assert status == 200, body
        verdicts.append(json.loads(body)["verdict"])

    async with anyio.create_task_group() as tg:
        for t in tokens:
            tg.start_soon(one, t)
    return verdicts


def test_a_stale_snapshot_is_read_once_for_every_request_waiting(
    client: Any, ctx: Any, monkeypatch: Any
) -> None:
    # Once a second the kept snapshot goes stale under load: the first request reads the
    # checkpoint again and the others wait for that read instead of each going to the database
    # (64 of them at once stalled the server for 50-70 ms; bench/bench_verify.py's p99).
    import time as real_time

    import anyio

    import certificates.verifier as module

    keys = world(ctx)
    rids = _post(client, keys, *[record(k) for k in range(1, 7)])
    tokens = [_path(_issue(client, keys, rid)).rsplit("/", 1)[1] for rid in rids]
    verifier = ctx.verifier()
    verifier.freshness = 1.0
    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    for t in tokens:  # each report kept
        assert client.get(f"/api/v1/verify/{t}").json()["verdict"] == "valid"
    assert all(verifier.cached(t) is not None for t in tokens)

    reads: list[int] = []
    verified: list[str] = []
    snapshot, verify = verifier.snapshot, verifier.verify

    def slow_snapshot(session: Any, **kw: Any) -> Any:
        reads.append(1)
        real_time.sleep(0.05)  # long enough for every other request to arrive meanwhile
        return snapshot(session, **kw)

    def counted_verify(session: Any, text: str) -> Any:
        verified.append(text)
        return verify(session, text)

    monkeypatch.setattr(verifier, "snapshot", slow_snapshot)
    monkeypatch.setattr(verifier, "verify", counted_verify)
    now[0] += 1.5  # the snapshot is stale now
    assert anyio.run(_verify_at_once, client.app, tokens * 5) == ["valid"] * 30
    assert len(reads) == 1, f"expected one snapshot read, found {len(reads)}"
    assert verified == []  # the checkpoint had not moved: every kept report answered
    # Once the log has moved on, the one read finds a new checkpoint and every report is
    # verified again: nothing is answered from the old snapshot.
    later = client.post(BATCHES, json=batch("later", record(9)), headers=keys["base:1"])
    assert later.status_code == 201, later.text
    now[0] += 1.5
    assert anyio.run(_verify_at_once, client.app, tokens) == ["valid"] * 6
    assert sorted(verified) == sorted(tokens)


def test_a_verdict_is_at_most_freshness_seconds_old(
    client: Any, ctx: Any, monkeypatch: Any
) -> None:
    # With the default freshness (1 s) a process answers from its snapshot without asking the
    # database; once the second is over, a revocation made meanwhile must show.
    import certificates.verifier as module

    keys = world(ctx)
    (rid,) = _post(client, keys, record(1))
    token = _path(_issue(client, keys, rid)).rsplit("/", 1)[1]
    verifier = ctx.verifier()
    verifier.freshness = 1.0
    now = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    with ctx.db.reader() as s:
        assert verifier.verify(s, token).verdict == "valid"
    assert verifier.cached(token) is not None  # answered without the database
    revoked = client.post(f"/api/v1/completions/{rid}/revocation",
                          json={"reason_code": "fraud", "reason": "x"}, headers=keys[CITY])  # fmt: skip
    assert revoked.status_code == 201, revoked.text
    now[0] += 0.5
    assert client.get(f"/api/v1/verify/{token}").json()["verdict"] == "valid"  # within 1 s
    now[0] += 0.6
    assert verifier.cached(token) is None  # stale: the next request asks the database
    assert client.get(f"/api/v1/verify/{token}").json()["verdict"] == "revoked"

    # Something newer than the snapshot is never called forged: a record posted and a key
    # rotated within the second verify at once (the snapshot is read again for them).
    def post(key: str, row: dict[str, Any]) -> str:
        r = client.post(BATCHES, json=batch(key, row), headers=keys["base:1"])
        assert r.status_code == 201, r.text
        return str(r.json()["records"][0]["record"])

    newer = post("newer", record(2))
    fresh_url = _issue(client, keys, newer)
    assert _verdict(client, fresh_url)["verdict"] == "valid"
    from ledger import issuing

    with ctx.db.writer() as s:  # as `celedger keys issuing rotate` does
        issuing.rotate(s, ctx.log, ctx.kek, datetime.now(UTC))
    third = post("third", record(3))
    assert _verdict(client, _issue(client, keys, third))["verdict"] == "valid"
