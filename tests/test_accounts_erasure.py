"""Erasure (PIPL) through HTTP, on SQLite and PostgreSQL: crypto-shredding, a clean audit of the
ledger afterwards, the verification verdict of an old certificate, and no way back to the
person."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from ledger.accounts.models import (
    Account,
    ActivationCode,
    HolderSession,
    ShareAccess,
    ShareLink,
    SignInThrottle,
)
from ledger.completions.models import CompletionRecord, Person
from ledger.entries import decode_entry
from ledger.storage.audit import audit_local
from ledger.storage.log import Log
from tests.completions_support import BATCHES, ONLINE, batch, id_number, record
from tests.test_accounts_support import (
    PASSWORD,
    Clock,
    clock,
    holder,
    seeded,
    settings,
    sign_in,
)

__all__ = ["clock", "settings"]  # fixtures, imported for pytest

ERASED_ZH = "持有人已申请删除个人信息"
ERASED_EN = "the holder's personal data was erased"


def _token(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def test_erasure_shreds_audits_clean_and_verifies_as_erased(
    client: Any, ctx: Any, clock: Clock
) -> None:
    keys, ids = seeded(client, ctx)
    fix = client.post(f"/api/v1/completions/{ids['p1'][0]}/corrections",
                      json={"reason": "学时有误", "changes": {"hours": "20"}}, headers=keys["base:1"])  # fmt: skip
    assert fix.status_code == 201
    auth = holder(client, keys, 1)
    other = holder(client, keys, 2)
    ethics = ids["p1"][1]
    cert = client.post(f"/api/v1/me/records/{ethics}/certificate?format=json", headers=auth)
    assert cert.status_code == 201
    verify_token = _token(cert.json()["verify_url"])
    share = client.post("/api/v1/me/shares", json={"scope": "transcript", "days": 30},
                        headers=auth).json()  # fmt: skip
    assert client.get(f"/api/v1/shares/{_token(share['url'])}").json()["verdict"] == "valid"
    with ctx.db.reader() as s:
        person = s.scalar(select(Person).where(Person.lookup == ctx.vault.lookup(id_number(1))))
        assert person is not None
        pid = person.id
        size_before = Log.size(s)

    # Refused without the password, or without confirming.
    r = client.post("/api/v1/me/erasure", json={"password": "wrong password!", "confirm": True},
                    headers=auth)  # fmt: skip
    assert r.status_code == 401 and r.json()["code"] == "password.wrong"
    r = client.post("/api/v1/me/erasure", json={"password": PASSWORD}, headers=auth)
    assert r.status_code == 400
    r = client.post("/api/v1/me/erasure", json={"password": PASSWORD, "confirm": True},
                    headers=auth)  # fmt: skip
    assert r.status_code == 200, r.text
    receipt = r.json()
    assert receipt["records"] == 4  # three records and one correction
    assert receipt["erasure"].startswith("er_") and receipt["log_index"] == size_before

    with ctx.db.reader() as s:
        # The ledger entry names only a random id, a count and the time.
        entry = decode_entry(Log.entry(s, receipt["log_index"]) or b"")
        assert entry.kind == "erasure"
        assert dict(entry.payload) == {
            "erasure": receipt["erasure"], "records": 4, "at": entry.payload["at"],
        }  # fmt: skip
        # The ledger is intact: a full audit passes.
        report = audit_local(s, ctx.settings.origin, [ctx.log_verifier])
        assert report.ok, report.first
        assert report.entries == size_before + 1
        # Crypto-shredded: no sealed data, no salts; the ID number finds nothing.
        person = s.get(Person, pid)
        assert person is not None and person.sealed is None and person.erased_at is not None
        assert person.lookup != ctx.vault.lookup(id_number(1))
        rows = list(s.scalars(select(CompletionRecord).where(CompletionRecord.person_id == pid)))
        assert len(rows) == 4 and all(r.salt is None and r.sealed is None for r in rows)
        # Account, sessions, codes, throttle counter gone; links closed and unlinked.
        for model in (Account, ActivationCode):
            assert (
                s.scalar(select(func.count()).select_from(model).where(model.person_id == pid)) == 0
            )
        assert s.scalar(select(func.count()).select_from(HolderSession)) == 1  # person 2's
        links = list(s.scalars(select(ShareLink)))
        assert [(lk.closed_reason, lk.person_id, lk.sealed_token) for lk in links] == [
            ("erased", None, None)
        ]
        assert s.scalar(select(func.count()).select_from(ShareAccess)) == 0
        assert not any(
            k.startswith("id:" + ctx.vault.lookup(id_number(1)).hex())
            for k in s.scalars(select(SignInThrottle.key))
        )
        # Person 2 is untouched.
        two = s.scalar(select(Person).where(Person.lookup == ctx.vault.lookup(id_number(2))))
        assert two is not None and two.sealed is not None

    # The session ended; signing in answers as for an unknown ID number.
    assert client.get("/api/v1/me", headers=auth).status_code == 401
    assert sign_in(client, 1).json()["code"] == "auth.failed"
    assert client.get("/api/v1/me", headers=other).status_code == 200
    # The old certificate still verifies (the record is genuine and current), and says the
    # holder's data was erased; nobody can match a name or ID number to it any more.
    report = client.get(f"/api/v1/verify/{verify_token}").json()
    assert report["verdict"] == "valid"
    assert {"zh": ERASED_ZH, "en": ERASED_EN} in report["notes"]
    assert report["records"][0]["holder"]["name"] == "（已删除）"
    page = client.get(f"/V/{verify_token}").text
    assert ERASED_ZH in page and "张二甲" not in page
    m = client.post(f"/api/v1/verify/{verify_token}/match", json={"id_number": id_number(1)})
    assert m.status_code == 404
    # The share link says closed, because of the erasure, and shows nothing.
    shared = client.get(f"/api/v1/shares/{_token(share['url'])}").json()
    assert shared["verdict"] == "closed" and shared["records"] == []
    assert {"zh": ERASED_ZH, "en": ERASED_EN} in shared["notes"]
    assert ERASED_ZH in client.get(f"/S/{_token(share['url'])}").text
    # The base's own view keeps the record, without the person.
    view = client.get(f"/api/v1/completions/{ethics}", headers=keys["base:1"])
    assert view.status_code == 200 and "erased" in view.json()["holder"]["name"]
    # No code can be issued for the number any more …
    r = client.post("/api/v1/activation-codes", json={"id_number": id_number(1)},
                    headers=keys["base:1"])  # fmt: skip
    assert r.status_code == 404
    # … and a new record for the same number makes a new, unlinked person.
    online = record(1, class_code=ONLINE, mode="网络", start="2026-07-10", end="2026-07-11",
                    hours="12", fee_yuan="300")  # fmt: skip
    r = client.post(BATCHES, json=batch("after-erasure", online), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    with ctx.db.reader() as s:
        new = s.scalar(select(Person).where(Person.lookup == ctx.vault.lookup(id_number(1))))
        assert new is not None and new.id != pid
        assert (
            s.scalar(
                select(func.count())
                .select_from(CompletionRecord)
                .where(CompletionRecord.person_id == new.id)
            )
            == 1
        )
    fresh = holder(client, keys, 1)
    mine = client.get("/api/v1/me/records", headers=fresh).json()["records"]
    assert [c["class_code"] for c in mine] == [ONLINE]
    with ctx.db.reader() as s:
        assert audit_local(s, ctx.settings.origin, [ctx.log_verifier]).ok


def test_erasure_password_attempts_are_throttled(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    auth = holder(client, keys, 1)
    for _ in range(5):
        r = client.post("/api/v1/me/erasure", json={"password": "guess guess guess", "confirm": True},
                        headers=auth)  # fmt: skip
        assert r.status_code == 401
    r = client.post("/api/v1/me/erasure", json={"password": PASSWORD, "confirm": True},
                    headers=auth)  # fmt: skip
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    with ctx.db.reader() as s:
        person = s.scalar(select(Person).where(Person.lookup == ctx.vault.lookup(id_number(1))))
        assert person is not None and person.sealed is not None  # nothing erased
    clock.advance(minutes=10)  # the session stays alive (idle < 12 h); the lock runs out
    clock.advance(minutes=6)
    r = client.post("/api/v1/me/erasure", json={"password": PASSWORD, "confirm": True},
                    headers=auth)  # fmt: skip
    assert r.status_code == 200, r.text
