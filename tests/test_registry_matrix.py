"""The authorisation matrix: every principal kind × every registry write, on both databases.

The world is the demo registry (``seed_demo``) plus an authority of an unrelated province.  For
each write the allowed principals are listed; everyone else must get 403 — before the allowed
calls change the state, and again after — and a refusal must append nothing.  The allowed
principals must never get 401/403 (they may meet a 409/422 once an earlier allowed call has
changed the state), and the first of them must succeed.  A last check makes sure the matrix
names every write route the app has, so a new route cannot slip in untested.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ledger.registry.auth import Principal
from ledger.registry.demo import DEMO_YEAR, DemoInfo, seed_demo
from ledger.registry.services import create_jurisdiction, create_key
from tests.test_registry_support import API, application, bearer, log_size, plan_class, problem

NAT, SC, PZH, GD = "authority:CN", "authority:CN-SC", "authority:CN-SC-PZH", "authority:CN-GD"
# Demo units: 1 manages bases 1, 3, 4 (Panzhihua); 2 manages base 2; 3 manages base 5 (national).
U1, U2, U3 = "unit:1", "unit:2", "unit:3"
B1, B2, B5 = "base:1", "base:2", "base:5"
EVERYONE = (NAT, SC, PZH, GD, U1, U2, U3, B1, B2, B5)
PZH_AUTHORITIES = (NAT, SC, PZH)


def _world(ctx: Any) -> dict[str, str]:
    info: DemoInfo = seed_demo(ctx.db, ctx.log)
    keys = {k.principal: k.key for k in info.keys}
    national = Principal(NAT, "authority", "CN")
    with ctx.db.writer() as s:
        create_jurisdiction(s, ctx.log, national, "CN-GD", "广东省")
        keys[GD] = create_key(s, ctx.log, national, GD, "outsider").key
    return keys


def _policy_v2() -> bytes:
    doc = json.loads(resources.files("ledger.policies").joinpath("panzhihua.json").read_bytes())
    doc["version"] = 2
    return json.dumps(doc, ensure_ascii=False).encode()


def _submitted_plan(client: Any, keys: dict[str, str], year: int) -> int:
    body = {"year": year, "classes": [plan_class("M-01", year)]}
    r = client.post(f"{API}/bases/1/plans", json=body, headers=bearer(keys[B1]))
    assert r.status_code == 201, r.text
    return int(r.json()["plan"])


def test_authorisation_matrix(client: Any, ctx: Any) -> None:
    keys = _world(ctx)
    approve_target = _submitted_plan(client, keys, DEMO_YEAR + 1)
    return_target = _submitted_plan(client, keys, DEMO_YEAR + 2)
    hospital_plan = client.get("/api/v1/directory/bases/2").json()["plans"][0]["id"]
    spare = client.post(
        f"{API}/keys", json={"principal": B1, "label": "spare"}, headers=bearer(keys[NAT])
    )
    spare_key_id = spare.json()["key_id"]
    applied_base = 4
    r = client.post(f"{API}/bases", json=application(8, "CN-SC-PZH", 1), headers=bearer(keys[U1]))
    rejected_base = r.json()["base"]

    # (rule, route, path, json or raw body, allowed principals)
    matrix: list[tuple[str, str, str, Any, tuple[str, ...]]] = [
        (
            "jurisdiction.create",
            "/jurisdictions",
            "/jurisdictions",
            {"code": "CN-SC-CD", "title": "成都市"},
            (NAT, SC),
        ),
        ("policy.upload", "/policies", "/policies", _policy_v2(), PZH_AUTHORITIES),
        (
            "unit.register",
            "/units",
            "/units",
            {"jurisdiction": "CN-SC-PZH", "title": "新单位"},
            PZH_AUTHORITIES,
        ),
        ("base.apply", "/bases", "/bases", application(7, "CN-SC-PZH", 1), (*PZH_AUTHORITIES, U1)),
        (
            "base.decide",
            "/bases/{base_id}/recognise",
            f"/bases/{applied_base}/recognise",
            {"reason": "r"},
            PZH_AUTHORITIES,
        ),
        (
            "base.decide",
            "/bases/{base_id}/reject",
            f"/bases/{rejected_base}/reject",
            {"reason": "r"},
            PZH_AUTHORITIES,
        ),
        (
            "base.decide",
            "/bases/{base_id}/rectification",
            "/bases/1/rectification",
            {"reason": "r"},
            PZH_AUTHORITIES,
        ),
        (
            "base.decide",
            "/bases/{base_id}/reinstate",
            "/bases/2/reinstate",
            {"reason": "r"},
            PZH_AUTHORITIES,
        ),
        (
            "base.change",
            "/bases/{base_id}/changes",
            "/bases/1/changes",
            {"reason": "r", "title": "新名称"},
            (*PZH_AUTHORITIES, U1, B1),
        ),
        (
            "plan.submit",
            "/bases/{base_id}/plans",
            "/bases/1/plans",
            {"year": DEMO_YEAR + 3, "classes": [plan_class("X-1", DEMO_YEAR + 3)]},
            (B1,),
        ),
        ("plan.decide", "/plans/{plan_id}/approve", f"/plans/{approve_target}/approve", {}, (U1,)),
        (
            "plan.decide",
            "/plans/{plan_id}/return",
            f"/plans/{return_target}/return",
            {"reason": "r"},
            (U1,),
        ),
        ("plan.file", "/plans/{plan_id}/file", f"/plans/{hospital_plan}/file", None, (U2, B2)),
        (
            "inspection.record",
            "/bases/{base_id}/inspections",
            "/bases/1/inspections",
            {"year": DEMO_YEAR, "result": "合格"},
            (*PZH_AUTHORITIES, U1),
        ),
        (
            "base.decide",
            "/bases/{base_id}/revoke",
            "/bases/1/revoke",
            {"reason": "r"},
            PZH_AUTHORITIES,
        ),
        ("key.create", "/keys", "/keys", {"principal": B1, "label": "k"}, PZH_AUTHORITIES),
        (
            "key.revoke",
            "/keys/{key_id}/revoke",
            f"/keys/{spare_key_id}/revoke",
            None,
            PZH_AUTHORITIES,
        ),
    ]

    def call(who: str, path: str, body: Any) -> Any:
        headers = bearer(keys[who])
        if isinstance(body, bytes):
            return client.post(
                API + path, content=body, headers={**headers, "Content-Type": "application/json"}
            )
        return (
            client.post(API + path, json=body, headers=headers)
            if body is not None
            else client.post(API + path, headers=headers)
        )

    def denied_everywhere(
        rule: str, name: str, path: str, body: Any, allowed: tuple[str, ...]
    ) -> None:
        for who in EVERYONE:
            if who in allowed:
                continue
            before = log_size(ctx)
            r = call(who, path, body)
            assert r.status_code == 403, (
                f"{who} on {name}: expected 403, got {r.status_code} {r.text}"
            )
            problem(r, 403, rule)
            assert log_size(ctx) == before, f"{who} on {name}: a refusal appended to the log"

    for rule, name, path, body, allowed in matrix:
        denied_everywhere(rule, name, path, body, allowed)
        for n, who in enumerate(allowed):
            r = call(who, path, body)
            assert r.status_code not in (401, 403), (
                f"{who} on {name}: unexpectedly refused: {r.text}"
            )
            if n == 0:
                assert r.status_code == 201, f"{who} on {name}: {r.text}"
            else:
                assert r.status_code in (201, 409, 422), f"{who} on {name}: {r.text}"
        # Permission is checked before state: after the state changed, still 403.
        denied_everywhere(rule, name, path, body, allowed)

    routes = {
        path.removeprefix(API)
        for route in client.app.routes
        for path in [route.path_format]
        if path.startswith(API) and "POST" in route.methods
    }
    assert routes == {name for _, name, *_ in matrix}, "every registry write is in the matrix"


def test_refusals_name_the_rule(client: Any, ctx: Any) -> None:
    keys = _world(ctx)
    # A unit acting on a base it does not manage.
    body = problem(
        client.post(
            f"{API}/bases/1/inspections",
            json={"year": DEMO_YEAR, "result": "合格"},
            headers=bearer(keys[U2]),
        ),
        403,
        "inspection.record",
    )
    assert (
        "base:1" in body["detail"]
        and "unit:2" in body["detail"]
        and body["code"] == "permission-denied"
    )
    # An authority outside its subtree.
    body = problem(
        client.post(f"{API}/bases/1/revoke", json={"reason": "x"}, headers=bearer(keys[GD])),
        403,
        "base.decide",
    )
    assert "outside the subtree of authority:CN-GD" in body["detail"]
    # A base acting on another base.
    problem(
        client.post(
            f"{API}/bases/2/changes", json={"reason": "x", "title": "y"}, headers=bearer(keys[B1])
        ),
        403,
        "base.change",
    )
