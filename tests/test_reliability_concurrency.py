"""Concurrency: 8 clients post completion batches while 8 others verify, against a real server
with two worker processes, on SQLite and on PostgreSQL.

Posters first race to post one identical batch under one key (exactly one 201, seven replays
of the same receipt), then post their own batches under distinct keys.  Verifiers take
certificates for records already acknowledged, then loop: verify a token, fetch the latest
checkpoint and prove it consistent with the one they saw before, prove a record's inclusion
and check its entry names that record.  Nothing may answer 5xx or 429, and every proof must
verify in the client.

Afterwards, straight from the database: the log's indexes are 0..n-1 with no gap or
duplicate, every acknowledged record is in the ledger exactly once at its receipt's index, and
every stored checkpoint is signed by the log's key and consistent with every other (a
consistency proof from ``Log.consistency_proof`` checked by ``merkle.verify_consistency``).
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from certificates.pades import DevelopmentPKI
from ledger import merkle
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.completions.models import CompletionRecord
from ledger.storage.models import LogCheckpoint, LogEntry
from tests.completions_support import batch, world
from tests.reliability_support import CLASS_OF_BASE, People, Server, audit_clean, db_kind

POSTERS = VERIFIERS = 8
BATCHES_PER_POSTER = 4
ROWS = (20, 200)
MIN_VERIFIER_REQUESTS = 24
#: Checkpoint pairs beyond this many are sampled (every consecutive pair is always checked).
ALL_PAIRS_UP_TO = 4000
SAMPLED_PAIRS = 2000


@dataclass
class Shared:
    """What the client threads share: acknowledged records, failures, counters."""

    origin: str
    verifier: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    records: list[tuple[int, str, int]] = field(default_factory=list)  # base, record, index
    receipts: list[dict[str, Any]] = field(default_factory=list)
    race: list[httpx.Response] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    slowest: dict[str, float] = field(default_factory=dict)  # seconds, per kind of request
    posting_done: threading.Event = field(default_factory=threading.Event)
    first_record: threading.Event = field(default_factory=threading.Event)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def count(self, who: str, what: str, r: httpx.Response) -> None:
        with self.lock:
            self.requests[who] += 1
            if not self.posting_done.is_set():
                self.requests[f"{who} while posting"] += 1
            seconds = r.elapsed.total_seconds()
            self.slowest[what] = max(self.slowest.get(what, 0.0), seconds)

    def checkpoint(self, note: str) -> Checkpoint:
        cp, _ = open_checkpoint(note, self.origin, [self.verifier])
        return cp


def _b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def _poster(
    n: int,
    url: str,
    keys: dict[str, dict[str, str]],
    bodies: list[tuple[int, dict[str, Any]]],
    race: dict[str, Any],
    barrier: threading.Barrier,
    shared: Shared,
) -> None:
    with httpx.Client(base_url=url, timeout=120) as http:
        barrier.wait()
        r = http.post("/api/v1/bases/1/batches", json=race, headers=keys["base:1"])
        shared.count("poster", "batch", r)
        with shared.lock:
            shared.race.append(r)
        for base, body in bodies:
            r = http.post(f"/api/v1/bases/{base}/batches", json=body, headers=keys[f"base:{base}"])
            shared.count("poster", "batch", r)
            if r.status_code != 201:
                shared.error(f"poster {n}: {body['batch_key']}: {r.status_code} {r.text[:300]}")
                continue
            receipt = r.json()
            ledger = receipt["ledger"]
            try:
                cp = shared.checkpoint(ledger["checkpoint"])
                assert cp.size == ledger["tree_size"] == ledger["last_index"] + 1, ledger
            except Exception as exc:  # noqa: BLE001 - recorded, the test fails on it
                shared.error(f"poster {n}: receipt checkpoint: {exc}")
            with shared.lock:
                shared.receipts.append(receipt)
                shared.records += [(base, x["record"], x["log_index"]) for x in receipt["records"]]
            shared.first_record.set()
        # A retry of an acknowledged batch while others post: the same receipt again.
        base, body = bodies[0]
        r = http.post(f"/api/v1/bases/{base}/batches", json=body, headers=keys[f"base:{base}"])
        shared.count("poster", "batch", r)
        if r.status_code != 200 or r.headers.get("idempotent-replayed") != "true":
            shared.error(
                f"poster {n}: retry of {body['batch_key']}: {r.status_code} {r.text[:300]}"
            )


class Verifier:
    def __init__(
        self, n: int, url: str, keys: dict[str, dict[str, str]], shared: Shared, seed: int
    ) -> None:
        self.n, self.url, self.keys, self.shared = n, url, keys, shared
        self.rng = random.Random(seed)
        self.tokens: list[str] = []
        self.seen: Checkpoint | None = None
        self.done = 0

    def get(self, http: httpx.Client, path: str) -> httpx.Response | None:
        r = http.get(path)
        self.shared.count("verifier", path.split("?")[0].rsplit("/", 1)[0], r)
        self.done += 1
        if r.status_code != 200:
            self.shared.error(f"verifier {self.n}: GET {path}: {r.status_code} {r.text[:300]}")
            return None
        return r

    def pick(self) -> tuple[int, str, int]:
        with self.shared.lock:
            return self.rng.choice(self.shared.records)

    def certificate(self, http: httpx.Client) -> None:
        base, rid, _ = self.pick()
        r = http.post(
            f"/api/v1/completions/{rid}/certificate?format=json", headers=self.keys[f"base:{base}"]
        )
        self.shared.count("verifier", "certificate", r)
        self.done += 1
        if r.status_code != 201:
            self.shared.error(
                f"verifier {self.n}: certificate {rid}: {r.status_code} {r.text[:300]}"
            )
            return
        self.tokens.append(r.json()["verify_url"].rsplit("/", 1)[1])

    def verify_token(self, http: httpx.Client) -> None:
        if not self.tokens:
            return
        token = self.rng.choice(self.tokens)
        r = self.get(http, f"/api/v1/verify/{token}")
        if r is not None and r.json()["verdict"] != "valid":
            self.shared.error(f"verifier {self.n}: token verdict {r.json()['verdict']}")

    def consistency(self, http: httpx.Client) -> None:
        r = self.get(http, "/log/checkpoint")
        if r is None:
            return
        cp = self.shared.checkpoint(r.text)
        old = self.seen
        self.seen = cp
        if old is None:
            return
        if cp.size < old.size:
            self.shared.error(
                f"verifier {self.n}: checkpoint went back from {old.size} to {cp.size}"
            )
            return
        p = self.get(http, f"/api/v1/log/proof/consistency?old={old.size}&new={cp.size}")
        if p is not None:
            merkle.verify_consistency(
                old.size, cp.size, _b64(p.json()["proof"]), old.root_hash, cp.root_hash
            )

    def inclusion(self, http: httpx.Client) -> None:
        _, rid, index = self.pick()
        entry = self.get(http, f"/api/v1/log/entries/{index}")
        proof = self.get(http, f"/api/v1/log/proof/inclusion?index={index}")
        if entry is None or proof is None:
            return
        if json.loads(entry.content)["record"] != rid:
            self.shared.error(f"verifier {self.n}: entry {index} does not name record {rid}")
        body = proof.json()
        cp = self.shared.checkpoint(body["checkpoint"])
        assert cp.size == body["tree_size"], (cp.size, body["tree_size"])
        merkle.verify_inclusion(
            merkle.leaf_hash(entry.content), index, cp.size, _b64(body["proof"]), cp.root_hash
        )

    def run(self) -> None:
        steps = [self.verify_token, self.consistency, self.inclusion]
        with httpx.Client(base_url=self.url, timeout=120) as http:
            if not self.shared.first_record.wait(timeout=120):
                self.shared.error(f"verifier {self.n}: no record was acknowledged within 120 s")
                return
            i = 0
            while self.done < MIN_VERIFIER_REQUESTS or not self.shared.posting_done.is_set():
                step = self.certificate if i % 8 == 0 else steps[i % 3]
                try:
                    step(http)
                except Exception as exc:  # noqa: BLE001 - recorded, the test fails on it
                    self.shared.error(f"verifier {self.n}: {step.__name__}: {exc!r}")
                i += 1


def _ledger_checks(ctx: Any, shared: Shared, rng: random.Random) -> dict[str, Any]:
    with ctx.db.reader() as s:
        idxs = list(s.scalars(select(LogEntry.idx).order_by(LogEntry.idx)))
        n = len(idxs)
        gaps = (max(idxs) + 1 - len(set(idxs))) if idxs else 0
        duplicates = n - len(set(idxs))
        bodies = {
            int(i): json.loads(b)
            for i, b in s.execute(
                select(LogEntry.idx, LogEntry.body).where(LogEntry.kind == "completion")
            )
        }
        stored = {
            rid: int(index)
            for rid, index in s.execute(select(CompletionRecord.id, CompletionRecord.log_index))
        }
        rows = s.execute(
            select(LogCheckpoint.size, LogCheckpoint.root_hash, LogCheckpoint.note).order_by(
                LogCheckpoint.size
            )
        ).all()
        checkpoints = []
        for size, root, note in rows:
            cp = shared.checkpoint(note)  # raises unless signed by the log's key
            assert (cp.size, cp.root_hash) == (size, bytes(root)), f"checkpoint {size}: columns"
            checkpoints.append(cp)
        assert checkpoints and checkpoints[-1].size == n, (n, checkpoints[-1:])
        pairs = list(itertools.combinations(range(len(checkpoints)), 2))
        sampled = len(pairs) > ALL_PAIRS_UP_TO
        if sampled:
            rest = [(i, j) for i, j in pairs if j > i + 1]
            pairs = [(i, i + 1) for i in range(len(checkpoints) - 1)]
            pairs += rng.sample(rest, SAMPLED_PAIRS)
        for i, j in pairs:
            a, b = checkpoints[i], checkpoints[j]
            proof = ctx.log.consistency_proof(s, a.size, b.size)
            merkle.verify_consistency(a.size, b.size, proof, a.root_hash, b.root_hash)
    named = Counter(body["record"] for body in bodies.values())
    return {
        "entries": n,
        "gaps": gaps,
        "duplicates": duplicates,
        "bodies": bodies,
        "named": named,
        "stored": stored,
        "checkpoints": len(checkpoints),
        "pairs": len(pairs),
        "sampled": sampled,
    }


@pytest.mark.slow
def test_concurrent_posters_and_verifiers(
    settings: Any, ctx: Any, figure: Any, tmp_path: Path
) -> None:
    db = db_kind(settings)
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    print(f"concurrency[{db}] seed {seed} (batch sizes and the verifiers' picks)")
    keys = world(ctx)
    people = People()
    shared = Shared(settings.origin, ctx.log_verifier)
    race = batch("race", *people.records(50, CLASS_OF_BASE[1]))
    plans = [
        [
            (
                base := 1 + (p + b) % 2,
                batch(f"p{p}-b{b}", *people.records(rng.randint(*ROWS), CLASS_OF_BASE[base])),
            )
            for b in range(BATCHES_PER_POSTER)
        ]
        for p in range(POSTERS)
    ]
    log = tmp_path / "server.log"
    # The verifiers would exceed the default rate limit; a 429 here would hide real answers.
    with Server(settings, workers=2, log=log, CELEDGER_VERIFY_RATE_PER_MINUTE="1000000") as server:
        barrier = threading.Barrier(POSTERS)
        posters = [
            threading.Thread(
                target=_poster, args=(n, server.url, keys, plans[n], race, barrier, shared)
            )
            for n in range(POSTERS)
        ]
        verifiers = [
            Verifier(n, server.url, keys, shared, rng.randrange(2**32)) for n in range(VERIFIERS)
        ]
        vthreads = [threading.Thread(target=v.run) for v in verifiers]
        for t in posters + vthreads:
            t.start()
        for t in posters:
            t.join(timeout=600)
        shared.posting_done.set()
        for t in vthreads:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in posters + vthreads), "a client thread hung"
    assert not shared.errors, f"{len(shared.errors)} client errors, first: {shared.errors[:5]}"

    # The race: one post wins, the rest replay its receipt.
    codes = sorted(r.status_code for r in shared.race)
    assert codes == [200] * (POSTERS - 1) + [201], codes
    assert len({r.content for r in shared.race}) == 1, "the replays differ from the receipt"
    race_receipt = shared.race[0].json()
    posted = shared.records + [(1, x["record"], x["log_index"]) for x in race_receipt["records"]]

    found = _ledger_checks(ctx, shared, rng)
    assert found["gaps"] == 0 and found["duplicates"] == 0, found
    # Every acknowledged record once in the ledger, at its receipt's index; nothing else.
    for _, rid, index in posted:
        assert found["named"][rid] == 1, f"record {rid} is named by {found['named'][rid]} entries"
        assert found["bodies"][index]["record"] == rid, (index, rid)
        assert found["stored"][rid] == index, (rid, found["stored"][rid], index)
    assert len(found["bodies"]) == len(posted) == len(found["stored"]), (
        len(found["bodies"]),
        len(posted),
        len(found["stored"]),
    )
    ok, out = audit_clean(settings)
    assert ok, out

    overlap = shared.requests["verifier while posting"]
    assert overlap > 0, "no verification ran while batches were being posted"
    done = sorted(v.done for v in verifiers)
    pairs = (
        f"{found['pairs']} checkpoint pairs consistent (every consecutive pair and a random "
        f"sample of the rest, of {found['checkpoints']} checkpoints)"
        if found["sampled"]
        else f"{found['pairs']} checkpoint pairs consistent (all pairs of "
        f"{found['checkpoints']} signed checkpoints)"
    )
    print("slowest answers (s):", {k: round(v, 2) for k, v in sorted(shared.slowest.items())})
    figure(
        f"concurrency[{db}]: {POSTERS} posters × {BATCHES_PER_POSTER} batches (+1 race, +1 "
        f"retry), {VERIFIERS} verifiers × {done[0]}–{done[-1]} requests "
        f"({shared.requests['verifier']} in all, {overlap} while posting), {found['entries']} "
        f"entries, {found['gaps']} gaps, {found['duplicates']} duplicates, {pairs}, verifier "
        f"errors {len(shared.errors)}"
    )


def test_development_pki_is_made_once_under_concurrent_first_use(tmp_path: Path) -> None:
    """Concurrent first certificates built the development PKI at once and read it half
    written (a 500); now every caller gets the one chain that won."""
    directory = tmp_path / "data" / "pki"
    chains: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def first_use() -> None:
        start.wait()
        try:
            chains.append(DevelopmentPKI.load_or_create(directory).signing_cert.serial_number)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(chains) == 8 and len(set(chains)) == 1, chains
    assert sorted(p.name for p in directory.parent.iterdir()) == ["pki"]  # no staging left
