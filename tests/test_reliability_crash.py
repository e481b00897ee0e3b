"""Crash consistency: the server is killed with SIGKILL at random moments while several clients
post completion batches, on SQLite and on PostgreSQL.

Each trial posts a few batches (two bases, 50 to 2,000 rows) from 2–3 client threads and
kills the server's whole process group at a moment drawn from a seeded ``random.Random``:
before the first request can land, after the k-th acknowledgement, or at a random time.
Then, reading the database directly:

* every acknowledged batch (a 2xx received) is stored with exactly the records and ledger
  indexes of its receipt — a missing one is a *record lost*, and there must be none;
* every other batch is wholly present or wholly absent (its batch row with all its records,
  and the ledger holds one ``completion`` entry per stored record and nothing more);
* the latest signed checkpoint covers the whole log.

After a restart every batch is retried with its key: 200 with ``Idempotent-Replayed`` (and the
original receipt, if it was acknowledged) when stored, else 201, with the full count; then
``celedger audit`` must say clean.  The seed is printed (and can be set with
``CELEDGER_RELIABILITY_SEED``) so that a failing run can be replayed.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.completions_support import batch, world
from tests.reliability_support import (
    CLASS_OF_BASE,
    LedgerCounts,
    People,
    Server,
    audit_clean,
    db_kind,
    ledger_counts,
    stored_batch,
)

TRIALS = 20
MIN_ROWS, MAX_ROWS = 50, 2000


@dataclass
class Planned:
    base: int
    key: str
    body: dict[str, Any]
    sent: bool = False
    status: int | None = None
    receipt: dict[str, Any] | None = None
    error: BaseException | None = None
    stored_at_kill: bool = False

    @property
    def rows(self) -> int:
        return len(self.body["records"])

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def mid_request(self) -> bool:
        # Refused connections never reached the server; any other failure was cut off by the
        # kill while the server had the request.
        return (
            self.sent and self.error is not None and not isinstance(self.error, httpx.ConnectError)
        )


def seed() -> int:
    env = os.environ.get("CELEDGER_RELIABILITY_SEED")
    return int(env) if env else random.SystemRandom().randrange(2**32)


def _rows(rng: random.Random) -> int:
    # Log-uniform: mostly a few hundred rows, now and then thousands.
    return int(math.exp(rng.uniform(math.log(MIN_ROWS), math.log(MAX_ROWS))))


class Trial:
    """One trial's batches, the client threads posting them, and the kill."""

    def __init__(
        self, n: int, rng: random.Random, people: People, keys: dict[str, dict[str, str]]
    ) -> None:
        self.keys = keys
        self.clients: list[list[Planned]] = []
        for c in range(rng.randint(2, 3)):
            base = 1 + c % 2
            self.clients.append(
                [
                    Planned(
                        base,
                        f"crash-{n}-{c}-{b}",
                        batch(
                            f"crash-{n}-{c}-{b}", *people.records(_rows(rng), CLASS_OF_BASE[base])
                        ),
                    )
                    for b in range(rng.randint(1, 3))
                ]
            )
        self.batches = [p for client in self.clients for p in client]
        self.killed = threading.Event()
        self.acks = threading.Condition()
        self.answered = 0

    def post(self, url: str, p: Planned) -> httpx.Response:
        return httpx.post(
            f"{url}/api/v1/bases/{p.base}/batches",
            json=p.body,
            headers=self.keys[f"base:{p.base}"],
            timeout=120,
        )

    def _client(self, url: str, planned: list[Planned]) -> None:
        for p in planned:
            if self.killed.is_set():
                return
            p.sent = True
            try:
                r = self.post(url, p)
            except httpx.HTTPError as exc:
                p.error = exc
                return
            p.status = r.status_code
            if r.status_code == 201:
                p.receipt = r.json()
            with self.acks:
                self.answered += 1
                self.acks.notify_all()

    def run(self, server: Server, rng: random.Random, moment: str) -> str:
        """Post from every client, kill the server at the drawn moment; describe the moment."""
        threads = [
            threading.Thread(target=self._client, args=(server.url, c), daemon=True)
            for c in self.clients
        ]
        for t in threads:
            t.start()
        if moment == "at-once":
            delay = rng.uniform(0, 0.02)
            time.sleep(delay)
            what = f"after {delay * 1000:.0f} ms"
        elif moment == "after-acks":
            k = rng.randint(1, max(1, len(self.batches) - 1))
            jitter = rng.uniform(0, 0.3)
            with self.acks:
                self.acks.wait_for(lambda: self.answered >= k, timeout=120)
            time.sleep(jitter)
            what = f"{jitter * 1000:.0f} ms after answer {k}"
        else:
            delay = rng.uniform(0.05, 1.2)
            time.sleep(delay)
            what = f"after {delay:.2f} s"
        self.killed.set()
        server.kill()
        for t in threads:
            t.join(timeout=120)
            assert not t.is_alive(), "a client thread still waits after the server was killed"
        return what


