"""A base's whole life through HTTP, on SQLite and PostgreSQL: every act authenticated, every
refusal a problem that names its rule, every act in the ledger with a verified inclusion proof."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from ledger.registry.errors import RuleViolation
from ledger.registry.services import add_months, approved_class
from ledger.storage.log import Log
from tests.test_registry_support import (
    API,
    application,
    bearer,
    contact,
    log_size,
    national_key,
    plan_class,
    problem,
    prove,
    this_year,
)


def _key(client: Any, issuer: dict[str, str], principal: str) -> dict[str, str]:
    r = client.post(f"{API}/keys", json={"principal": principal, "label": "t"}, headers=issuer)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["key"].startswith("cek_") and len(body["key"]) >= 4 + 43
    return bearer(body["key"])


def _city_world(client: Any, ctx: Any) -> dict[str, Any]:
    """National → Sichuan → Panzhihua, two units under Panzhihua, keys for all of them."""
    nat = bearer(national_key(ctx))
    for code, title in (("CN-SC", "四川省"), ("CN-SC-PZH", "攀枝花市")):
        r = client.post(f"{API}/jurisdictions", json={"code": code}, headers=nat)
        assert r.status_code == 201, r.text
        assert r.json()["title"] == title  # taken from the shipped policy
        payload = prove(client, ctx, r.json()["log_index"], "jurisdiction")
        assert payload["jurisdiction"] == code and payload["by"] == "authority:CN"
    city = _key(client, nat, "authority:CN-SC-PZH")
    units = []
    for title in ("东区人力资源和社会保障局", "市卫生健康委员会"):
        r = client.post(
            f"{API}/units", json={"jurisdiction": "CN-SC-PZH", "title": title}, headers=city
        )
        assert r.status_code == 201, r.text
        payload = prove(client, ctx, r.json()["log_index"], "jurisdiction")
        assert payload["event"] == "management_unit.registered"
        units.append(r.json()["id"])
    return {
        "national": nat,
        "city": city,
        "u1": units[0],
        "u2": units[1],
        "k_u1": _key(client, city, f"unit:{units[0]}"),
        "k_u2": _key(client, city, f"unit:{units[1]}"),
    }


def test_base_lifecycle_end_to_end(client: Any, ctx: Any) -> None:
    w = _city_world(client, ctx)
    city, k_u1, k_u2 = w["city"], w["k_u1"], w["k_u2"]

    # Application, by the institution's management unit; another unit may not file it.
    app_body = application(1, "CN-SC-PZH", w["u1"])
    r = client.post(f"{API}/bases", json=app_body, headers=k_u2)
    problem(r, 403, "base.apply")
    r = client.post(f"{API}/bases", json=app_body, headers=k_u1)
    assert r.status_code == 201, r.text
    base = r.json()["base"]
    applied = prove(client, ctx, r.json()["log_index"], "base.applied")
    assert applied["uscc"] == app_body["uscc"] and applied["by"] == f"unit:{w['u1']}"
    assert "contact_sha256" in applied and app_body["contact"]["phone"] not in str(applied)

    # A second open application of the same institution is a conflict.
    problem(client.post(f"{API}/bases", json=app_body, headers=k_u1), 409, "base.apply.duplicate")
    # A unit may not recognise; the authority does.
    problem(
        client.post(f"{API}/bases/{base}/recognise", json={"reason": "x"}, headers=k_u1),
        403,
        "base.decide",
    )
    r = client.post(f"{API}/bases/{base}/recognise", json={"reason": "专家评审通过"}, headers=city)
    assert r.status_code == 201 and r.json()["status"] == "recognised"
    rec = prove(client, ctx, r.json()["log_index"], "base.recognised")
    assert rec == {
        **rec,
        "from": "applied",
        "to": "recognised",
        "by": "authority:CN-SC-PZH",
        "reason": "专家评审通过",
    }
    k_base = _key(client, city, f"base:{base}")

    # Name and contact changes: filed by the base itself, never by a unit that does not manage it.
    change = {"reason": "更换办公地址", "contact": contact(9)}
    problem(
        client.post(f"{API}/bases/{base}/changes", json=change, headers=k_u2), 403, "base.change"
    )
    r = client.post(f"{API}/bases/{base}/changes", json=change, headers=k_base)
    assert r.status_code == 201, r.text
    changed = prove(client, ctx, r.json()["log_index"], "base.changed")
    assert (
        changed["by"] == f"base:{base}"
        and "contact_sha256" in changed
        and "base_name" not in changed
    )
    r = client.post(
        f"{API}/bases/{base}/changes",
        json={"reason": "更名", "title": "测试基地一号"},
        headers=k_base,
    )
    assert prove(client, ctx, r.json()["log_index"], "base.changed")["base_name"] == "测试基地一号"
    problem(
        client.post(f"{API}/bases/{base}/changes", json=change, headers=k_base),
        422,
        "base.change.empty",
    )

    # The annual plan: the base submits, the wrong unit and the authority may not approve.
    year = this_year() + 1
    plan_body = {
        "year": year,
        "classes": [
            plan_class("A-01", year),
            plan_class("A-02", year, category="公需", fee_yuan="0"),
        ],
    }
    r = client.post(f"{API}/bases/{base}/plans", json=plan_body, headers=k_base)
    assert r.status_code == 201, r.text
    plan = r.json()["plan"]
    submitted = prove(client, ctx, r.json()["log_index"], "plan.submitted")
    assert submitted["sha256"] == r.json()["sha256"] and submitted["classes"] == 2
    problem(client.post(f"{API}/plans/{plan}/approve", json={}, headers=k_u2), 403, "plan.decide")
    problem(client.post(f"{API}/plans/{plan}/approve", json={}, headers=city), 403, "plan.decide")
    problem(client.post(f"{API}/plans/{plan}/file", headers=k_base), 409, "plan.file")
    r = client.post(f"{API}/plans/{plan}/approve", json={"reason": "同意"}, headers=k_u1)
    assert r.status_code == 201 and r.json()["status"] == "approved"
    assert prove(client, ctx, r.json()["log_index"], "plan.approved")["by"] == f"unit:{w['u1']}"
    r = client.post(f"{API}/plans/{plan}/file", headers=k_base)
    assert r.status_code == 201 and r.json()["status"] == "filed"
    filed = prove(client, ctx, r.json()["log_index"], "plan.filed")
    assert filed["authority"] == "CN-SC-PZH" and filed["sha256"] == submitted["sha256"]

    # The public plan document hashes to what the ledger recorded.
    import hashlib

    doc = client.get(f"/api/v1/directory/bases/{base}/plans/{year}").json()["plans"][0]
    assert hashlib.sha256(doc["document_canonical"].encode()).hexdigest() == submitted["sha256"]

    # What the completions feature will ask: only classes of the approved plan.
    with ctx.db.reader() as s:
        c = approved_class(s, base, "A-01", year)
        assert (c.category, c.mode, str(c.hours), str(c.fee_yuan)) == (
            "专业",
            "面授",
            "12.5",
            "680.00",
        )
        with pytest.raises(RuleViolation, match=r"^rule completion.class-in-plan:"):
            approved_class(s, base, "NOT-PLANNED", year)
        with pytest.raises(RuleViolation, match=r"^rule completion.approved-plan:"):
            approved_class(s, base, "A-01", year + 1)

    # Inspection, then rectification with the policy's default deadline (Panzhihua: 3 months).
    r = client.post(
        f"{API}/bases/{base}/inspections",
        json={"year": this_year(), "result": "不合格", "notes": "培训登记管理不规范"},
        headers=k_u1,
    )
    assert r.status_code == 201, r.text
    assert prove(client, ctx, r.json()["log_index"], "inspection")["result"] == "不合格"
    problem(
        client.post(f"{API}/bases/{base}/reinstate", json={"reason": "x"}, headers=city),
        409,
        "base.lifecycle",
    )
    r = client.post(
        f"{API}/bases/{base}/rectification", json={"reason": "考核不合格"}, headers=city
    )
    assert r.status_code == 201, r.text
    deadline = date.fromisoformat(r.json()["deadline"])
    today = date.today()
    assert deadline in {add_months(today + timedelta(days=d), 3) for d in (-1, 0, 1)}
    assert (
        prove(client, ctx, r.json()["log_index"], "base.rectification")["deadline"]
        == r.json()["deadline"]
    )
    r = client.post(f"{API}/bases/{base}/reinstate", json={"reason": "整改合格"}, headers=city)
    assert r.status_code == 201 and r.json()["status"] == "recognised"
    later = (today + timedelta(days=30)).isoformat()
    r = client.post(
        f"{API}/bases/{base}/rectification",
        json={"reason": "再次抽查不合格", "deadline": later},
        headers=city,
    )
    assert r.json()["deadline"] == later

    # Revocation bars the institution for ever; a revoked base cannot be recognised again.
    r = client.post(f"{API}/bases/{base}/revoke", json={"reason": "整改期满仍不合格"}, headers=city)
    assert r.status_code == 201, r.text
    revoked = prove(client, ctx, r.json()["log_index"], "base.revoked")
    assert revoked["bars_institution"] is True and revoked["from"] == "rectification"
    problem(
        client.post(f"{API}/bases/{base}/recognise", json={"reason": "x"}, headers=city),
        409,
        "base.lifecycle",
    )
    problem(
        client.post(f"{API}/bases/{base}/changes", json=change, headers=k_base), 409, "base.change"
    )
    barred = problem(
        client.post(f"{API}/bases", json=app_body, headers=k_u1), 422, "base.apply.barred"
    )
    assert barred["code"] == "institution-barred" and app_body["uscc"] in barred["detail"]

    # The public directory: status, units, contact, fee standards, inspection, history.
    d = client.get(f"/api/v1/directory/bases/{base}").json()
    assert d["status"] == "revoked" and d["title"] == "测试基地一号"
    assert d["management_unit"]["id"] == w["u1"] and d["contact"] == contact(9)
    assert d["latest_inspection"]["result"] == "不合格"
    assert {c["code"]: c["fee_yuan"] for c in d["fee_standards"][0]["classes"]} == {
        "A-01": "680.00",
        "A-02": "0.00",
    }
    kinds = [h["kind"] for h in d["status_history"]]
    assert kinds == [
        "base.applied",
        "base.recognised",
        "base.changed",
        "base.changed",
        "base.rectification",
        "base.reinstated",
        "base.rectification",
        "base.revoked",
    ]
    for h in d["status_history"]:
        payload = prove(client, ctx, h["log_index"], h["kind"])
        assert payload["by"] == h["by"] and payload["reason"] == h["reason"]
    page = client.get(f"/directory/bases/{base}")
    assert page.status_code == 200 and "测试基地一号" in page.text and "已撤销" in page.text

    # Nothing personal in the ledger: the contact block entered only as a digest.
    with ctx.db.reader() as s:
        bodies = b"".join(Log.entries(s, 0, Log.size(s))).decode()
    assert contact(9)["phone"] not in bodies and contact(1)["phone"] not in bodies


def test_rejection_bars_only_when_the_application_was_falsified(client: Any, ctx: Any) -> None:
    w = _city_world(client, ctx)
    plain, cheat = application(1, "CN-SC-PZH", w["u1"]), application(2, "CN-SC-PZH", w["u1"])
    ids = [
        client.post(f"{API}/bases", json=a, headers=w["k_u1"]).json()["base"]
        for a in (plain, cheat)
    ]
    r = client.post(
        f"{API}/bases/{ids[0]}/reject", json={"reason": "培训规模不足"}, headers=w["city"]
    )
    assert prove(client, ctx, r.json()["log_index"], "base.rejected")["bars_institution"] is False
    r = client.post(
        f"{API}/bases/{ids[1]}/reject",
        json={"reason": "申报材料弄虚作假", "fraud": True},
        headers=w["city"],
    )
    assert prove(client, ctx, r.json()["log_index"], "base.rejected")["bars_institution"] is True
    problem(
        client.post(f"{API}/bases/{ids[0]}/recognise", json={"reason": "x"}, headers=w["city"]),
        409,
        "base.lifecycle",
    )
    # A plain rejection leaves the door open; a falsified application closes it.
    assert client.post(f"{API}/bases", json=plain, headers=w["k_u1"]).status_code == 201
    problem(client.post(f"{API}/bases", json=cheat, headers=w["k_u1"]), 422, "base.apply.barred")


def test_rectification_deadline_rules(client: Any, ctx: Any) -> None:
    """The national policy fixes no rectification period: the authority must give one."""
    nat = bearer(national_key(ctx))
    unit = client.post(
        f"{API}/units", json={"jurisdiction": "CN", "title": "某部人事司"}, headers=nat
    ).json()["id"]
    base = client.post(f"{API}/bases", json=application(3, "CN", unit), headers=nat).json()["base"]
    client.post(f"{API}/bases/{base}/recognise", json={"reason": "通过"}, headers=nat)
    before = log_size(ctx)
    body = problem(
        client.post(f"{API}/bases/{base}/rectification", json={"reason": "x"}, headers=nat),
        422,
        "base.rectification.deadline",
    )
    assert "rectification_months is null" in body["detail"]
    past = (date.today() - timedelta(days=1)).isoformat()
    problem(
        client.post(
            f"{API}/bases/{base}/rectification", json={"reason": "x", "deadline": past}, headers=nat
        ),
        422,
        "base.rectification.deadline",
    )
    assert log_size(ctx) == before  # refusals append nothing
    soon = (date.today() + timedelta(days=90)).isoformat()
    r = client.post(
        f"{API}/bases/{base}/rectification", json={"reason": "x", "deadline": soon}, headers=nat
    )
    assert r.status_code == 201 and r.json()["deadline"] == soon


def test_application_rules(client: Any, ctx: Any) -> None:
    w = _city_world(client, ctx)
    # A unit registered at the national level does not recommend a Panzhihua base.
    r = client.post(
        f"{API}/units", json={"jurisdiction": "CN", "title": "某部人事司"}, headers=w["national"]
    )
    national_unit = r.json()["id"]
    body = application(4, "CN-SC-PZH", national_unit)
    problem(client.post(f"{API}/bases", json=body, headers=w["national"]), 422, "base.apply.unit")
    problem(
        client.post(f"{API}/bases", json=application(4, "CN-SC-PZH", 999), headers=w["national"]),
        404,
        "unit.exists",
    )
    problem(
        client.post(f"{API}/bases/999/recognise", json={"reason": "x"}, headers=w["city"]),
        404,
        "base.exists",
    )
    # Bad input is a 400 naming the field.
    bad = {**application(4, "CN-SC-PZH", w["u1"]), "uscc": "91510400MA000000X1"}
    r = client.post(f"{API}/bases", json=bad, headers=w["k_u1"])
    assert r.status_code == 400 and r.json()["errors"][0]["key"] == "uscc"
    r = client.post(
        f"{API}/bases", json={**application(4, "CN-SC-PZH", w["u1"]), "extra": 1}, headers=w["k_u1"]
    )
    assert r.status_code == 400 and r.json()["errors"][0]["key"] == "extra"


def test_keys_unauthenticated_and_revoked(client: Any, ctx: Any) -> None:
    w = _city_world(client, ctx)
    before = log_size(ctx)
    for headers in (
        {},
        {"Authorization": "Bearer cek_unknown"},
        {"Authorization": "Basic eDp5"},
        bearer("x" * 300),
    ):
        r = client.post(
            f"{API}/units", json={"jurisdiction": "CN-SC-PZH", "title": "x"}, headers=headers
        )
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"].startswith("application/problem+json")
    assert log_size(ctx) == before

    r = client.post(
        f"{API}/keys", json={"principal": f"unit:{w['u1']}", "label": "spare"}, headers=w["city"]
    )
    issued = r.json()
    payload = prove(client, ctx, issued["log_index"], "principal.key")
    assert payload["key"] == issued["key_id"] and issued["key"] not in str(payload)
    assert (
        client.get(f"{API}/whoami", headers=bearer(issued["key"])).json()["principal"]
        == f"unit:{w['u1']}"
    )
    # Only a hash is stored.
    from ledger.registry.models import ApiKey

    with ctx.db.reader() as s:
        row = s.get(ApiKey, issued["key_id"])
        assert (
            row is not None
            and issued["key"].encode() not in bytes(row.sha256)
            and len(row.sha256) == 32
        )
    # Units do not issue or revoke keys; authorities do not issue keys for their own office.
    problem(
        client.post(
            f"{API}/keys", json={"principal": f"unit:{w['u2']}", "label": "x"}, headers=w["k_u1"]
        ),
        403,
        "key.create",
    )
    problem(
        client.post(
            f"{API}/keys",
            json={"principal": "authority:CN-SC-PZH", "label": "x"},
            headers=w["city"],
        ),
        403,
        "key.create",
    )
    problem(
        client.post(
            f"{API}/keys", json={"principal": "authority:CN-SC", "label": "x"}, headers=w["city"]
        ),
        403,
        "key.create",
    )
    problem(
        client.post(f"{API}/keys", json={"principal": "unit:999", "label": "x"}, headers=w["city"]),
        404,
        "principal.exists",
    )
    r = client.post(f"{API}/keys/{issued['key_id']}/revoke", headers=w["city"])
    assert r.status_code == 201
    assert prove(client, ctx, r.json()["log_index"], "principal.key")["event"] == "key.revoked"
    assert client.get(f"{API}/whoami", headers=bearer(issued["key"])).status_code == 401
    problem(
        client.post(f"{API}/keys/{issued['key_id']}/revoke", headers=w["city"]), 409, "key.revoke"
    )
