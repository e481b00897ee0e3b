"""Helpers shared by the account tests (no tests here).

``settings`` overrides the conftest fixture with cheap argon2 parameters (the production
defaults cost ~0.3 s a hash on the development machine); import it into a test module to use it.
``Clock`` is the injected time of the holder routes (``app.state["holder_clock"]``): tests move
it instead of sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.completions_support import (
    BATCHES,
    ETHICS,
    FORUM,
    batch,
    id_number,
    record,
    world,
)
from tests.test_registry_support import bearer

PASSWORD = "correct horse battery staple"
CITY = "authority:CN-SC-PZH"
HOSPITAL = "base:2"  # the demo's other recognised base in Panzhihua: no records of anyone here


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Any:
    from api.settings import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        data_dir=tmp_path / "data",
        origin="test.celedger.example/log",
        public_url="http://testserver",
        password_hash_time_cost=1,
        password_hash_memory_kib=64,
        password_hash_parallelism=1,
    )


class Clock:
    """The holder routes' clock; starts at the real time (records and tokens use that)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(client: Any) -> Clock:
    c = Clock()
    client.app.state["holder_clock"] = c
    return c


def ethics(n: int) -> dict[str, Any]:
    return record(
        n,
        class_code=ETHICS,
        category="公需",
        start="2026-03-10",
        end="2026-03-10",
        hours="6",
        fee_yuan="0",
    )


def forum(n: int) -> dict[str, Any]:
    return record(
        n,
        class_code=FORUM,
        category="选修",
        mode="会议",
        start="2026-09-10",
        end="2026-09-10",
        hours="6",
        fee_yuan="200.50",
    )


def seeded(client: Any, ctx: Any) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """The demo registry and records of two people at base 1: person 1 has materials (专业 24),
    ethics (公需 6) and forum (选修 6); person 2 has materials.  Answers the API keys and each
    person's record ids."""
    keys = world(ctx)
    r = client.post(
        BATCHES,
        json=batch("accounts", record(1), ethics(1), forum(1), record(2)),
        headers=keys["base:1"],
    )
    assert r.status_code == 201, r.text
    ids = [x["record"] for x in r.json()["records"]]
    return keys, {"p1": ids[:3], "p2": ids[3:]}


def history(client: Any, keys: dict[str, dict[str, str]], p1: list[str]) -> tuple[str, str]:
    """Correct person 1's materials record (24 → 20 学时) and revoke their forum record; answers
    the correction's record id and the revoked one's."""
    materials, _, forum = p1
    fix = client.post(
        f"/api/v1/completions/{materials}/corrections",
        json={"reason": "学时登记有误", "changes": {"hours": "20"}},
        headers=keys["base:1"],
    )
    assert fix.status_code == 201, fix.text
    revoked = client.post(
        f"/api/v1/completions/{forum}/revocation",
        json={"reason_code": "fraud", "reason": "查实未参会"},
        headers=keys[CITY],
    )
    assert revoked.status_code in (200, 201), revoked.text
    return str(fix.json()["record"]), forum


def issue_code(client: Any, keys: dict[str, dict[str, str]], principal: str, n: int) -> str:
    r = client.post(
        "/api/v1/activation-codes", json={"id_number": id_number(n)}, headers=keys[principal]
    )
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    return str(r.json()["code"])


def activate(client: Any, n: int, code: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/api/v1/me/activate",
        json={"id_number": id_number(n), "code": code, "password": password},
    )


def sign_in(client: Any, n: int, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/me/sign-in", json={"id_number": id_number(n), "password": password})


def holder(client: Any, keys: dict[str, dict[str, str]], n: int) -> dict[str, str]:
    """Person ``n`` activated (code from base 1) and signed in: their Authorization header."""
    r = activate(client, n, issue_code(client, keys, "base:1", n))
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])
