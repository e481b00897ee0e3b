"""Annual plans through HTTP: the policy's rules for classes, review and filing, late flags,
and the service the completions feature calls (`approved_class`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ledger.registry.demo import DEMO_YEAR, seed_demo
from ledger.registry.errors import NotFound, RuleViolation
from ledger.registry.services import approved_class
from tests.test_registry_support import API, bearer, log_size, plan_class, problem, prove, this_year


def _keys(ctx: Any) -> dict[str, dict[str, str]]:
    info = seed_demo(ctx.db, ctx.log)
    return {k.principal: bearer(k.key) for k in info.keys}


@pytest.mark.parametrize(
    ("override", "rule"),
    [
        ({"category": "必修"}, "plan.class.category"),
        ({"mode": "函授"}, "plan.class.mode"),
        ({"start": "2031-12-30", "end": "2032-01-02", "hours": "6"}, "plan.class.cross-year"),
        ({"start": "2030-12-30", "end": "2031-01-01"}, "plan.class.dates"),
        ({"start": "2031-05-02", "end": "2031-05-01"}, "plan.class.dates"),
        ({"start": "2031-05-01", "end": "2031-05-02", "hours": "12.5"}, "plan.class.daily-cap"),
    ],
)
def test_class_rules_come_from_the_policy(
    client: Any, ctx: Any, override: dict[str, Any], rule: str
) -> None:
    keys = _keys(ctx)
    before = log_size(ctx)
    body = {"year": 2031, "classes": [plan_class("C-1", 2031, **override)]}
    detail = problem(
        client.post(f"{API}/bases/1/plans", json=body, headers=keys["base:1"]), 422, rule
    )["detail"]
    assert "classes[0] (C-1)" in detail
    assert log_size(ctx) == before


def test_plan_shape_errors(client: Any, ctx: Any) -> None:
    keys = _keys(ctx)
    twice = {"year": 2031, "classes": [plan_class("C-1", 2031), plan_class("C-1", 2031)]}
    problem(
        client.post(f"{API}/bases/1/plans", json=twice, headers=keys["base:1"]),
        422,
        "plan.class.code",
    )
    for bad in (
        {"hours": "0"},
        {"hours": "1.25"},
        {"fee_yuan": "-1"},
        {"fee_yuan": "1.005"},
        {"capacity": 0},
        {"code": "has space"},
    ):
        cls = {**plan_class("C-1", 2031), **bad}
        r = client.post(
            f"{API}/bases/1/plans", json={"year": 2031, "classes": [cls]}, headers=keys["base:1"]
        )
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["errors"][0]["key"].startswith("classes"), r.json()
    r = client.post(
        f"{API}/bases/1/plans", json={"year": 2031, "classes": []}, headers=keys["base:1"]
    )
    assert r.status_code == 400
    # National policy allows cross-year classes and has no daily cap: the same class passes there.
    body = {
        "year": 2031,
        "classes": [plan_class("C-1", 2031, start="2031-12-30", end="2032-01-02")],
    }
    assert client.post(f"{API}/bases/5/plans", json=body, headers=keys["base:5"]).status_code == 201


def test_only_an_operating_base_submits(client: Any, ctx: Any) -> None:
    keys = _keys(ctx)
    city = keys["authority:CN-SC-PZH"]
    body = {"year": 2031, "classes": [plan_class("C-1", 2031)]}
    for base in (3, 4):  # revoked, applied
        key = client.post(
            f"{API}/keys", json={"principal": f"base:{base}", "label": "t"}, headers=city
        ).json()["key"]
        problem(
            client.post(f"{API}/bases/{base}/plans", json=body, headers=bearer(key)),
            409,
            "plan.submit",
        )
    # Under rectification a base still runs and plans.
    assert client.post(f"{API}/bases/2/plans", json=body, headers=keys["base:2"]).status_code == 201


def test_review_workflow_and_late_flags(client: Any, ctx: Any) -> None:
    keys = _keys(ctx)
    base5, unit3 = keys["base:5"], keys["unit:3"]
    # The demo returned base 5's plan for DEMO_YEAR; a new revision may follow.
    before = client.get("/api/v1/directory/bases/5").json()["plans"]
    assert [(p["revision"], p["status"]) for p in before] == [(1, "returned")]
    assert before[0]["decision"]["reason"]
    body = {"year": DEMO_YEAR, "classes": [plan_class("GJJD-1", DEMO_YEAR, mode="网络")]}
    r = client.post(f"{API}/bases/5/plans", json=body, headers=base5)
    assert r.status_code == 201 and r.json()["revision"] == 2
    # National deadlines: 10 Dec to the unit, 31 Dec to the authority, of the year before.
    assert r.json()["management_unit_due"] == f"{DEMO_YEAR - 1}-12-10"
    assert r.json()["late_submission"] is True  # that day has passed: flagged, not refused
    assert prove(client, ctx, r.json()["log_index"], "plan.submitted")["late"] is True
    plan = r.json()["plan"]
    problem(client.post(f"{API}/bases/5/plans", json=body, headers=base5), 409, "plan.submit")
    r = client.post(f"{API}/plans/{plan}/return", json={"reason": " "}, headers=unit3)
    assert r.status_code == 400 and r.json()["errors"][0]["key"] == "reason"
    assert client.post(f"{API}/plans/{plan}/approve", json={}, headers=unit3).status_code == 201
    problem(
        client.post(f"{API}/plans/{plan}/return", json={"reason": "晚了"}, headers=unit3),
        409,
        "plan.decide",
    )
    problem(client.post(f"{API}/bases/5/plans", json=body, headers=base5), 409, "plan.submit")
    r = client.post(f"{API}/plans/{plan}/file", headers=base5)
    assert r.status_code == 201 and r.json()["late_filing"] is True
    problem(client.post(f"{API}/plans/{plan}/file", headers=base5), 409, "plan.file")

    # A plan for two years ahead is on time at every step.
    year = this_year() + 2
    r = client.post(
        f"{API}/bases/5/plans",
        json={"year": year, "classes": [plan_class("F-1", year)]},
        headers=base5,
    )
    assert r.json()["late_submission"] is False
    future = r.json()["plan"]
    client.post(f"{API}/plans/{future}/approve", json={}, headers=unit3)
    r = client.post(f"{API}/plans/{future}/file", headers=keys["unit:3"])  # the unit may file too
    assert r.status_code == 201 and r.json()["late_filing"] is False

    shown = {p["id"]: p for p in client.get("/api/v1/directory/bases/5").json()["plans"]}
    assert shown[plan]["late_submission"] and shown[plan]["late_filing"]
    assert not shown[future]["late_submission"] and shown[future]["late_filing"] is False
    page = client.get("/directory/bases/5").text
    assert "是 late" in page


def test_approved_class_is_what_completions_may_use(ctx: Any) -> None:
    seed_demo(ctx.db, ctx.log)
    with ctx.db.reader() as s:
        filed = approved_class(s, 1, f"PZXY-{DEMO_YEAR}-02", DEMO_YEAR)
        assert (filed.category, filed.mode, filed.hours, filed.fee_yuan) == (
            "专业",
            "面授",
            Decimal("24.0"),
            Decimal("1200.00"),
        )
        assert filed.start.year == filed.end.year == DEMO_YEAR and filed.capacity == 200
        assert filed.base_status == "recognised" and filed.jurisdiction == "CN-SC-PZH"
        # Approved but not yet filed counts: approval is what Art. 23 asks for.
        assert (
            approved_class(s, 2, f"ZXYY-{DEMO_YEAR}-01", DEMO_YEAR).base_status == "rectification"
        )
        # A returned plan's classes are not approved; nor are another base's classes.
        with pytest.raises(RuleViolation, match=r"^rule completion.approved-plan:"):
            approved_class(s, 5, f"GJJD-{DEMO_YEAR}-01", DEMO_YEAR)
        with pytest.raises(RuleViolation, match=r"^rule completion.class-in-plan:"):
            approved_class(s, 2, f"PZXY-{DEMO_YEAR}-02", DEMO_YEAR)
        with pytest.raises(NotFound, match=r"^rule base.exists:"):
            approved_class(s, 99, "X", DEMO_YEAR)
