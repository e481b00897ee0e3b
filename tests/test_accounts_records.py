"""A holder's own records through HTTP, on SQLite and PostgreSQL: history, compliance,
downloads, and that nobody ever sees another person's records."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from ledger.completions.models import IssuedDocument
from tests.test_accounts_support import CITY, Clock, clock, history, holder, seeded, settings

__all__ = ["clock", "settings"]  # fixtures, imported for pytest


def test_my_records_with_history_and_compliance(client: Any, ctx: Any, clock: Clock) -> None:
    keys, ids = seeded(client, ctx)
    corrected, revoked = history(client, keys, ids["p1"])
    auth = holder(client, keys, 1)
    r = client.get("/api/v1/me/records", headers=auth)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    by_original = {c["original"]: c for c in body["records"]}
    assert set(by_original) == set(ids["p1"])  # exactly person 1's three records
    materials = by_original[ids["p1"][0]]
    assert materials["record"] == corrected and materials["status"] == "current"
    assert materials["hours"] == "20.0" and materials["class_title"]
    assert [v["status"] for v in materials["versions"]] == ["superseded", "current"]
    assert materials["versions"][1]["reason"] == "学时登记有误"
    # Who posted each version: the batch's poster for the original, the corrector after.
    assert [v["posted_by"] for v in materials["versions"]] == ["base:1", "base:1"]
    forum = by_original[revoked]
    assert forum["status"] == "revoked"
    assert forum["versions"][-1]["revocation"]["reason_code"] == "fraud"
    # 2026: materials 20 (专业) + ethics 6 (公需); the revoked forum record does not count.
    (year,) = body["compliance"]
    assert year["years"] == [2026] and year["met"] is False
    assert year["total"] == "26" and year["required"] == "90" and year["shortfall"] == "64"
    assert year["summary"]["zh"].startswith("2026年：26/90 学时 ✗（差 64）")
    assert "公需 6 < 30" in year["summary"]["zh"] and "专业 20 < 60" in year["summary"]["zh"]
    assert "NOT met" in year["summary"]["en"]
    # Any version's id finds the chain.
    one = client.get(f"/api/v1/me/records/{ids['p1'][0]}", headers=auth)
    assert one.status_code == 200 and one.json()["record"] == corrected
    # Compliance for chosen years; another jurisdiction's policy on request.
    years = client.get("/api/v1/me/compliance?year=2025&year=2026", headers=auth).json()
    assert [y["years"] for y in years] == [[2025], [2026]]
    assert years[0]["total"] == "0" and years[0]["met"] is False
    national = client.get("/api/v1/me/compliance?jurisdiction=CN", headers=auth).json()
    assert national[0]["policy"]["code"] == "CN"
    assert client.get("/api/v1/me/compliance?year=1999", headers=auth).status_code == 400


def test_nobody_sees_another_persons_records(client: Any, ctx: Any, clock: Clock) -> None:
    keys, ids = seeded(client, ctx)
    one = holder(client, keys, 1)
    two = holder(client, keys, 2)
    theirs = ids["p2"][0]
    mine = client.get("/api/v1/me/records", headers=two).json()["records"]
    assert [c["record"] for c in mine] == [theirs]

    def not_found(path: str, method: str = "get") -> dict[str, Any]:
        r = getattr(client, method)(path, headers=one)
        assert r.status_code == 404, r.text
        body: dict[str, Any] = r.json()
        return body

    # Another's record id answers exactly like an id that does not exist.
    other = not_found(f"/api/v1/me/records/{theirs}")
    ghost = not_found("/api/v1/me/records/r_doesnotexist")
    assert other["code"] == ghost["code"] == "not-found"
    assert other["detail"].replace(theirs, "X") == ghost["detail"].replace("r_doesnotexist", "X")
    not_found(f"/api/v1/me/records/{theirs}/certificate?format=json", "post")
    r = client.post("/api/v1/me/shares", json={"scope": "record", "record": theirs, "days": 30},
                    headers=one)  # fmt: skip
    assert r.status_code == 404, r.text
    # Nothing of person 2 in anything person 1 reads.
    everything = client.get("/api/v1/me/records", headers=one).text
    assert theirs not in everything


def test_downloads_certificate_and_transcript(client: Any, ctx: Any, clock: Clock) -> None:
    keys, ids = seeded(client, ctx)
    _, revoked = history(client, keys, ids["p1"])
    auth = holder(client, keys, 1)
    ethics = ids["p1"][1]
    r = client.post(f"/api/v1/me/records/{ethics}/certificate?format=json", headers=auth)
    assert r.status_code == 201, r.text
    cert = r.json()
    assert cert["credential"]["type"][-1] == "OpenBadgeCredential"
    verified = client.get("/api/v1/verify/" + urlsplit(cert["verify_url"]).path.rsplit("/", 1)[1])
    assert verified.json()["verdict"] == "valid"
    pdf = client.post(f"/api/v1/me/records/{ethics}/certificate", headers=auth)
    assert pdf.status_code == 201 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "no-store"
    # A revoked record has no certificate; the superseded version names the current one.
    r = client.post(f"/api/v1/me/records/{revoked}/certificate?format=json", headers=auth)
    assert r.status_code == 409 and "revoked" in r.text
    r = client.post(f"/api/v1/me/records/{ids['p1'][0]}/certificate?format=json", headers=auth)
    assert r.status_code == 409 and "superseded" in r.text
    # The transcript: every current record of the year, with the credential (CLR).
    t = client.post("/api/v1/me/transcript?format=json", json={"years": [2026]}, headers=auth)
    assert t.status_code == 201, t.text
    assert len(t.json()["credential"]["credentialSubject"]["verifiableCredential"]) == 2
    token = urlsplit(t.json()["verify_url"]).path.rsplit("/", 1)[1]
    assert client.get(f"/api/v1/verify/{token}").json()["verdict"] == "valid"
    bad = client.post("/api/v1/me/transcript", json={"years": [1999]}, headers=auth)
    assert bad.status_code == 400
    with ctx.db.reader() as s:
        issuers = set(s.scalars(select(IssuedDocument.issued_by)))
    assert issuers == {"holder"}


def test_compliance_per_cycle_when_the_policy_counts_cycles(
    client: Any, ctx: Any, clock: Clock
) -> None:
    keys, _ = seeded(client, ctx)
    # The city moves to a Shanghai-like rule from 2026: 180 学时 per 3-year cycle from 2024.
    doc = json.loads(resources.files("ledger.policies").joinpath("panzhihua.json").read_bytes())
    doc |= {
        "version": 2,
        "effective_from": "2026-01-01",
        "hours": {
            "requirement": {"period": "cycle", "years": 3, "total": 180, "anchor_year": 2024}
        },
    }
    r = client.post(
        "/api/v1/registry/policies",
        content=json.dumps(doc, ensure_ascii=False).encode(),
        headers={**keys[CITY], "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    auth = holder(client, keys, 1)
    (cycle,) = client.get("/api/v1/me/compliance?year=2026", headers=auth).json()
    assert cycle["period"] == "cycle" and cycle["years"] == [2024, 2025, 2026]
    assert cycle["required"] == "180" and cycle["total"] == "36" and cycle["met"] is False
    assert cycle["summary"]["en"].startswith("2024–2026 (3-year cycle): 36/180 hours ✗")
    # 2025 still falls under version 1 (yearly).
    years = client.get("/api/v1/me/compliance?year=2025&year=2026", headers=auth).json()
    assert [(y["period"], y["years"]) for y in years] == [
        ("year", [2025]),
        ("cycle", [2024, 2025, 2026]),
    ]
