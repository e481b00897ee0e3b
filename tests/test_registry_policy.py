"""Policies replaced by an authority: the upload is a ledger entry, the new version is stored
byte for byte and governs from its effective date on."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from importlib import resources
from typing import Any

from ledger.registry.demo import seed_demo
from ledger.registry.services import add_months
from tests.test_registry_support import API, bearer, log_size, problem, prove, this_year


def _doc(file: str, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("ledger.policies").joinpath(file).read_bytes())
    doc.update(changes)
    return doc


def _upload(client: Any, key: dict[str, str], body: bytes) -> Any:
    return client.post(
        f"{API}/policies", content=body, headers={**key, "Content-Type": "application/json"}
    )


def test_uploaded_policy_is_stored_published_and_used(client: Any, ctx: Any) -> None:
    keys = {k.principal: bearer(k.key) for k in seed_demo(ctx.db, ctx.log).keys}
    city = keys["authority:CN-SC-PZH"]
    body = json.dumps(
        _doc("panzhihua.json", version=2, effective_from="2026-01-01", rectification_months=6),
        ensure_ascii=False,
        indent=1,
    ).encode()
    r = _upload(client, city, body)
    assert r.status_code == 201, r.text
    entry = prove(client, ctx, r.json()["log_index"], "policy")
    assert entry["sha256"] == hashlib.sha256(body).hexdigest() == r.json()["sha256"]
    assert (entry["jurisdiction"], entry["version"], entry["by"]) == (
        "CN-SC-PZH",
        2,
        "authority:CN-SC-PZH",
    )

    view = client.get("/api/v1/directory/jurisdictions/CN-SC-PZH/policy").json()
    assert view["effective"]["version"] == 2 and view["effective"]["rectification_months"] == 6
    assert [(v["version"], v["source"]) for v in view["versions"]] == [
        (1, "shipped"),
        (2, "uploaded"),
    ]
    assert client.get("/api/v1/directory/jurisdictions/CN-SC-PZH/policy/2").content == body
    shipped = client.get("/api/v1/directory/jurisdictions/CN-SC-PZH/policy/1")
    assert shipped.status_code == 200 and json.loads(shipped.content)["version"] == 1

    # From now on rectification deadlines follow version 2.
    r = client.post(f"{API}/bases/1/rectification", json={"reason": "抽查不合格"}, headers=city)
    deadline = date.fromisoformat(r.json()["deadline"])
    assert deadline.month in {
        add_months(date.today(), 6).month,
        add_months(date.today(), 7).month,
    }
    assert deadline > add_months(date.today(), 5)


def test_policy_upload_refusals(client: Any, ctx: Any) -> None:
    keys = {k.principal: bearer(k.key) for k in seed_demo(ctx.db, ctx.log).keys}
    city, nat = keys["authority:CN-SC-PZH"], keys["authority:CN"]
    before = log_size(ctx)
    # Outside the uploader's subtree.
    problem(
        _upload(client, city, json.dumps(_doc("sichuan.json", version=2)).encode()),
        403,
        "policy.upload",
    )
    # Not a higher version.
    r = _upload(client, city, json.dumps(_doc("panzhihua.json")).encode())
    assert r.status_code == 422 and "'version'" in r.json()["detail"]
    # A misspelt rule is refused, naming the field.
    r = _upload(
        client, city, json.dumps(_doc("panzhihua.json", version=2, rectification_month=6)).encode()
    )
    assert r.status_code == 422 and "rectification_month" in r.json()["detail"]
    # Duplicate keys are refused before anything else reads the document.
    r = _upload(client, city, b'{"code": "CN-SC-PZH", "code": "CN"}')
    assert r.status_code == 400
    # A jurisdiction that does not exist yet has no policy to replace.
    doc = _doc("panzhihua.json", code="CN-SC-CD", name="成都市")
    problem(_upload(client, nat, json.dumps(doc).encode()), 404, "jurisdiction.exists")
    assert log_size(ctx) == before


def test_future_version_waits_for_its_date_and_new_jurisdictions_inherit(
    client: Any, ctx: Any
) -> None:
    keys = {k.principal: bearer(k.key) for k in seed_demo(ctx.db, ctx.log).keys}
    sichuan = keys["authority:CN-SC"]
    future = _doc(
        "panzhihua.json",
        version=2,
        effective_from=f"{this_year() + 1}-01-01",  # Beijing's year, as the service's
        rectification_months=12,
    )
    assert _upload(client, sichuan, json.dumps(future).encode()).status_code == 201
    view = client.get("/api/v1/directory/jurisdictions/CN-SC-PZH/policy").json()
    assert view["effective"]["version"] == 1 and len(view["versions"]) == 2

    r = client.post(
        f"{API}/jurisdictions", json={"code": "CN-SC-CD", "title": "成都市"}, headers=sichuan
    )
    assert r.status_code == 201
    problem(
        client.post(f"{API}/jurisdictions", json={"code": "CN-SC-CD"}, headers=sichuan),
        409,
        "jurisdiction.unique",
    )
    problem(
        client.post(f"{API}/jurisdictions", json={"code": "CN-SC-MY"}, headers=sichuan),
        422,
        "jurisdiction.title",
    )
    listed = {
        j["code"]: j for j in client.get("/api/v1/directory/jurisdictions").json()["jurisdictions"]
    }
    assert listed["CN-SC-CD"]["policy"] == {"code": "CN-SC", "version": 1}
    assert listed["CN-SC-CD"]["parent"] == "CN-SC" and listed["CN-SC-CD"]["level"] == "city"
