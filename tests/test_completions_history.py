"""Corrections and revocations through HTTP on both databases: each is a new ledger entry that
supersedes the old one; history is kept and shown; the rules about who, when and what."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.completions import services as cs
from ledger.registry.auth import Principal
from ledger.registry.demo import DEMO_YEAR
from ledger.registry.errors import RuleViolation
from tests.completions_support import BATCHES, ONLINE, batch, record, world, written
from tests.test_registry_support import prove

CITY = "authority:CN-SC-PZH"


def _post(client: Any, keys: dict[str, dict[str, str]], *records: dict[str, Any]) -> list[str]:
    r = client.post(BATCHES, json=batch("h", *records), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    return [x["record"] for x in r.json()["records"]]


def test_correction_supersedes_and_history_is_kept(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    (rid,) = _post(client, keys, record(1, hours="20"))
    url = f"/api/v1/completions/{rid}"
    r = client.post(
        url + "/corrections",
        json={"reason": "学时录入错误，应为24学时", "changes": {"hours": "24"}},
        headers=keys["base:1"],
    )
    assert r.status_code == 201, r.text
    new = r.json()["record"]
    assert new != rid and r.json()["supersedes"] == rid
    payload = prove(client, ctx, r.json()["log_index"], "correction")
    assert payload["supersedes"] == rid and payload["hours"] == "24.0"
    assert payload["record"] == new and len(payload["reason_sha256"]) == 64
    # Both versions tell the same history, oldest first; the old one says it was superseded.
    for which in (rid, new):
        view = client.get(f"/api/v1/completions/{which}", headers=keys["base:1"]).json()
        assert [v["record"] for v in view["versions"]] == [rid, new]
        assert [v["status"] for v in view["versions"]] == ["superseded", "current"]
        assert view["current"] == new
        assert view["versions"][1]["reason"] == "学时录入错误，应为24学时"
        assert [v["hours"] for v in view["versions"]] == ["20.0", "24.0"]
    # The old version can be neither corrected nor revoked again: act on the current one.
    again = client.post(
        url + "/corrections",
        json={"reason": "x", "changes": {"hours": "23"}},
        headers=keys["base:1"],
    )
    assert again.status_code == 409 and again.json()["rule"] == "completion.correct.superseded"
    assert new in again.json()["detail"]
    # The management unit and the authority read it too; another base does not.
    assert client.get(url, headers=keys["unit:1"]).status_code == 200
    assert client.get(url, headers=keys[CITY]).status_code == 200
    assert client.get(url, headers=keys["base:2"]).status_code == 403


def test_correction_rules(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    (rid,) = _post(client, keys, record(1))
    url = f"/api/v1/completions/{rid}/corrections"
    before = written(ctx)
    cases = [
        ({"reason": "改名", "changes": {"name": "李四"}}, 422, "completion.correct.field"),
        ({"reason": "改号", "changes": {"id_number": "11010519491231002X"}}, 422, "completion.correct.field"),
        ({"reason": "空", "changes": {}}, 422, "completion.correct.empty"),
        ({"reason": "超出", "changes": {"hours": "30"}}, 422, "batch.invalid"),
    ]  # fmt: skip
    for body, status, rule in cases:
        r = client.post(url, json=body, headers=keys["base:1"])
        assert r.status_code == status and r.json()["rule"] == rule, r.text
    r = client.post(url, json={"changes": {"hours": "20"}}, headers=keys["base:1"])
    assert r.status_code == 400  # the reason is required
    r = client.post(url, json={"reason": "x", "changes": {"hours": "20"}}, headers=keys["base:2"])
    assert r.status_code == 403 and r.json()["rule"] == "completion.correct"
    r = client.post(url, json={"reason": "x", "changes": {"hours": "20"}}, headers=keys[CITY])
    assert r.status_code == 403
    assert written(ctx) == before
    # Moving the record to another class of the plan is a correction like any other.
    moved = {"class_code": ONLINE, "mode": "网络", "start": f"{DEMO_YEAR}-07-10",
             "end": f"{DEMO_YEAR}-07-11", "hours": "12", "fee_yuan": "300"}  # fmt: skip
    r = client.post(url, json={"reason": "班次选错", "changes": moved}, headers=keys["base:1"])
    assert r.status_code == 201, r.text


def test_correction_window_comes_from_the_policy(ctx: Any) -> None:
    world(ctx)
    base = Principal("base:1", "base", "CN-SC-PZH", base=1)
    with ctx.db.writer() as s:
        from ledger.completions.intake import parse_json_records

        posted = cs.post_batch(
            s, ctx.log, ctx.vault, base, 1, parse_json_records([record(1)], max_rows=10),
            batch_key="w",
        )  # fmt: skip
        rid = posted.as_json()["records"][0]["record"]
        at = cs._utc(None)
        window = 90  # the national default, inherited by Panzhihua
        # On the last day of the window a correction is accepted...
        cs.correct(s, ctx.log, ctx.vault, base, rid, {"hours": "23"}, "更正",
                   now=at + timedelta(days=window))  # fmt: skip
        current = cs.record_view(s, ctx.vault, base, rid)["current"]
        # ...the day after, refused (counted from the original posting, not the last correction).
        with pytest.raises(RuleViolation, match=r"completion\.correct\.window"):
            cs.correct(s, ctx.log, ctx.vault, base, current, {"hours": "22"}, "再次更正",
                       now=at + timedelta(days=window + 1))  # fmt: skip


def test_revocation_by_the_authority_with_history(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    rid, other = _post(client, keys, record(1), record(2))
    url = f"/api/v1/completions/{rid}/revocation"
    body = {"reason_code": "fraud", "reason": "经查实，该学员未实际参加培训"}
    # Not the base, not the management unit, not an authority elsewhere.
    assert client.post(url, json=body, headers=keys["base:1"]).status_code == 403
    assert client.post(url, json=body, headers=keys["unit:1"]).status_code == 403
    bad = client.post(url, json={"reason_code": "whim", "reason": "x"}, headers=keys[CITY])
    assert bad.status_code == 400
    r = client.post(url, json=body, headers=keys[CITY])
    assert r.status_code == 201, r.text
    payload = prove(client, ctx, r.json()["log_index"], "revocation")
    assert payload["record"] == rid and payload["reason_code"] == "fraud"
    assert payload["by"] == CITY and "未实际参加" not in str(payload)
    view = client.get(f"/api/v1/completions/{rid}", headers=keys["base:1"]).json()
    assert view["status"] == "revoked"
    revocation = view["versions"][-1]["revocation"]
    assert revocation["reason_code"] == "fraud" and revocation["by"] == CITY
    assert revocation["reason"] == body["reason"]
    # Revoked is final: no second revocation, no correction.
    again = client.post(url, json=body, headers=keys["authority:CN"])
    assert again.status_code == 409 and again.json()["rule"] == "completion.revoke.revoked"
    fix = client.post(
        f"/api/v1/completions/{rid}/corrections",
        json={"reason": "x", "changes": {"hours": "20"}},
        headers=keys["base:1"],
    )
    assert fix.status_code == 409
    # A revoked record no longer blocks posting the person for the class again.
    r = client.post(BATCHES, json=batch("again", record(1)), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    assert (
        client.get(f"/api/v1/completions/{other}", headers=keys["base:1"]).json()["status"]
        == "current"
    )
    assert client.get("/api/v1/completions/r_doesnotexist", headers=keys[CITY]).status_code == 404


def test_execution_summary_counts_current_records(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    rid, _, _ = _post(client, keys, record(1), record(2), record(3))
    client.post(
        f"/api/v1/completions/{rid}/revocation",
        json={"reason_code": "error", "reason": "重复登记"},
        headers=keys[CITY],
    )
    url = f"/api/v1/bases/1/execution-summary?year={DEMO_YEAR}"
    summary = client.get(url, headers=keys["unit:1"])
    assert summary.status_code == 200, summary.text
    body = summary.json()
    line = next(c for c in body["classes"] if c["code"] == f"PZXY-{DEMO_YEAR}-02")
    assert line["trainees"] == 2, line
    csv = client.get(url + "&format=csv", headers=keys["base:1"])
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    pdf = client.get(url + "&format=pdf", headers=keys[CITY])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert client.get(url, headers=keys["base:2"]).status_code == 403
    assert (
        client.get(
            "/api/v1/bases/1/execution-summary?year=1900", headers=keys["base:1"]
        ).status_code
        == 400
    )


def test_next_plan_carries_the_execution_summary(client: Any, ctx: Any) -> None:
    """National Art. 22: the year's execution summary goes with the next year's plan."""
    from ledger.registry import services as sv
    from tests.test_registry_support import plan_class

    keys = world(ctx)
    _post(client, keys, record(1), record(2))
    # A caller that cannot compute the summary (no records at hand) is refused.
    base = Principal("base:1", "base", "CN-SC-PZH", base=1)
    spec = sv.ClassSpec("N-1", "新技术", "专业", "面授", Decimal(6), date(DEMO_YEAR + 1, 4, 1),
                        date(DEMO_YEAR + 1, 4, 1), 10, Decimal(0))  # fmt: skip
    with pytest.raises(RuleViolation, match=r"plan\.execution-summary"), ctx.db.writer() as s:
        sv.submit_plan(s, ctx.log, base, 1, DEMO_YEAR + 1, [spec])
    body = {"year": DEMO_YEAR + 1, "classes": [plan_class("N-1", DEMO_YEAR + 1)]}
    r = client.post("/api/v1/registry/bases/1/plans", json=body, headers=keys["base:1"])
    assert r.status_code in (200, 201), r.text
    payload = prove(client, ctx, r.json()["log_index"], "plan.submitted")
    summary = payload["execution_summary"]
    assert summary["year"] == DEMO_YEAR and summary["trainees"] == 2
    assert summary["classes_run"] == 1 and len(summary["sha256"]) == 64
