"""Pure rules of the holder's access: secrets, activation codes, throttling, passwords."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from ledger.accounts.errors import AuthenticationFailed
from ledger.accounts.passwords import HashParams, Passwords
from ledger.accounts.rules import (
    CODE_ALPHABET,
    AccountRules,
    ThrottleState,
    check_new_password,
    check_share_days,
    give_back,
    new_activation_code,
    new_session_token,
    new_share_token,
    normalise_code,
    normalise_share_token,
    secret_hash,
    throttle_step,
)
from ledger.registry.errors import RuleViolation
from tests.completions_support import id_number

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
LOCK = timedelta(minutes=15)


def test_secrets_are_long_random_and_hashed_per_domain() -> None:
    tokens = {new_session_token() for _ in range(200)}
    assert len(tokens) == 200
    token = tokens.pop()
    assert token.startswith("ses_") and len(token) >= 4 + 43  # 256 bits in base64url
    share = new_share_token()
    assert re.fullmatch(r"[A-Z2-7]{32}", share)  # 160 bits, upper case for an alphanumeric QR
    assert normalise_share_token(share.lower()) == share
    assert normalise_share_token(share[:-1]) is None
    assert normalise_share_token(share + "A") is None
    assert secret_hash("session", token) != secret_hash("share", token)
    assert len(secret_hash("session", token)) == 32


def test_activation_codes_read_back_forgivingly() -> None:
    code = new_activation_code()
    assert re.fullmatch(rf"([{CODE_ALPHABET}]{{4}}-){{3}}[{CODE_ALPHABET}]{{4}}", code)
    assert normalise_code(code.lower().replace("-", " ")) == code
    assert normalise_code("k7qm2xhd9rtapw3e") == "K7QM-2XHD-9RTA-PW3E"
    # Crockford's typo rules: O is 0, I and L are 1.
    assert normalise_code("O0IL-2XHD-9RTA-PW3E") == "0011-2XHD-9RTA-PW3E"
    with pytest.raises(RuleViolation, match="found 15 characters"):
        normalise_code("K7QM-2XHD-9RTA-PW3")
    with pytest.raises(RuleViolation, match="characters 'U'"):
        normalise_code("K7QM-2XHD-9RTA-PW3U")


def test_throttle_locks_after_the_limit_and_opens_after_the_lock() -> None:
    state = None
    for i in range(5):
        state, wait = throttle_step(state, T0 + timedelta(seconds=i), 5, LOCK)
        assert wait is None and state.failures == i + 1
    assert state is not None and state.locked_until == T0 + timedelta(seconds=4) + LOCK
    refused, wait = throttle_step(state, T0 + timedelta(minutes=1), 5, LOCK)
    assert refused == state and wait is not None and 13 * 60 < wait <= 14 * 60 + 4
    # The lock over: a fresh window.
    fresh, wait = throttle_step(state, T0 + timedelta(minutes=16), 5, LOCK)
    assert wait is None and fresh.failures == 1 and fresh.locked_until is None
    # Failures older than the window do not add up.
    old = ThrottleState(4, T0)
    later, _ = throttle_step(old, T0 + LOCK, 5, LOCK)
    assert later.failures == 1 and later.locked_until is None


def test_give_back_undoes_one_count() -> None:
    state, _ = throttle_step(ThrottleState(4, T0), T0, 5, LOCK)
    assert state.locked_until is not None
    back = give_back(state, 5)
    assert back.failures == 4 and back.locked_until is None
    many = ThrottleState(9, T0, T0 + LOCK)
    assert give_back(many, 5).locked_until == T0 + LOCK  # locked by other failures: stays


def test_password_rules() -> None:
    number = id_number(1)
    check_new_password("correct horse battery", number)
    for bad, rule in (
        ("short", "password.length"),
        ("x" * 129, "password.length"),
        (f"my{number}", "password.guessable"),
        ("born19800101!", "password.guessable"),
        ("abababababab", "password.guessable"),
    ):
        with pytest.raises(RuleViolation, match=rule):
            check_new_password(bad, number)


def test_share_days() -> None:
    rules = AccountRules()
    assert check_share_days(7, rules) == timedelta(days=7)
    assert check_share_days(180, rules) == timedelta(days=180)
    for days in (6, 181, 0, -1):
        with pytest.raises(RuleViolation, match="expected 7–180"):
            check_share_days(days, rules)


def test_passwords_argon2id_and_equal_work_for_unknown_accounts() -> None:
    pw = Passwords(HashParams(time_cost=2, memory_kib=8192, parallelism=1))
    stored = pw.hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=8192,t=2,p=1$")
    pw.verify(stored, "correct horse battery")
    with pytest.raises(AuthenticationFailed) as wrong:
        pw.verify(stored, "wrong horse battery")
    with pytest.raises(AuthenticationFailed) as unknown:
        pw.verify(None, "wrong horse battery")
    assert str(wrong.value) == str(unknown.value)
    assert not pw.needs_rehash(stored)
    assert Passwords(HashParams(time_cost=3, memory_kib=8192, parallelism=1)).needs_rehash(stored)

    # Unknown account (dummy hash) and wrong password cost the same argon2 work: the median of
    # several paired runs' ratios is within a factor of two.  Each pair is timed back to back,
    # so a change in the machine's load (the other test worker starting a server) hits both
    # halves of a pair, not all of one kind.
    def timed(stored_hash: str | None) -> float:
        start = time.perf_counter()
        with pytest.raises(AuthenticationFailed):
            pw.verify(stored_hash, "nope nope nope")
        return time.perf_counter() - start

    ratios = sorted(timed(stored) / timed(None) for _ in range(9))
    assert 0.5 < ratios[4] < 2.0, ratios
