"""Share links through HTTP, on SQLite and PostgreSQL: the whole lifecycle (create, verify,
extend, expire, close) with its access log, the title-application check, QR codes, and that a
link or its management never reaches another person's data."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import urlsplit

from tests.completions_support import id_number
from tests.test_accounts_support import CITY, Clock, clock, holder, seeded, settings, sign_in
from tests.test_registry_support import bearer

__all__ = ["clock", "settings"]  # fixtures, imported for pytest


def _share(client: Any, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/me/shares", json=body, headers=auth)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    out: dict[str, Any] = r.json()
    return out


def _token(share: dict[str, Any]) -> str:
    return str(urlsplit(share["url"]).path.rsplit("/", 1)[1])


def _verify(client: Any, share: dict[str, Any]) -> dict[str, Any]:
    """The JSON and the page of a link, which must agree on the verdict."""
    token = _token(share)
    j = client.get(f"/api/v1/shares/{token}")
    assert j.status_code == 200, j.text
    assert j.headers["cache-control"] == "no-store"
    page = client.get(f"/S/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'data-verdict="{j.json()["verdict"]}"' in page.text
    assert "<script" not in page.text
    body: dict[str, Any] = j.json()
    return body


def test_share_lifecycle_with_access_log(client: Any, ctx: Any, clock: Clock) -> None:
    keys, ids = seeded(client, ctx)
    auth = holder(client, keys, 1)
    materials = ids["p1"][0]
    share = _share(client, auth, scope="record", record=materials, days=7, label="给单位人事处")
    assert share["status"] == "active" and share["accesses"] == 0
    assert re.fullmatch(r"HTTP://TESTSERVER/S/[A-Z2-7]{32}", share["url"])
    assert share["label"] == "给单位人事处" and share["record"] == materials
    # A verifier opens it: the record, its status, the named checks; masked holder.
    report = _verify(client, share)
    assert report["verdict"] == "valid" and report["valid"] is True
    (shown,) = report["records"]
    assert shown["record"] == materials and shown["status"] == "current"
    assert shown["verdict"] == "valid" and shown["hours"] == "24.0"
    assert [c["id"] for c in shown["checks"]] == [
        "ledger-inclusion",
        "record-status",
        "base-recognised",
    ]
    assert all(c["ok"] for c in shown["checks"])
    assert report["holder"] == {
        "name": "张*甲",
        "id_number": "5****************" + id_number(1)[-1],
    }
    page = client.get(f"/S/{_token(share)}").text
    assert "张*甲" in page and "张二甲" not in page and id_number(1) not in page
    assert client.get(f"/s/{_token(share).lower()}?lang=en").status_code == 200
    # The holder sees when it was opened (4 visits so far), through which door, never an IP.
    detail = client.get(f"/api/v1/me/shares/{share['id']}", headers=auth).json()
    log = detail["access_log"]
    assert [(a["via"], a["outcome"]) for a in log] == [
        ("api", "active"), ("page", "active"), ("page", "active"), ("page", "active"),
    ]  # fmt: skip
    assert all(re.fullmatch(r"[0-9a-f]{12}", a["client"]) for a in log)
    assert len({a["client"] for a in log}) == 1  # one verifier
    assert "testclient" not in str(detail) and detail["accesses"] == 4
    # A correction later: the link shows the current version; a revocation shows as such.
    fix = client.post(f"/api/v1/completions/{materials}/corrections",
                      json={"reason": "学时有误", "changes": {"hours": "20"}}, headers=keys["base:1"])  # fmt: skip
    assert fix.status_code == 201
    (shown,) = _verify(client, share)["records"]
    assert shown["record"] == fix.json()["record"] and shown["versions"] == 2
    assert shown["hours"] == "20.0"
    client.post(f"/api/v1/completions/{fix.json()['record']}/revocation",
                json={"reason_code": "error", "reason": "登记错误"}, headers=keys[CITY])  # fmt: skip
    (shown,) = _verify(client, share)["records"]
    assert shown["status"] == "revoked" and shown["verdict"] == "revoked", shown["checks"]
    # Expiry: after 7 days the link says so and shows nothing.
    clock.advance(days=7, seconds=1)
    expired = _verify(client, share)
    assert expired["verdict"] == "expired" and expired["valid"] is False
    assert expired["records"] == [] and expired["holder"] is None and expired["compliance"] == []
    assert materials not in str(expired)
    # Extending an expired link reopens it (days counted from now); a week later the holder
    # signs in again.
    auth = bearer(sign_in(client, 1).json()["token"])
    r = client.post(f"/api/v1/me/shares/{share['id']}/extend", json={"days": 30}, headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert _verify(client, share)["verdict"] == "valid"
    # At most 180 days from now; 7–180 days at a time.
    r = client.post(f"/api/v1/me/shares/{share['id']}/extend", json={"days": 180}, headers=auth)
    assert r.status_code == 422 and "at most 150" in r.text
    r = client.post(f"/api/v1/me/shares/{share['id']}/extend", json={"days": 150}, headers=auth)
    assert r.status_code == 200, r.text
    # Closing is for good.
    r = client.post(f"/api/v1/me/shares/{share['id']}/close", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    closed = _verify(client, share)
    assert closed["verdict"] == "closed" and closed["records"] == []
    assert client.post(f"/api/v1/me/shares/{share['id']}/close", headers=auth).status_code == 200
    r = client.post(f"/api/v1/me/shares/{share['id']}/extend", json={"days": 30}, headers=auth)
    assert r.status_code == 409
    outcomes = [a["outcome"] for a in
                client.get(f"/api/v1/me/shares/{share['id']}", headers=auth).json()["access_log"]]  # fmt: skip
    assert outcomes[-4:] == ["active", "active", "closed", "closed"]
    assert "expired" in outcomes


def test_unknown_and_malformed_links(client: Any, ctx: Any) -> None:
    for token in ("A" * 32, "not-a-token", "A" * 500, "../../etc/passwd"):
        r = client.get(f"/api/v1/shares/{token}")
        assert r.status_code in (200, 404), r.text
        if r.status_code == 200:
            assert r.json()["verdict"] == "unknown" and r.json()["records"] == []
    page = client.get("/S/" + "B" * 32)
    assert page.status_code == 200 and 'data-verdict="unknown"' in page.text


def test_year_transcript_and_title_check(client: Any, ctx: Any, clock: Clock) -> None:
    keys, ids = seeded(client, ctx)
    auth = holder(client, keys, 1)
    year = _verify(client, _share(client, auth, scope="year", year=2026, days=30))
    assert year["verdict"] == "valid" and len(year["records"]) == 3
    (c,) = year["compliance"]
    assert c["years"] == [2026] and c["total"] == "36" and c["met"] is False
    assert _verify(client, _share(client, auth, scope="year", year=2025, days=30))["records"] == []
    whole = _verify(client, _share(client, auth, scope="transcript", days=90))
    assert len(whole["records"]) == 3 and [c["years"] for c in whole["compliance"]] == [[2026]]
    # The committee's check: the last three years up to 2026, per year met or not.
    check = _share(client, auth, scope="title-check", years=3, through=2026, days=60)
    assert check["years"] == [2024, 2025, 2026]
    report = _verify(client, check)
    assert [c["years"] for c in report["compliance"]] == [[2024], [2025], [2026]]
    assert [c["met"] for c in report["compliance"]] == [False, False, False]
    assert report["compliance"][0]["summary"]["zh"].startswith("2024年：0/90 学时 ✗（差 90）")
    page = client.get(f"/S/{_token(check)}").text
    assert "职称评审周期验证" in page and "2024年：0/90" in page and "未达标" in page
    assert "title-application check" in client.get(f"/S/{_token(check)}?lang=en").text
    # Default: up to last year.
    default = _share(client, auth, scope="title-check", years=2, days=30)
    assert len(default["years"]) == 2
    # Bad requests.
    for body, status in (
        ({"scope": "record", "days": 30}, 422),
        ({"scope": "record", "record": ids["p1"][0], "days": 6}, 422),
        ({"scope": "record", "record": ids["p1"][0], "days": 181}, 422),
        ({"scope": "year", "days": 30}, 422),
        ({"scope": "title-check", "years": 11, "days": 30}, 422),
        ({"scope": "everything", "days": 30}, 400),
        ({"scope": "year", "year": 2026, "days": 30, "id_number": id_number(1)}, 400),
    ):
        r = client.post("/api/v1/me/shares", json=body, headers=auth)
        assert r.status_code == status, (body, r.text)
    mine = client.get("/api/v1/me/shares", headers=auth).json()
    assert len(mine) == 5 and all(s["status"] == "active" for s in mine)


def test_qr_codes_open_the_link(client: Any, ctx: Any, clock: Clock) -> None:
    import zxingcpp
    from PIL import Image

    keys, _ = seeded(client, ctx)
    auth = holder(client, keys, 1)
    share = _share(client, auth, scope="transcript", days=30)
    svg = client.get(f"/api/v1/me/shares/{share['id']}/qr", headers=auth)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.content.lstrip().startswith(b"<?xml") or b"<svg" in svg.content[:200]
    png = client.get(f"/api/v1/me/shares/{share['id']}/qr?format=png", headers=auth)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    assert found.text == share["url"]
    assert client.get(urlsplit(found.text).path).status_code == 200


def test_links_of_another_person(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    one = holder(client, keys, 1)
    two = holder(client, keys, 2)
    share = _share(client, one, scope="transcript", days=30)
    token = _token(share)
    # Person 2 cannot see, extend, close or draw person 1's link — by id or by token: 404.
    for ref in (share["id"], token, "sh_doesnotexist"):
        for method, path, body in (
            ("get", f"/api/v1/me/shares/{ref}", None),
            ("get", f"/api/v1/me/shares/{ref}/qr", None),
            ("post", f"/api/v1/me/shares/{ref}/extend", {"days": 30}),
            ("post", f"/api/v1/me/shares/{ref}/close", None),
        ):
            kwargs: dict[str, Any] = {"headers": two}
            if body is not None:
                kwargs["json"] = body
            r = getattr(client, method)(path, **kwargs)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["code"] == "not-found"
    assert client.get("/api/v1/me/shares", headers=two).json() == []
    # Untouched: still open, and the access log holds no visit by person 2's management calls.
    detail = client.get(f"/api/v1/me/shares/{share['id']}", headers=one).json()
    assert detail["status"] == "active" and detail["access_log"] == []
    # Person 2's own transcript link shows only person 2's records.
    theirs = _verify(client, _share(client, two, scope="transcript", days=30))
    mine = _verify(client, share)
    assert {r["record"] for r in theirs["records"]}.isdisjoint(r["record"] for r in mine["records"])
    assert len(theirs["records"]) == 1 and len(mine["records"]) == 3
