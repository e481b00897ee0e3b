"""Issuing-key services on SQLite and PostgreSQL: create, rotate, compromise, the ledger entries
each act appends, the sealed private keys (never stored in clear), and the 0004 migration."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.entries import decode_entry
from ledger.issuing import (
    IssuingKeyError,
    active_signer,
    create_issuing_key,
    keyset,
    mark_compromised,
    rotate,
)
from ledger.issuing_models import IssuingKey
from ledger.keyset import KeyCompromisedError, KeyRetiredError, public_multikey
from ledger.note import NoteSigner
from ledger.storage.db import Database
from ledger.storage.log import Log
from ledger.storage.migrate import alembic_config
from ledger.storage.models import Base
from verification.multibase import encode_ed25519_private_multikey

ORIGIN = "test.example/log"
KEK = bytes(range(32))
T0 = datetime(2026, 3, 1, 8, 0, 0, 654321, tzinfo=UTC)  # fractions are truncated
T1 = datetime(2026, 6, 1, tzinfo=UTC)
T2 = datetime(2026, 9, 1, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    d = Database(db_url)
    yield d
    d.dispose()


@pytest.fixture
def log() -> Log:
    return Log(ORIGIN, NoteSigner.generate(ORIGIN))


def entry(db: Database, log: Log, index: int) -> tuple[str, dict[str, object]]:
    """The entry at ``index``, after checking it is included under the signed checkpoint."""
    with db.reader() as s:
        body = Log.entry(s, index)
        cp_row = Log.latest_checkpoint(s)
        assert body is not None and cp_row is not None
        proof = log.inclusion_proof(s, index, cp_row.size)
    cp, _ = open_checkpoint(cp_row.note, ORIGIN, [log.signer.verifier()])
    merkle.verify_inclusion(merkle.leaf_hash(body), index, cp.size, proof, cp.root_hash)
    decoded = decode_entry(body)
    return decoded.kind, dict(decoded.payload)


def test_create_appends_key_added_and_signs(db: Database, log: Log) -> None:
    with db.writer() as s:
        event = create_issuing_key(s, log, KEK, T0)
    key = event.key
    assert key.status == "active" and key.created_at == T0.replace(microsecond=0)
    kind, payload = entry(db, log, event.log_index)
    assert kind == "key.added"
    assert payload == {
        "kid": key.kid,
        "public_key": public_multikey(key.public_key),
        "alg": "Ed25519",
        "use": "issuing",
        "at": "2026-03-01T08:00:00Z",
    }
    with db.reader() as s:
        signer = active_signer(s, KEK)
        ks = keyset(s)
    assert signer.kid == key.kid and signer.public_key_bytes == key.public_key
    assert ks.keys == (key,) and ks.active == key
    message = b"hello"
    ks.key_for(key.kid, T1).verifier().verify(signer.sign(message), message)


def test_a_second_create_is_refused(db: Database, log: Log) -> None:
    with db.writer() as s:
        kid = create_issuing_key(s, log, KEK, T0).key.kid
    with (
        pytest.raises(IssuingKeyError, match=f"expected no active key, found '{kid}'; rotate"),
        db.writer() as s,
    ):
        create_issuing_key(s, log, KEK, T1)


def test_rotate_retires_the_previous_key_at_the_same_instant(db: Database, log: Log) -> None:
    with db.writer() as s:
        first = create_issuing_key(s, log, KEK, T0).key
    with db.writer() as s:
        event = rotate(s, log, KEK, T1)
    second = event.key
    assert second.status == "active" and second.created_at == T1 and second.kid != first.kid
    assert entry(db, log, event.log_index) == (
        "key.added",
        {
            "kid": second.kid,
            "public_key": second.multikey,
            "alg": "Ed25519",
            "use": "issuing",
            "at": "2026-06-01T00:00:00Z",
        },
    )
    assert entry(db, log, event.log_index + 1) == (
        "key.retired",
        {"kid": first.kid, "at": "2026-06-01T00:00:00Z", "successor": second.kid},
    )
    with db.reader() as s:
        ks = keyset(s)
        assert active_signer(s, KEK).kid == second.kid
        row = s.get(IssuingKey, first.kid)
        assert row is not None and row.retired_log_index == event.log_index + 1
    old = ks.get(first.kid)
    assert old.status == "retired" and old.retired_at == T1
    # Signed before the rotation: still valid; at or after it: refused.
    assert ks.key_for(first.kid, T1 - timedelta(seconds=1)) == old
    with pytest.raises(KeyRetiredError):
        ks.key_for(first.kid, T1)


def test_rotate_without_a_key_creates_one_and_refuses_going_back_in_time(
    db: Database, log: Log
) -> None:
    with db.writer() as s:
        event = rotate(s, log, KEK, T1)
    assert entry(db, log, event.log_index)[0] == "key.added"
    with db.reader() as s:
        assert Log.size(s) == 1  # no key.retired: there was nothing to retire
    with (
        pytest.raises(IssuingKeyError, match="at or after the active key's creation"),
        db.writer() as s,
    ):
        rotate(s, log, KEK, T0)


def test_mark_compromised(db: Database, log: Log) -> None:
    with db.writer() as s:
        first = create_issuing_key(s, log, KEK, T0).key
    with db.writer() as s:
        second = rotate(s, log, KEK, T1).key
    with db.writer() as s:
        event = mark_compromised(s, log, first.kid, T1 - timedelta(days=10), "备份介质遗失", now=T2)
    assert entry(db, log, event.log_index) == (
        "key.compromised",
        {
            "kid": first.kid,
            "compromised_at": "2026-05-22T00:00:00Z",
            "reason": "备份介质遗失",
            "recorded_at": "2026-09-01T00:00:00Z",
        },
    )
    with db.reader() as s:
        ks = keyset(s)
        row = s.get(IssuingKey, first.kid)
        assert row is not None and row.compromise_reason == "备份介质遗失"
    bad = ks.get(first.kid)
    assert bad.status == "compromised" and bad.retired_at == T1
    assert ks.key_for(first.kid, T1 - timedelta(days=11)) == bad  # before the compromise: valid
    with pytest.raises(KeyCompromisedError):
        ks.key_for(first.kid, T1 - timedelta(days=10))
    assert ks.active is not None and ks.active.kid == second.kid

    # The compromise time may only move earlier.
    with (
        pytest.raises(
            IssuingKeyError,
            match="already compromised from 2026-05-22T00:00:00Z: expected an earlier time",
        ),
        db.writer() as s,
    ):
        mark_compromised(s, log, first.kid, T1, "later", now=T2)
    with db.writer() as s:
        mark_compromised(s, log, first.kid, T0 + timedelta(days=1), "earlier", now=T2)
    with db.reader() as s:
        compromised_at = keyset(s).get(first.kid).compromised_at
    assert compromised_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kid", "at", "reason", "message"),
    [
        ("nosuchk1", T1, "x", "issuing key 'nosuchk1': expected one of"),
        (None, T2 + timedelta(days=1), "x", "expected a time not after now"),
        (None, T1, "  ", "expected a non-empty text"),
    ],
)
def test_mark_compromised_refusals(
    db: Database, log: Log, kid: str | None, at: datetime, reason: str, message: str
) -> None:
    with db.writer() as s:
        real = create_issuing_key(s, log, KEK, T0).key.kid
    with pytest.raises(IssuingKeyError, match=message), db.writer() as s:
        mark_compromised(s, log, kid or real, at, reason, now=T2)


def test_compromising_the_active_key_stops_issuing_until_rotation(db: Database, log: Log) -> None:
    with db.writer() as s:
        kid = create_issuing_key(s, log, KEK, T0).key.kid
    with db.writer() as s:
        mark_compromised(s, log, kid, T1, "签名服务器被入侵", now=T1)
    with pytest.raises(IssuingKeyError, match="no active issuing key"), db.reader() as s:
        active_signer(s, KEK)
    with db.writer() as s:
        new = rotate(s, log, KEK, T2)
    with db.reader() as s:
        assert active_signer(s, KEK).kid == new.key.kid
        assert Log.size(s) == 3  # added, compromised, added: nothing to retire


def test_wrong_or_short_kek_is_refused(db: Database, log: Log) -> None:
    with db.writer() as s:
        create_issuing_key(s, log, KEK, T0)
    with (
        pytest.raises(IssuingKeyError, match="cannot open the sealed private key"),
        db.reader() as s,
    ):
        active_signer(s, bytes(32))
    with (
        pytest.raises(IssuingKeyError, match=r"expected 32 bytes \(AES-256\), found 16 bytes"),
        db.writer() as s,
    ):
        create_issuing_key(s, log, KEK[:16], T0)


def test_a_sealed_key_does_not_open_on_another_row(db: Database, log: Log) -> None:
    with db.writer() as s:
        old = create_issuing_key(s, log, KEK, T0).key.kid
    with db.writer() as s:
        new = rotate(s, log, KEK, T1).key.kid
    with db.writer() as s:
        sealed = s.get(IssuingKey, old).sealed_private_key  # type: ignore[union-attr]
        s.execute(update(IssuingKey).where(IssuingKey.kid == new).values(sealed_private_key=sealed))
    # The kid is the associated data: the old key's ciphertext fails authentication here.
    with (
        pytest.raises(IssuingKeyError, match=f"issuing key '{new}': cannot open"),
        db.reader() as s,
    ):
        active_signer(s, KEK)


def test_the_database_allows_one_active_key(db: Database, log: Log) -> None:
    with db.writer() as s:
        key = create_issuing_key(s, log, KEK, T0).key
    other = IssuingKey(
        kid="otherkid", public_key=b"\x01" * 32, sealed_private_key=b"x", status="active",
        created_at=T1, log_index=99,
    )  # fmt: skip
    with pytest.raises(IntegrityError), db.writer() as s:
        s.add(other)
    other.status, other.retired_at = "retired", T2  # the same row, not active: accepted
    with db.writer() as s:
        s.add(other)
    with pytest.raises(IntegrityError), db.writer() as s:
        s.execute(update(IssuingKey).where(IssuingKey.kid == key.kid).values(status="lost"))


def _secret_spellings(seed: bytes, signer_key: object) -> list[bytes]:
    return [
        seed,
        seed.hex().encode(),
        seed.hex().upper().encode(),
        base64.b64encode(seed).rstrip(b"="),
        base64.urlsafe_b64encode(seed).rstrip(b"="),
        encode_ed25519_private_multikey(signer_key).encode(),  # type: ignore[arg-type]
    ]


def test_private_keys_are_never_stored_in_clear(db: Database, log: Log, db_url: str) -> None:
    seeds = []
    with db.writer() as s:
        create_issuing_key(s, log, KEK, T0)
    with db.reader() as s:
        seeds.append(active_signer(s, KEK).private_key)
    with db.writer() as s:
        rotate(s, log, KEK, T1)
    with db.writer() as s:
        mark_compromised(s, log, keyset(s).keys[0].kid, T0, "test", now=T2)
    with db.reader() as s:
        seeds.append(active_signer(s, KEK).private_key)
    needles = [n for k in seeds for n in _secret_spellings(k.private_bytes_raw(), k)]

    # Every value of every table, both databases (log entries, checkpoints, issuing_keys, …).
    cells = 0
    with db.reader() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                for value in row:
                    data = value if isinstance(value, bytes) else str(value).encode()
                    cells += 1
                    for needle in needles:
                        assert needle not in data, f"private key material in {table.name}"
    assert cells > 20
    # And the raw database bytes where we can read them (SQLite: the file and its WAL).
    if db_url.startswith("sqlite"):
        db.dispose()
        path = Path(make_url(db_url).database or "")
        files = [p for p in path.parent.glob(path.name + "*") if p.is_file()]
        assert files
        for p in files:
            blob = p.read_bytes()
            for needle in needles:
                assert needle not in blob, f"private key material in {p.name}"


def test_migration_0004_down_and_up(db_url: str) -> None:
    def tables() -> set[str]:
        engine = create_engine(db_url)
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    assert "issuing_keys" in tables()
    command.downgrade(alembic_config(db_url), "0003")
    assert "issuing_keys" not in tables() and "log_entries" in tables()
    command.upgrade(alembic_config(db_url), "head")
    assert "issuing_keys" in tables()
    engine = create_engine(db_url)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM issuing_keys")).scalar_one() == 0
    engine.dispose()
