"""Accounts through HTTP, on SQLite and PostgreSQL: activation codes, activation, sign-in,
lock-out, session expiry (injected time), sign-out, password change, and bad input."""

from __future__ import annotations

from typing import Any

from tests.completions_support import id_number
from tests.test_accounts_support import (
    CITY,
    HOSPITAL,
    PASSWORD,
    Clock,
    activate,
    clock,
    holder,
    issue_code,
    seeded,
    settings,
    sign_in,
)
from tests.test_registry_support import bearer

__all__ = ["clock", "settings"]  # fixtures, imported for pytest


def _problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def test_activation_code_then_activate_then_sign_in(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    # A base issues codes for people it has records for; an authority over it does too.
    code = issue_code(client, keys, "base:1", 1)
    issue_code(client, keys, "authority:CN", 2)
    r = activate(client, 1, code)
    assert r.status_code == 201, r.text
    session = r.json()
    assert session["token"].startswith("ses_") and session["token_type"] == "Bearer"
    assert session["idle_timeout_seconds"] == 12 * 3600
    assert r.headers["cache-control"] == "no-store"
    me = client.get("/api/v1/me", headers=bearer(session["token"]))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["name"] == "张二甲" and body["records"] == 3
    assert body["id_number"].count("*") == 16 and id_number(1) not in me.text
    # Sign in again with the password chosen at activation.
    again = sign_in(client, 1)
    assert again.status_code == 200, again.text
    assert again.json()["token"] != session["token"]
    sessions = client.get("/api/v1/me/sessions", headers=bearer(again.json()["token"])).json()
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1


def test_who_may_issue_codes_and_nothing_leaks(client: Any, ctx: Any) -> None:
    keys, _ = seeded(client, ctx)
    # A base with no records of the person and an unknown ID number: the same answer.
    other_base = client.post(
        "/api/v1/activation-codes", json={"id_number": id_number(1)}, headers=keys[HOSPITAL]
    )
    unknown = client.post(
        "/api/v1/activation-codes", json={"id_number": id_number(77)}, headers=keys["base:1"]
    )
    assert _problem(other_base, 404, "not-found") == _problem(unknown, 404, "not-found")
    # A management unit may not issue codes at all (whoever the person).
    unit = next(k for k in keys if k.startswith("unit:"))
    r = client.post(
        "/api/v1/activation-codes", json={"id_number": id_number(1)}, headers=keys[unit]
    )
    assert _problem(r, 403, "permission-denied")["rule"] == "activation.issue"
    # No key: 401.  A malformed ID number: 400, and the number is not echoed back.
    assert (
        client.post("/api/v1/activation-codes", json={"id_number": id_number(1)}).status_code == 401
    )
    bad = "51040219800101001X"
    r = client.post("/api/v1/activation-codes", json={"id_number": bad}, headers=keys["base:1"])
    assert r.status_code == 400 and "check character" in r.text and bad not in r.text
    # The city authority over base 1 may issue.
    issue_code(client, keys, CITY, 1)


def test_bad_codes_reused_codes_expired_codes(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    code = issue_code(client, keys, "base:1", 1)
    wrong = "ABCD-EFGH-JKMN-PQRS"
    a = activate(client, 1, wrong)
    b = activate(client, 77, code)  # unknown ID number, a real code of someone else
    c = activate(client, 2, code)  # a known person, someone else's code
    first = _problem(a, 401, "activation.failed")
    assert _problem(b, 401, "activation.failed") == first
    assert _problem(c, 401, "activation.failed") == first
    # Malformed code and weak password: 422, nothing counted against anyone.
    _problem(activate(client, 1, "ABC"), 422, "rule-violation")
    _problem(activate(client, 1, code, password="short"), 422, "rule-violation")
    assert activate(client, 1, code).status_code == 201
    # Single use.
    _problem(activate(client, 1, code), 410, "activation.used")
    # A new code replaces an unused one; an expired code says so.
    old = issue_code(client, keys, "base:1", 2)
    new = issue_code(client, keys, "base:1", 2)
    _problem(activate(client, 2, old), 401, "activation.failed")
    clock.advance(days=14, seconds=1)
    body = _problem(activate(client, 2, new), 410, "activation.expired")
    assert "expired" in body["detail"]


def test_sign_in_failures_say_nothing_and_lock_out(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    holder(client, keys, 1)
    unknown = _problem(sign_in(client, 77), 401, "auth.failed")
    wrong = _problem(sign_in(client, 1, "wrong password!"), 401, "auth.failed")
    assert unknown == wrong  # same status, code, title and detail
    # Malformed ID numbers: a clear 400 naming the field, never the number.
    for bad in ("123", "51040219800101001X", "510402198013010011", "５１０４０２"):
        r = client.post("/api/v1/me/sign-in", json={"id_number": bad, "password": "x" * 12})
        assert r.status_code == 400, r.text
        assert "id_number" in r.text and bad not in r.text
    # Four more wrong passwords: five failures for this ID number → locked, even the right one.
    for _ in range(4):
        _problem(sign_in(client, 1, "wrong password!"), 401, "auth.failed")
    locked = sign_in(client, 1)
    _problem(locked, 429, "rate-limited")
    assert 14 * 60 < int(locked.headers["retry-after"]) <= 15 * 60
    # Unknown ID numbers lock the same way (a lock says nothing about existence): one failure
    # above, four more.
    for _ in range(4):
        _problem(sign_in(client, 77), 401, "auth.failed")
    _problem(sign_in(client, 77), 429, "rate-limited")
    # Another person is not locked by it.
    holder(client, keys, 2)
    assert sign_in(client, 2).status_code == 200
    clock.advance(minutes=15, seconds=1)
    assert sign_in(client, 1).status_code == 200


def test_one_client_guessing_many_id_numbers_is_locked(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    holder(client, keys, 1)
    # Twenty failures from one client address, each on a different ID number …
    for n in range(100, 120):
        _problem(sign_in(client, n, "guess guess guess"), 401, "auth.failed")
    # … and the address is locked, for every ID number, right passwords too.
    r = sign_in(client, 1)
    _problem(r, 429, "rate-limited")
    assert int(r.headers["retry-after"]) > 0
    clock.advance(minutes=16)
    assert sign_in(client, 1).status_code == 200


def test_successful_sign_ins_do_not_lock_a_shared_address(
    client: Any, ctx: Any, clock: Clock
) -> None:
    keys, _ = seeded(client, ctx)
    holder(client, keys, 1)
    for _ in range(30):  # more than the per-address limit
        assert sign_in(client, 1).status_code == 200


def test_session_idle_and_absolute_expiry(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    auth = holder(client, keys, 1)
    # Idle: just under 12 h between requests keeps it alive …
    for _ in range(3):
        clock.advance(hours=11, minutes=59)
        assert client.get("/api/v1/me", headers=auth).status_code == 200
    # … 12 h of silence ends it.
    clock.advance(hours=12)
    r = client.get("/api/v1/me", headers=auth)
    assert r.status_code == 401 and "idle" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    # Absolute: 7 days after sign-in, however active.
    auth = bearer(sign_in(client, 1).json()["token"])
    for _ in range(15):
        clock.advance(hours=11)
        assert client.get("/api/v1/me", headers=auth).status_code == 200
    clock.advance(hours=3)  # 7 days and 2 hours after sign-in
    r = client.get("/api/v1/me", headers=auth)
    assert r.status_code == 401 and "absolute" in r.json()["detail"]
    # Gone for good, even if the clock went back.
    clock.advance(days=-3)
    assert client.get("/api/v1/me", headers=auth).status_code == 401


def test_sign_out_and_sign_out_everywhere(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    first = holder(client, keys, 1)
    second = bearer(sign_in(client, 1).json()["token"])
    third = bearer(sign_in(client, 1).json()["token"])
    assert client.post("/api/v1/me/sign-out", headers=first).status_code == 204
    assert client.get("/api/v1/me", headers=first).status_code == 401
    assert client.get("/api/v1/me", headers=second).status_code == 200
    r = client.post("/api/v1/me/sign-out-everywhere", headers=second)
    assert r.status_code == 200 and r.json() == {"ended": 2}
    for auth in (second, third):
        assert client.get("/api/v1/me", headers=auth).status_code == 401
    # No session at all, an API key, garbage: 401 with a challenge.
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=keys["base:1"]).status_code == 401
    assert client.get("/api/v1/me", headers=bearer("ses_" + "A" * 43)).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Basic eDp5"}).status_code == 401


def test_password_change_and_reset_by_a_new_code(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    auth = holder(client, keys, 1)
    other = bearer(sign_in(client, 1).json()["token"])
    new = "a brand new passphrase"
    r = client.post(
        "/api/v1/me/password",
        json={"password": "wrong password!", "new_password": new},
        headers=auth,
    )
    _problem(r, 401, "password.wrong")
    r = client.post(
        "/api/v1/me/password", json={"password": PASSWORD, "new_password": new}, headers=auth
    )
    assert r.status_code == 204, r.text
    assert client.get("/api/v1/me", headers=auth).status_code == 200  # this session stays
    assert client.get("/api/v1/me", headers=other).status_code == 401  # the others end
    assert sign_in(client, 1).status_code == 401
    assert sign_in(client, 1, new).status_code == 200
    # Forgot it: the base issues a new code, activation sets a new password and ends sessions.
    reset = activate(client, 1, issue_code(client, keys, "base:1", 1), "third time lucky!")
    assert reset.status_code == 201
    assert client.get("/api/v1/me", headers=auth).status_code == 401
    assert sign_in(client, 1, "third time lucky!").status_code == 200


def test_people_without_records_cannot_activate(client: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(client, ctx)
    r = client.post(
        "/api/v1/activation-codes", json={"id_number": id_number(50)}, headers=keys["authority:CN"]
    )
    _problem(r, 404, "not-found")
    _problem(activate(client, 50, "ABCD-EFGH-JKMN-PQRS"), 401, "activation.failed")
    _problem(sign_in(client, 50), 401, "auth.failed")


def test_bad_bodies_are_clear_and_echo_no_secret(client: Any, ctx: Any, clock: Clock) -> None:
    seeded(client, ctx)
    secret = "s3cret-" * 50  # 350 characters: too long
    r = client.post("/api/v1/me/sign-in", json={"id_number": id_number(1), "password": secret})
    assert r.status_code == 400 and "password" in r.text and secret not in r.text
    assert id_number(1) not in r.text
    for body in (
        {"id_number": id_number(1)},
        {"password": PASSWORD},
        {"id_number": id_number(1), "password": PASSWORD, "extra": 1},
        {"id_number": 510402, "password": PASSWORD},
    ):
        r = client.post("/api/v1/me/sign-in", json=body)
        assert r.status_code == 400, (body, r.text)
    r = client.post(
        "/api/v1/me/sign-in", content=b"not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    r = activate(client, 1, "K7QM-2XHD-9RTA-PW3E", password=secret)
    assert r.status_code == 400 and secret not in r.text
