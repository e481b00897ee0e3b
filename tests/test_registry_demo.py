"""The demo registry and the public directory (JSON and HTML), on both databases."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.registry.demo import seed_demo
from ledger.registry.errors import RuleViolation
from ledger.registry.services import bootstrap_authority_key
from tests.test_registry_support import API, bearer, log_size, prove


def test_demo_seeds_every_state_once(client: Any, ctx: Any) -> None:
    info = seed_demo(ctx.db, ctx.log)
    assert info.seeded
    size = log_size(ctx)
    again = seed_demo(ctx.db, ctx.log)
    assert not again.seeded and again.keys == () and log_size(ctx) == size
    assert "already has data" in again.lines()[0]
    printed = "\n".join(info.lines())
    assert all(k.key in printed for k in info.keys)

    bases = {b["id"]: b for b in client.get("/api/v1/directory/bases").json()["bases"]}
    assert {name: bases[i]["status"] for name, i in info.bases.items()} == {
        "recognised": "recognised",
        "rectification": "rectification",
        "revoked": "revoked",
        "applied": "applied",
        "returned_plan": "recognised",
    }
    # Every key works and names its principal.
    for k in info.keys:
        assert client.get(f"{API}/whoami", headers=bearer(k.key)).json()["principal"] == k.principal

    hospital = client.get(f"/api/v1/directory/bases/{info.bases['rectification']}").json()
    assert hospital["rectification"]["deadline"] and not hospital["rectification"]["overdue"]
    assert hospital["latest_inspection"]["result"] == "不合格"
    assert [h["kind"] for h in hospital["status_history"]][-1] == "base.rectification"
    college = client.get(f"/api/v1/directory/bases/{info.bases['recognised']}").json()
    assert college["latest_inspection"]["result"] == "优秀"
    assert (
        college["plans"][0]["status"] == "filed"
        and len(college["fee_standards"][0]["classes"]) == 4
    )
    assert (
        prove(client, ctx, college["latest_inspection"]["log_index"], "inspection")["result"]
        == "优秀"
    )


def test_directory_filters_and_pages(client: Any, ctx: Any) -> None:
    info = seed_demo(ctx.db, ctx.log)

    def ids(**params: Any) -> set[int]:
        r = client.get("/api/v1/directory/bases", params=params)
        assert r.status_code == 200, r.text
        return {b["id"] for b in r.json()["bases"]}

    everything = ids()
    assert len(everything) == 5
    assert ids(jurisdiction="CN-SC") == everything - {info.bases["returned_plan"]}  # the subtree
    assert ids(jurisdiction="CN-S") == set()  # a prefix of a code is not a subtree
    assert ids(status="revoked") == {info.bases["revoked"]}
    assert ids(unit=2) == {info.bases["rectification"]}
    assert client.get("/api/v1/directory/bases", params={"status": "closed"}).status_code == 400
    assert client.get("/api/v1/directory/bases/999").status_code == 404
    assert client.get("/api/v1/directory/bases/1/plans/1999").status_code == 404
    units = client.get("/api/v1/directory/units", params={"jurisdiction": "CN-SC-PZH"}).json()[
        "units"
    ]
    assert [u["principal"] for u in units] == ["unit:1", "unit:2"]

    page = client.get("/directory")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text
    for b in client.get("/api/v1/directory/bases").json()["bases"]:
        assert b["title"] in page.text and f'href="/directory/bases/{b["id"]}"' in page.text
    detail = client.get(f"/directory/bases/{info.bases['recognised']}").text
    assert "收费标准" in detail and "1200.00" in detail and "优秀" in detail


def test_html_escapes_what_bases_file(client: Any, ctx: Any) -> None:
    info = seed_demo(ctx.db, ctx.log)
    key = bearer(info.key_for("base:1"))
    r = client.post(
        f"{API}/bases/1/changes",
        json={"reason": "<b>x</b>", "title": "<script>alert(1)</script>"},
        headers=key,
    )
    assert r.status_code == 201
    page = client.get("/directory/bases/1").text + client.get("/directory").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_bootstrap_rules(ctx: Any) -> None:
    with (
        ctx.db.writer() as s,
        pytest.raises(RuleViolation, match=r"^rule bootstrap\.national-only:"),
    ):
        bootstrap_authority_key(s, "CN-SC", "x")
    with ctx.db.writer() as s:
        key = bootstrap_authority_key(s, "CN", "first")  # without a log: nothing appended
    assert key.startswith("cek_") and log_size(ctx) == 0
    with ctx.db.writer() as s:
        assert bootstrap_authority_key(s, "CN", "second", log=ctx.log) != key
    assert log_size(ctx) == 1  # the key's entry; the jurisdiction already existed