def _check_stored(ctx: Any, trial: Trial, before: LedgerCounts) -> tuple[int, int, int]:
    """All or nothing per batch; acknowledged batches whole.  Returns (records lost, batches
    stored, batches stored although never answered)."""
    lost = stored = unanswered = 0
    rows = 0
    for p in trial.batches:
        # Only 201 acknowledges a fresh key; anything else before the kill is a bug.
        assert p.status in (None, 201), (p.key, p.status)
        found = stored_batch(ctx, p.base, p.key)
        if p.acknowledged:
            assert p.receipt is not None
            want = {r["record"]: r["log_index"] for r in p.receipt["records"]}
            have = {} if found is None else found[1]
            lost += sum(1 for rid, idx in want.items() if have.get(rid) != idx)
        if found is None:
            continue
        p.stored_at_kill = True
        count, records = found
        assert count == p.rows and len(records) == p.rows, (
            f"{p.key}: expected {p.rows} records or none, found the batch with {len(records)} "
            f"(record_count {count})"
        )
        assert len(set(records.values())) == p.rows, f"{p.key}: two records share a log index"
        stored += 1
        rows += p.rows
        unanswered += not p.acknowledged
    after = ledger_counts(ctx)
    # Nothing half-written: one ledger entry per stored record, no other new entries or
    # records, and the latest signed checkpoint covers the whole log.
    assert after.completion_records - before.completion_records == rows, (before, after, rows)
    assert after.completion_entries - before.completion_entries == rows, (before, after, rows)
    assert after.size == after.entries == after.checkpoint == before.size + rows, (before, after)
    return lost, stored, unanswered


def _retry(url: str, trial: Trial) -> None:
    for p in trial.batches:
        r = trial.post(url, p)
        # Stored (answered or not): the original receipt again; absent: posted now, once.
        want = 200 if p.stored_at_kill else 201
        assert r.status_code == want, (p.key, want, r.status_code, r.text[:500])
        assert r.json()["count"] == p.rows, (p.key, r.json()["count"], p.rows)
        assert (r.headers.get("idempotent-replayed") == "true") == p.stored_at_kill, p.key
        if p.receipt is not None:
            assert r.json() == p.receipt, f"{p.key}: the replay differs from the receipt"


@pytest.mark.slow
def test_sigkill_during_batches_loses_nothing(
    settings: Any, ctx: Any, figure: Any, tmp_path: Path
) -> None:
    s = seed()
    db = db_kind(settings)
    print(f"crash[{db}] seed {s} (set CELEDGER_RELIABILITY_SEED={s} to replay)")
    rng = random.Random(s)
    keys = world(ctx)
    people = People()
    log = tmp_path / "server.log"
    moments = ["at-once", "after-acks"] + [
        rng.choice(["at-once", "after-acks", "after-acks", "timed", "timed", "timed"])
        for _ in range(TRIALS - 2)
    ]
    server = Server(settings, log=log)
    lost = acked = mid = stored = unanswered = clean = rows = 0
    try:
        for n, moment in enumerate(moments):
            trial = Trial(n, rng, people, keys)
            before = ledger_counts(ctx)
            what = trial.run(server, rng, moment)
            where = f"seed {s}, trial {n} ({moment}, killed {what})"
            try:
                t_lost, t_stored, t_unanswered = _check_stored(ctx, trial, before)
            except AssertionError as exc:
                raise AssertionError(f"{where}: {exc}") from exc
            lost += t_lost
            assert t_lost == 0, f"{where}: {t_lost} acknowledged records lost"
            acked += sum(p.acknowledged for p in trial.batches)
            mid += any(p.mid_request for p in trial.batches)
            stored += t_stored
            unanswered += t_unanswered
            server = Server(settings, log=log)
            _retry(server.url, trial)
            rows += sum(p.rows for p in trial.batches)
            for p in trial.batches:
                found = stored_batch(ctx, p.base, p.key)
                assert found is not None and len(found[1]) == p.rows, (where, p.key, found)
            counts = ledger_counts(ctx)
            assert counts.completion_records == counts.completion_entries == rows, (where, counts)
            ok, out = audit_clean(settings)
            assert ok, f"{where}: celedger audit is not clean:\n{out}"
            clean += ok
            print(
                f"trial {n}: {moment}, killed {what}: {len(trial.batches)} batches, "
                f"{sum(p.acknowledged for p in trial.batches)} acknowledged, {t_stored} stored "
                f"before the retry"
            )
    finally:
        server.kill()
    figure(
        f"crash[{db}]: {TRIALS} trials (seed {s}), {mid} kills mid-request, {acked} batches "
        f"acknowledged, {lost} records lost, audit clean {clean}/{TRIALS}; {stored} batches "
        f"stored at the kill ({unanswered} of them unanswered), {rows} records in all"
    )
    assert mid > 0, f"seed {s}: no kill landed mid-request; the trials tested nothing"
