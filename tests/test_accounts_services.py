"""Account services on SQLite and PostgreSQL, with time passed in: lock-out across clients,
parallel guessing, equal work for unknown ID numbers, session expiry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.accounts import services as accounts
from ledger.accounts.errors import AuthenticationFailed, SessionInvalid, Throttled
from ledger.accounts.passwords import HashParams, Passwords
from ledger.accounts.providers import PasswordProvider, sign_in
from ledger.accounts.rules import AccountRules
from ledger.registry.auth import Principal
from tests.completions_support import id_number
from tests.test_accounts_support import PASSWORD, seeded, settings

__all__ = ["settings"]  # fixture, imported for pytest

FAST = Passwords(HashParams(time_cost=1, memory_kib=64, parallelism=1))
BASE1 = Principal("base:1", "base", "CN-SC-PZH", base=1)


def _account(ctx: Any, n: int, rules: AccountRules, now: datetime, pw: Passwords = FAST) -> None:
    with ctx.db.writer() as s:
        code = accounts.issue_activation_code(s, ctx.vault, BASE1, id_number(n), rules, now=now)
    accounts.activate(
        ctx.db, ctx.vault, pw, rules, id_number(n), code.code, PASSWORD, "10.0.0.1", now=now
    )


def _try(
    ctx: Any, provider: PasswordProvider, n: int, password: str, client: str, now: datetime
) -> str:
    try:
        sign_in(ctx.db, provider, provider.rules,
                {"id_number": id_number(n), "password": password}, client, now=now)  # fmt: skip
    except AuthenticationFailed:
        return "failed"
    except Throttled:
        return "locked"
    return "ok"


def test_lock_follows_the_id_number_across_clients(client: Any, ctx: Any) -> None:
    seeded(client, ctx)
    rules = AccountRules()
    t0 = datetime.now(UTC)
    _account(ctx, 1, rules, t0)
    provider = PasswordProvider(ctx.vault, FAST, rules)
    # Five failures from five addresses: the ID number is locked for every address.
    for i in range(5):
        assert _try(ctx, provider, 1, "wrong password!", f"192.0.2.{i}", t0) == "failed"
    assert _try(ctx, provider, 1, PASSWORD, "198.51.100.7", t0) == "locked"
    assert _try(ctx, provider, 1, PASSWORD, "198.51.100.7", t0 + timedelta(minutes=14)) == "locked"
    assert _try(ctx, provider, 1, PASSWORD, "198.51.100.7", t0 + timedelta(minutes=16)) == "ok"
    # A success clears the count: four more failures do not lock.
    t1 = t0 + timedelta(minutes=20)
    for _ in range(4):
        assert _try(ctx, provider, 1, "wrong password!", "192.0.2.9", t1) == "failed"
    assert _try(ctx, provider, 1, PASSWORD, "192.0.2.9", t1) == "ok"


def test_parallel_guesses_cannot_pass_the_limit(client: Any, ctx: Any) -> None:
    seeded(client, ctx)
    rules = AccountRules()
    now = datetime.now(UTC)
    _account(ctx, 1, rules, now)
    provider = PasswordProvider(ctx.vault, FAST, rules)
    # Twelve guesses at once: each is counted before its password is checked, so exactly five
    # are checked and the rest are refused.
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(
            pool.map(
                lambda i: _try(ctx, provider, 1, f"guess number {i}", f"203.0.113.{i}", now),
                range(12),
            )
        )
    assert sorted(outcomes) == ["failed"] * 5 + ["locked"] * 7


def test_unknown_id_number_costs_what_a_wrong_password_costs(client: Any, ctx: Any) -> None:
    # Counted, not timed (a shared machine makes timings flaky): both paths must run exactly
    # one argon2id verification with the same parameters, which is what makes them cost alike.
    seeded(client, ctx)
    rules = AccountRules(max_failures=1000, max_failures_per_client=1000)
    pw = Passwords(HashParams(time_cost=2, memory_kib=16384, parallelism=1))
    now = datetime.now(UTC)
    _account(ctx, 1, rules, now, pw)
    provider = PasswordProvider(ctx.vault, pw, rules)
    seen: list[str] = []

    class Counting:
        """The real hasher, counting verifications (PasswordHasher has slots: no patching)."""

        def __init__(self, real: Any) -> None:
            self.real = real

        def verify(self, stored: str, password: str) -> bool:
            seen.append(stored.rsplit("$", 2)[0])  # the algorithm and parameters only
            return bool(self.real.verify(stored, password))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    real = pw._hasher
    pw._hasher = Counting(real)  # type: ignore[assignment]
    try:
        for n, client_ip in ((1, "198.18.0.1"), (77, "198.18.0.2")):
            before = len(seen)
            assert _try(ctx, provider, n, "wrong password!", client_ip, now) == "failed"
            assert len(seen) == before + 1, (n, seen)
    finally:
        pw._hasher = real
    known, unknown = seen
    assert known == unknown and known.startswith("$argon2id$v=19$m=16384,t=2,p=1"), seen


def test_sessions_expire_by_the_clock(client: Any, ctx: Any) -> None:
    seeded(client, ctx)
    rules = AccountRules(session_idle=timedelta(hours=1), session_absolute=timedelta(hours=3))
    t0 = datetime.now(UTC)
    _account(ctx, 1, rules, t0)
    provider = PasswordProvider(ctx.vault, FAST, rules)
    issued = sign_in(ctx.db, provider, rules,
                     {"id_number": id_number(1), "password": PASSWORD}, "10.0.0.2", now=t0)  # fmt: skip
    assert issued.expires_at == t0 + timedelta(hours=3)
    for minutes in (50, 100, 150):  # each within an hour of the last
        holder = accounts.authenticate_session(
            ctx.db, issued.token, rules, now=t0 + timedelta(minutes=minutes)
        )
        assert holder.provider == "password"
    with pytest.raises(SessionInvalid, match="absolute"):
        accounts.authenticate_session(ctx.db, issued.token, rules, now=t0 + timedelta(hours=3))
    again = sign_in(ctx.db, provider, rules,
                    {"id_number": id_number(1), "password": PASSWORD}, "10.0.0.2", now=t0)  # fmt: skip
    with pytest.raises(SessionInvalid, match="idle"):
        accounts.authenticate_session(ctx.db, again.token, rules, now=t0 + timedelta(minutes=61))
    with pytest.raises(SessionInvalid, match="unknown"):  # and it is gone
        accounts.authenticate_session(ctx.db, again.token, rules, now=t0)
    with pytest.raises(SessionInvalid, match="expected 'Bearer ses_"):
        accounts.authenticate_session(ctx.db, "cek_something", rules, now=t0)
