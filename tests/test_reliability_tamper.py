"""Tampering (issue #9): with the append-only triggers bypassed, random changes to the stored
ledger are all caught by the audit, which names the first bad index.

One ledger per database: the demo world (governance entries), completion batches of 1 to ~300
records, corrections and revocations — about 1,500 entries under a hundred or so signed
checkpoints, ending in a partial tile that several single-entry appends cut.  Then
``MUTATIONS`` random changes, one at a time: each is applied in a transaction with the
triggers off (PostgreSQL: ``SET LOCAL session_replication_role = replica``; SQLite: the
triggers dropped inside the transaction), audited through that transaction's own connection
(``audit_local``) and rolled back, so that every change starts from the pristine ledger.  A
few are instead committed to a copy of the database and audited by ``python -m api.cli audit``
for its exit code and message.

The first bad index each change must be reported at is worked out from the change alone, by
the rules in ``ledger.storage.audit``'s docstring: the changed, deleted or moved entry; the
first entry under a changed tile node; the first entry past the latest checkpoint, or the first
one the log lacks; a checkpoint's last entry (size − 1) when the checkpoint is what is wrong;
and, for a change that only a checkpoint's root can see (entries of the partial tile at the
right edge, whose only stored hash is their own), the size of the last checkpoint before it.

Not counted, because they leave tables the log could have written itself (the audit's
docstring says why): deleting a checkpoint other than the latest, and truncating entries,
tiles and checkpoints together down to an earlier checkpoint.  Nor ``log_checkpoints.signed_at``
(not signed: nothing to check it against) or ``log_leaf_index`` (a lookup outside the ledger,
rebuilt from the entries).  The seed is printed and can be set with
``CELEDGER_RELIABILITY_SEED`` to replay a run.
"""

from __future__ import annotations

import math
import os
import random
import secrets
import sqlite3
import subprocess
import sys
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ledger.canonical import canonicalize
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entries import KINDS, encode_entry
from ledger.merkle import leaf_hash
from ledger.note import NoteSigner, format_signature_line
from ledger.storage import audit as audit_module
from ledger.storage.audit import AuditReport, audit_local
from ledger.storage.log import Log
from ledger.storage.models import drop_append_only_ddl
from ledger.tiles import TILE_WIDTH
from tests.completions_support import BATCHES, batch, id_number, record, world

MUTATIONS = 1000  # per database
CLI_KINDS = ("entry-body-byte", "entry-swap", "tile-byte", "checkpoint-forged", "truncate")
CITY = "authority:CN-SC-PZH"
ROOT = Path(__file__).resolve().parent.parent
TILE_BYTES = (2 * TILE_WIDTH - 1) * 32


def seed() -> int:
    env = os.environ.get("CELEDGER_RELIABILITY_SEED")
    return int(env) if env else random.SystemRandom().randrange(2**32)


# -- the pristine ledger ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    idx: int
    leaf: bytes
    body: bytes
    kind: str


@dataclass
class Ledger:
    """What the database held before any change, read back in full."""

    entries: list[Row]
    tiles: dict[tuple[int, int], bytes]
    checkpoints: dict[int, tuple[bytes, str]]  # size → (root_hash, note)
    origin: str
    signer: NoteSigner  # the log's own key: for lies it signed
    forger: NoteSigner  # same key name, another key

    @property
    def n(self) -> int:
        return len(self.entries)

    @property
    def full(self) -> int:
        """Entries under stored full level-0 tiles; the rest have no stored hash but their own."""
        return self.n // TILE_WIDTH * TILE_WIDTH

    @property
    def sizes(self) -> list[int]:
        return sorted(self.checkpoints)

    def last_checkpoint_at_or_before(self, index: int) -> int:
        k = bisect_right(self.sizes, index)
        return self.sizes[k - 1] if k else 0

    def checkpoint_before(self, size: int) -> int:
        return self.last_checkpoint_at_or_before(size - 1)

    def hidden(self, index: int) -> int:
        """Where a change to entry ``index`` that leaves its own row consistent (its leaf hash
        and kind still match its body) is reported: exactly, when a stored tile covers it;
        else at the last checkpoint before it, the first that still agrees."""
        return index if index < self.full else self.last_checkpoint_at_or_before(index)


def _read_ledger(ctx: Any) -> Ledger:
    with ctx.db.reader() as s:
        entries = [
            Row(int(i), bytes(h), bytes(b), str(k))
            for i, h, b, k in s.execute(
                text("SELECT idx, leaf_hash, body, kind FROM log_entries ORDER BY idx")
            )
        ]
        tiles = {
            (int(lvl), int(i)): bytes(nodes)
            for lvl, i, nodes in s.execute(text("SELECT level, idx, nodes FROM log_tiles"))
        }
        cps = {
            int(size): (bytes(root), str(note))
            for size, root, note in s.execute(
                text("SELECT size, root_hash, note FROM log_checkpoints")
            )
        }
    assert [e.idx for e in entries] == list(range(len(entries)))
    return Ledger(
        entries, tiles, cps, ctx.settings.origin, ctx.log.signer,
        NoteSigner.generate(ctx.settings.origin),
    )  # fmt: skip


def _people(start: int, count: int) -> list[dict[str, Any]]:
    """Records of people nobody else in the ledger is (a person is posted once per class)."""
    out = []
    for k in range(start, start + count):
        born = date(1960, 1, 1) + timedelta(days=k // 1000)
        out.append(record(k, id_number=id_number(k, birth=f"{born:%Y%m%d}")))
    return out


def _build(client: Any, ctx: Any, rng: random.Random) -> None:
    """Governance entries (the demo world), completion batches, then corrections and
    revocations: single-entry appends, so that checkpoints fall close together at the end."""
    keys = world(ctx)
    posted: list[str] = []
    people = 0
    while people < 1200:
        count = int(math.exp(rng.uniform(0, math.log(300))))
        r = client.post(
            BATCHES, json=batch(f"b{people}", *_people(people, count)), headers=keys["base:1"]
        )
        assert r.status_code == 201, r.text
        posted += [x["record"] for x in r.json()["records"]]
        people += count
    # Fill the partial tile, so that the 18 entries below (15 appends) all fall in the next
    # one, whatever sizes the batches above happened to have.
    with ctx.db.reader() as s:
        pad = -Log.size(s) % TILE_WIDTH
    if pad:
        r = client.post(BATCHES, json=batch("pad", *_people(people, pad)), headers=keys["base:1"])
        assert r.status_code == 201, r.text
        people += pad
    for rid in rng.sample(posted, 12):
        if rng.random() < 0.5:
            r = client.post(
                f"/api/v1/completions/{rid}/corrections",
                json={"reason": "学时录入错误", "changes": {"hours": "20"}},
                headers=keys["base:1"],
            )
        else:
            r = client.post(
                f"/api/v1/completions/{rid}/revocation",
                json={"reason_code": "fraud", "reason": "经查实，该学员未实际参加培训"},
                headers=keys[CITY],
            )
        assert r.status_code == 201, r.text
    for count in (3, 1, 2):
        r = client.post(
            BATCHES,
            json=batch(f"tail{people}", *_people(people, count)),
            headers=keys["base:1"],
        )
        assert r.status_code == 201, r.text
        people += count


# -- mutations -------------------------------------------------------------------------------

Statement = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Mutation:
    kind: str
    statements: list[Statement]
    expected: int | None  # the first bad index the audit must name (None: the log as a whole)
    what: str


def _flip(rng: random.Random, data: bytes, positions: list[int] | None = None) -> bytes:
    pos = rng.choice(positions) if positions else rng.randrange(len(data))
    return data[:pos] + bytes([data[pos] ^ rng.randrange(1, 256)]) + data[pos + 1 :]


def _first_leaf_under(pos: int) -> int:
    """The first base position under node ``pos`` of a tile (256 base hashes, then 128 parents
    of them, … then the root)."""
    start, height = 0, 0
    while pos >= start + (TILE_WIDTH >> height):
        start += TILE_WIDTH >> height
        height += 1
    return (pos - start) << height


def _tile_leaf(level: int, idx: int, node: int = 0) -> int:
    unit: int = TILE_WIDTH**level
    return idx * TILE_WIDTH * unit + _first_leaf_under(node) * unit


def _entry_row(idx: int, leaf: bytes, body: bytes, kind: str) -> Statement:
    return (
        "INSERT INTO log_entries (idx, leaf_hash, kind, body) VALUES (:i, :h, :k, :b)",
        {"i": idx, "h": leaf, "k": kind, "b": body},
    )


def _set_entry(idx: int, **cols: Any) -> Statement:
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    return f"UPDATE log_entries SET {sets} WHERE idx = :i", {"i": idx, **cols}


def _set_checkpoint(size: int, **cols: Any) -> Statement:
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    return f"UPDATE log_checkpoints SET {sets} WHERE size = :s", {"s": size, **cols}


def _new_checkpoint(size: int, root: bytes, note: str) -> Statement:
    return (
        "INSERT INTO log_checkpoints (size, root_hash, note, signed_at) "
        "VALUES (:s, :r, :n, CURRENT_TIMESTAMP)",
        {"s": size, "r": root, "n": note},
    )


Maker = Callable[[random.Random, Ledger], Mutation | None]


def _entry_body_byte(rng: random.Random, lg: Ledger) -> Mutation:
    e = rng.choice(lg.entries)
    return Mutation(
        "entry-body-byte", [_set_entry(e.idx, body=_flip(rng, e.body))], e.idx, f"entry {e.idx}"
    )


def _entry_leaf_byte(rng: random.Random, lg: Ledger) -> Mutation:
    e = rng.choice(lg.entries)
    return Mutation(
        "entry-leaf-byte", [_set_entry(e.idx, leaf_hash=_flip(rng, e.leaf))], e.idx, f"{e.idx}"
    )


def _entry_rehashed(rng: random.Random, lg: Ledger) -> Mutation:
    """A byte of the body changed and its leaf hash recomputed: only tiles and checkpoints
    can tell.  The byte is outside the ``"kind"`` member, which the kind check would catch."""
    e = rng.choice(lg.entries)
    tag = b'"kind":' + canonicalize(e.kind)
    at = e.body.find(tag)
    outside = [p for p in range(len(e.body)) if not at <= p < at + len(tag)]
    body = _flip(rng, e.body, outside)
    return Mutation(
        "entry-rehashed",
        [_set_entry(e.idx, body=body, leaf_hash=leaf_hash(body))],
        lg.hidden(e.idx),
        f"entry {e.idx}",
    )


def _entry_kind(rng: random.Random, lg: Ledger) -> Mutation:
    e = rng.choice(lg.entries)
    if rng.random() < 0.5:
        kind = rng.choice(sorted(KINDS - {e.kind}))
    else:
        pos = rng.randrange(len(e.kind))
        kind = e.kind[:pos] + rng.choice([c for c in "abcxyz._" if c != e.kind[pos]])
        kind += e.kind[pos + 1 :]
    return Mutation("entry-kind", [_set_entry(e.idx, kind=kind)], e.idx, f"{e.kind} → {kind}")


def _entry_delete(rng: random.Random, lg: Ledger) -> Mutation:
    i = rng.randrange(lg.n)
    return Mutation(
        "entry-delete", [("DELETE FROM log_entries WHERE idx = :i", {"i": i})], i, f"entry {i}"
    )


def _entry_swap(rng: random.Random, lg: Ledger) -> Mutation:
    # Half the time both in the partial tile, where only the checkpoints can see it.
    lo = lg.full if rng.random() < 0.5 and lg.n - lg.full >= 2 else 0
    i, j = sorted(rng.sample(range(lo, lg.n), 2))
    a, b = lg.entries[i], lg.entries[j]
    return Mutation(
        "entry-swap",
        [
            _set_entry(i, leaf_hash=b.leaf, body=b.body, kind=b.kind),
            _set_entry(j, leaf_hash=a.leaf, body=a.body, kind=a.kind),
        ],
        lg.hidden(i),
        f"entries {i} and {j}",
    )


def _entry_renumber(rng: random.Random, lg: Ledger) -> Mutation:
    i = rng.randrange(lg.n)
    to = lg.n + rng.randrange(0, 5) if rng.random() < 0.5 else -rng.randrange(1, 5)
    return Mutation(
        "entry-renumber",
        [("UPDATE log_entries SET idx = :to WHERE idx = :i", {"i": i, "to": to})],
        i,
        f"entry {i} → {to}",
    )


def _entry_insert_end(rng: random.Random, lg: Ledger) -> Mutation:
    """Rows appended after the latest checkpoint: a copy of an entry, or new bytes."""
    rows = []
    for k in range(rng.randrange(1, 4)):
        if rng.random() < 0.5:
            e = rng.choice(lg.entries)
            body, kind = e.body, e.kind
        else:
            body = encode_entry("policy", {"forged": secrets.token_hex(8)})
            kind = "policy"
        rows.append(_entry_row(lg.n + k, leaf_hash(body), body, kind))
    # Rows that complete a tile leave that tile missing, which starts earlier.
    first = lg.n if (lg.n + len(rows)) // TILE_WIDTH == lg.n // TILE_WIDTH else lg.full
    return Mutation("entry-insert-end", rows, first, f"{len(rows)} rows at {lg.n}")


def _entry_insert_elsewhere(rng: random.Random, lg: Ledger) -> Mutation:
    """A row after a gap past the end (the first missing index is named), or at a negative
    index (the log as a whole: no index of the tree is wrong)."""
    e = rng.choice(lg.entries)
    if rng.random() < 0.5:
        at, first = lg.n + rng.randrange(1, 1000), lg.n
    else:
        at, first = -rng.randrange(1, 1000), None
    return Mutation(
        "entry-insert-elsewhere", [_entry_row(at, e.leaf, e.body, e.kind)], first, f"at {at}"
    )


def _truncate(rng: random.Random, lg: Ledger) -> Mutation:
    """The tail deleted from index t, with or without the tiles the shorter tree lacks; the
    checkpoints past t remain and name t as the first missing entry."""
    t = rng.randrange(1, lg.n)
    stmts: list[Statement] = [("DELETE FROM log_entries WHERE idx >= :t", {"t": t})]
    if rng.random() < 0.5:
        stmts.append(("DELETE FROM log_tiles WHERE level = 0 AND idx >= :k", {"k": t // 256}))
    return Mutation("truncate", stmts, t, f"from {t}")


def _truncate_unaligned(rng: random.Random, lg: Ledger) -> Mutation | None:
    """Entries, tiles and checkpoints all cut at t, between two checkpoints: the entries from
    the last remaining checkpoint to t are signed by none."""
    t = rng.randrange(1, lg.n)
    if t in lg.checkpoints:
        return None  # the log could have written that itself: not counted (see the docstring)
    return Mutation(
        "truncate-with-checkpoints",
        [
            ("DELETE FROM log_entries WHERE idx >= :t", {"t": t}),
            ("DELETE FROM log_tiles WHERE level = 0 AND idx >= :k", {"k": t // 256}),
            ("DELETE FROM log_checkpoints WHERE size > :t", {"t": t}),
        ],
        lg.checkpoint_before(t + 1),
        f"at {t}",
    )


def _tiles(lg: Ledger) -> list[tuple[int, int]]:
    return sorted(lg.tiles)


def _tile_byte(rng: random.Random, lg: Ledger) -> Mutation:
    level, idx = rng.choice(_tiles(lg))
    blob = lg.tiles[(level, idx)]
    pos = rng.randrange(len(blob))
    changed = blob[:pos] + bytes([blob[pos] ^ rng.randrange(1, 256)]) + blob[pos + 1 :]
    return Mutation(
        "tile-byte",
        [(_SET_TILE, {"n": changed, "l": level, "i": idx})],
        _tile_leaf(level, idx, pos // 32),
        f"tile {level}/{idx} byte {pos}",
    )


_SET_TILE = "UPDATE log_tiles SET nodes = :n WHERE level = :l AND idx = :i"


def _tile_length(rng: random.Random, lg: Ledger) -> Mutation:
    level, idx = rng.choice(_tiles(lg))
    blob = lg.tiles[(level, idx)]
    if rng.random() < 0.5:
        cut = rng.randrange(1, 200)
        changed, node = blob[:-cut], (len(blob) - cut) // 32
    else:
        changed, node = blob + secrets.token_bytes(rng.randrange(1, 64)), 2 * TILE_WIDTH - 2
    return Mutation(
        "tile-length",
        [(_SET_TILE, {"n": changed, "l": level, "i": idx})],
        # A longer tile is wrong as a whole: its first entry, as for its root (the last node).
        _tile_leaf(level, idx, node),
        f"tile {level}/{idx} of {len(changed)} bytes",
    )


def _tile_delete(rng: random.Random, lg: Ledger) -> Mutation:
    if rng.random() < 0.2:
        return Mutation("tile-delete", [("DELETE FROM log_tiles", {})], 0, "every tile")
    level, idx = rng.choice(_tiles(lg))
    return Mutation(
        "tile-delete",
        [("DELETE FROM log_tiles WHERE level = :l AND idx = :i", {"l": level, "i": idx})],
        _tile_leaf(level, idx),
        f"tile {level}/{idx}",
    )


def _tile_move(rng: random.Random, lg: Ledger) -> Mutation:
    level, idx = rng.choice(_tiles(lg))
    to = idx + rng.randrange(50, 5000)
    return Mutation(
        "tile-move",
        [
            (
                "UPDATE log_tiles SET idx = :to WHERE level = :l AND idx = :i",
                {"l": level, "i": idx, "to": to},
            )
        ],
        _tile_leaf(level, idx),
        f"tile {level}/{idx} → {to}",
    )


def _tile_plant(rng: random.Random, lg: Ledger) -> Mutation:
    """A full tile the tree does not have: the partial one at the edge, one further on, one a
    level up; or at a negative index (the log as a whole)."""
    choice = rng.randrange(4)
    if choice == 3:
        level, idx, first = 0, -rng.randrange(1, 100), None
    else:
        level = 1 if choice == 2 else 0
        edge = (lg.n >> (8 * level)) // TILE_WIDTH
        idx = edge + (rng.randrange(1, 100) if choice == 1 else 0)
        first = max(_tile_leaf(level, idx), lg.n)
    return Mutation(
        "tile-plant",
        [
            (
                "INSERT INTO log_tiles (level, idx, nodes) VALUES (:l, :i, :n)",
                {"l": level, "i": idx, "n": secrets.token_bytes(TILE_BYTES)},
            )
        ],
        first,
        f"tile {level}/{idx}",
    )


def _a_checkpoint(rng: random.Random, lg: Ledger) -> tuple[int, bytes, str]:
    size = rng.choice(lg.sizes)
    root, note = lg.checkpoints[size]
    return size, root, note


def _checkpoint_forged(rng: random.Random, lg: Ledger) -> Mutation:
    """The same checkpoint signed by another key under the log's name."""
    size, root, _ = _a_checkpoint(rng, lg)
    note = sign_checkpoint(Checkpoint(lg.origin, size, root), lg.forger)
    return Mutation(
        "checkpoint-forged", [_set_checkpoint(size, note=note)], size - 1, f"checkpoint {size}"
    )


def _checkpoint_lie(rng: random.Random, lg: Ledger) -> Mutation:
    """A wrong root signed by the log's own key, the root column made to match.  A later
    checkpoint that agrees with the entries convicts it; the latest has none, and then the
    entries after the previous checkpoint are what can no longer be vouched for."""
    size, _, _ = _a_checkpoint(rng, lg)
    lie = secrets.token_bytes(32)
    note = sign_checkpoint(Checkpoint(lg.origin, size, lie), lg.signer)
    expected = size - 1 if size < lg.sizes[-1] else lg.checkpoint_before(size)
    return Mutation(
        "checkpoint-lie",
        [_set_checkpoint(size, note=note, root_hash=lie)],
        expected,
        f"checkpoint {size}",
    )


def _checkpoint_inconsistent(rng: random.Random, lg: Ledger) -> Mutation:
    """A note signed by the log's key that disagrees with the row's own columns: another
    size, or another root than the column holds."""
    size, root, _ = _a_checkpoint(rng, lg)
    if rng.random() < 0.5:
        other = Checkpoint(lg.origin, size + rng.choice([-1, 1]), root)
    else:
        other = Checkpoint(lg.origin, size, secrets.token_bytes(32))
    note = sign_checkpoint(other, lg.signer)
    return Mutation(
        "checkpoint-inconsistent",
        [_set_checkpoint(size, note=note)],
        size - 1,
        f"checkpoint {size} as {other.size}",
    )


def _checkpoint_bytes(rng: random.Random, lg: Ledger) -> Mutation:
    """A byte of the root column, a character of the note, or an extra signature line."""
    size, root, note = _a_checkpoint(rng, lg)
    choice = rng.randrange(3)
    if choice == 0:
        stmt = _set_checkpoint(size, root_hash=_flip(rng, root))
    elif choice == 1:
        pos = rng.randrange(len(note))
        ch = rng.choice([c for c in "ABCabc019+/= \n" if c != note[pos]])
        stmt = _set_checkpoint(size, note=note[:pos] + ch + note[pos + 1 :])
    else:
        extra = format_signature_line(lg.forger.name, lg.forger.key_id, secrets.token_bytes(64))
        stmt = _set_checkpoint(size, note=note + extra)
    return Mutation("checkpoint-bytes", [stmt], size - 1, f"checkpoint {size} ({choice})")


def _checkpoint_delete_latest(rng: random.Random, lg: Ledger) -> Mutation:
    size = lg.sizes[-1]
    return Mutation(
        "checkpoint-delete-latest",
        [("DELETE FROM log_checkpoints WHERE size = :s", {"s": size})],
        lg.checkpoint_before(size),
        f"checkpoint {size}",
    )


def _checkpoint_plant(rng: random.Random, lg: Ledger) -> Mutation:
    """An extra checkpoint: past the end of the log (signed by the log's key), or at a size
    the log never signed, with a wrong root signed by the log's key or by another key."""
    choice = rng.randrange(3)
    if choice == 0:
        size = lg.n + rng.randrange(1, 1000)
        signer, expected = lg.signer, lg.n
    else:
        free = sorted(set(range(1, lg.n)) - set(lg.checkpoints))
        size = rng.choice(free)
        signer, expected = (lg.signer if choice == 1 else lg.forger), size - 1
    root = secrets.token_bytes(32)
    note = sign_checkpoint(Checkpoint(lg.origin, size, root), signer)
    return Mutation(
        "checkpoint-plant", [_new_checkpoint(size, root, note)], expected, f"size {size}"
    )


def _sqlite_types(rng: random.Random, lg: Ledger) -> Mutation:
    """SQLite keeps whatever type it is given: the right bytes as the wrong type."""
    e = rng.choice(lg.entries)
    size = rng.choice(lg.sizes)
    level, idx = rng.choice(_tiles(lg))
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("UPDATE log_entries SET body = CAST(body AS TEXT) WHERE idx = :i", {"i": e.idx}, e.idx),
        (
            "UPDATE log_entries SET leaf_hash = CAST(leaf_hash AS TEXT) WHERE idx = :i",
            {"i": e.idx},
            e.idx,
        ),
        ("UPDATE log_entries SET kind = CAST(kind AS BLOB) WHERE idx = :i", {"i": e.idx}, e.idx),
        (
            "UPDATE log_entries SET kind = CAST(X'FF' || CAST(kind AS BLOB) AS TEXT) "
            "WHERE idx = :i",
            {"i": e.idx},
            e.idx,
        ),
        (
            "UPDATE log_checkpoints SET note = CAST(note AS BLOB) WHERE size = :s",
            {"s": size},
            size - 1,
        ),
        (
            "UPDATE log_checkpoints SET root_hash = CAST(root_hash AS TEXT) WHERE size = :s",
            {"s": size},
            size - 1,
        ),
        (
            "UPDATE log_tiles SET nodes = CAST(nodes AS TEXT) WHERE level = :l AND idx = :i",
            {"l": level, "i": idx},
            _tile_leaf(level, idx),
        ),
    ]
    k = rng.randrange(len(cases))
    sql, params, expected = cases[k]
    return Mutation("sqlite-types", [(sql, params)], expected, f"case {k}")


MAKERS: list[Maker] = [
    _entry_body_byte,
    _entry_leaf_byte,
    _entry_rehashed,
    _entry_kind,
    _entry_delete,
    _entry_swap,
    _entry_renumber,
    _entry_insert_end,
    _entry_insert_elsewhere,
    _truncate,
    _truncate_unaligned,
    _tile_byte,
    _tile_length,
    _tile_delete,
    _tile_move,
    _tile_plant,
    _checkpoint_forged,
    _checkpoint_lie,
    _checkpoint_inconsistent,
    _checkpoint_bytes,
    _checkpoint_delete_latest,
    _checkpoint_plant,
]


def _mutations(rng: random.Random, lg: Ledger, dialect: str, count: int) -> list[Mutation]:
    makers = MAKERS + ([_sqlite_types] if dialect == "sqlite" else [])
    out: list[Mutation] = []
    while len(out) < count:
        m = rng.choice(makers)(rng, lg)
        if m is not None:
            out.append(m)
    return out


# -- applying and auditing -------------------------------------------------------------------


def _bypass(session: Session, dialect: str) -> None:
    """Switch the append-only triggers off for this transaction only."""
    if dialect == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        for stmt in drop_append_only_ddl(dialect):
            session.execute(text(stmt))


def _apply(session: Session, dialect: str, m: Mutation) -> None:
    _bypass(session, dialect)
    for sql, params in m.statements:
        session.execute(text(sql), params)


def _verdict(m: Mutation, report: AuditReport) -> str | None:
    """None when the audit caught the change at the expected index; else what went wrong."""
    first = report.first
    if first is None:
        return f"{m.kind} ({m.what}): not detected"
    if first.index != m.expected:
        return f"{m.kind} ({m.what}): expected the first bad index {m.expected}, found {first}"
    return None


def _figure_line(db: str, n: int, kinds: int, detected: int, right: int, s: int) -> str:
    return (
        f"tamper[{db}]: {n} mutations ({kinds} kinds), {detected} detected "
        f"({100 * detected / n:.1f}%), first bad index right {right}/{n} (seed {s})"
    )


def _audit_cli(settings: Any, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
    env.update(
        CELEDGER_DATA_DIR=str(settings.data_dir),
        CELEDGER_DATABASE_URL=url,
        CELEDGER_ORIGIN=settings.origin,
        CELEDGER_PUBLIC_URL=settings.public_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "audit"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_database(ctx: Any, tmp_path: Path, name: str) -> tuple[str, Callable[[], None]]:
    """A committed copy of the test database (the CLI runs in another process, which cannot
    see an uncommitted change) and how to drop it."""
    url = make_url(ctx.settings.database_url)
    if ctx.db.dialect == "sqlite":
        path = tmp_path / f"{name}.db"
        # VACUUM INTO copies what the WAL holds too; it cannot run inside a transaction, which
        # the engine's connections always begin.
        raw = sqlite3.connect(str(url.database), isolation_level=None)
        try:
            raw.execute("VACUUM INTO ?", (str(path),))
        finally:
            raw.close()
        return str(url.set(database=str(path))), lambda: None
    ctx.db.dispose()  # CREATE DATABASE … TEMPLATE needs the source to have no sessions
    copy = f"{url.database}_{name}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{url.database}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=copy).render_as_string(hide_password=False), drop


def _check_cli(ctx: Any, tmp_path: Path, m: Mutation, name: str) -> None:
    url, drop = _copy_database(ctx, tmp_path, name)
    try:
        engine = create_engine(url)
        with Session(engine) as s, s.begin():
            _apply(s, ctx.db.dialect, m)
        engine.dispose()
        r = _audit_cli(ctx.settings, url)
    finally:
        drop()
    where = "log" if m.expected is None else f"index {m.expected}"
    assert r.returncode == 1, (m, r.stdout, r.stderr)
    assert f"FIRST DIVERGENCE: {where}: " in r.stdout, (m, r.stdout)
    assert "expected" in r.stdout and "found" in r.stdout


@pytest.mark.slow
def test_every_change_to_the_stored_ledger_is_found_at_its_index(
    client: Any, ctx: Any, figure: Any, tmp_path: Path
) -> None:
    s = seed()
    db = ctx.db.dialect
    print(f"tamper[{db}] seed {s} (set CELEDGER_RELIABILITY_SEED={s} to replay)")
    rng = random.Random(s)
    _build(client, ctx, rng)
    lg = _read_ledger(ctx)
    assert lg.n > 4 * TILE_WIDTH and lg.n - lg.full >= 6, (lg.n, lg.full)
    # Several checkpoints inside the partial tile: a change there is placed between them.
    assert len([c for c in lg.sizes if c > lg.full]) >= 4, lg.sizes[-10:]
    with ctx.db.reader() as r:
        assert audit_local(r, lg.origin, [ctx.log_verifier]).ok

    mutations = _mutations(rng, lg, db, MUTATIONS)
    failures: list[str] = []
    detected = right = 0
    for m in mutations:
        with Session(ctx.db.write_engine) as session:
            _apply(session, db, m)
            try:
                report = audit_local(session, lg.origin, [ctx.log_verifier])
            except Exception as exc:  # noqa: BLE001 - an audit that crashes has found nothing
                failures.append(f"{m.kind} ({m.what}): the audit raised {exc!r:.300}")
                continue
            finally:
                session.rollback()
        detected += not report.ok
        problem = _verdict(m, report)
        right += problem is None
        if problem is not None:
            failures.append(problem)
    kinds = Counter(m.kind for m in mutations)
    figure(_figure_line(db, len(mutations), len(kinds), detected, right, s))
    assert not failures, f"seed {s}: {len(failures)} wrong of {len(mutations)}:\n" + "\n".join(
        failures[:25]
    )
    assert detected == right == len(mutations)
    assert min(kinds.values()) >= 10, kinds

    # Every change was rolled back: the ledger is clean and still refuses changes.
    with ctx.db.reader() as r:
        after = audit_local(r, lg.origin, [ctx.log_verifier])
    assert after.ok and after.entries == lg.n, after.problems[:3]
    with pytest.raises(DBAPIError, match="append-only"), ctx.db.writer() as w:
        w.execute(text("DELETE FROM log_entries WHERE idx = 0"))

    # The command line says the same, with its exit code.
    clean = _audit_cli(ctx.settings, ctx.settings.database_url)
    assert clean.returncode == 0 and "audit clean" in clean.stdout, clean.stdout + clean.stderr
    for n, kind in enumerate(CLI_KINDS):
        m = next(m for m in mutations if m.kind == kind)
        _check_cli(ctx, tmp_path, m, f"cli{n}")


@pytest.mark.slow
def test_tampered_upper_tiles_are_placed_at_their_first_entry(ctx: Any) -> None:
    """The demo-sized ledger has no level-1 tile: here a log of 65,536 + 300 entries has one,
    and a changed node of it is placed at the first entry under that node (256 entries per
    base hash); a deleted one at 0; planted level-1 and level-2 tiles at the end of the log."""
    rng = random.Random(seed())
    body = b'{"kind":"policy","n":%d,"v":1}'
    total = TILE_WIDTH**2 + 300
    for start in range(0, total, 10_000):
        with ctx.db.writer() as w:
            end = min(total, start + 10_000)
            ctx.log.append(w, [("policy", body % i) for i in range(start, end)])
    lg = _read_ledger(ctx)
    assert (1, 0) in lg.tiles and lg.n == total
    blob = lg.tiles[(1, 0)]
    mutations = []
    for pos in [*rng.sample(range(TILE_BYTES), 10), 0, 255 * 32, 256 * 32, TILE_BYTES - 1]:
        changed = blob[:pos] + bytes([blob[pos] ^ 1]) + blob[pos + 1 :]
        mutations.append(
            Mutation(
                "tile-byte",
                [(_SET_TILE, {"n": changed, "l": 1, "i": 0})],
                _tile_leaf(1, 0, pos // 32),
                f"tile 1/0 byte {pos}",
            )
        )
    mutations += [
        Mutation("tile-delete", [("DELETE FROM log_tiles WHERE level = 1", {})], 0, "tile 1/0"),
        _tile_plant_at(lg, 1, 1),
        _tile_plant_at(lg, 2, 0),
    ]
    wrong = []
    for m in mutations:
        with Session(ctx.db.write_engine) as session:
            _apply(session, ctx.db.dialect, m)
            report = audit_local(session, lg.origin, [ctx.log_verifier])
            session.rollback()
        problem = _verdict(m, report)
        if problem is not None:
            wrong.append(problem)
    assert not wrong, wrong


def test_an_audit_while_the_log_grows_raises_no_false_alarm(
    ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends commit while the audit reads (PostgreSQL reads each statement at its own
    snapshot): entries past the checkpoints it read first, and tiles past the entries it
    streamed, belong to those appends and are not damage."""
    body = b'{"kind":"policy","n":%d,"v":1}'

    def append(start: int, count: int) -> None:
        with ctx.db.writer() as w:
            ctx.log.append(w, [("policy", body % i) for i in range(start, start + count)])

    append(0, 700)
    streamed = audit_module._stream_entries

    def growing(session: Session, chunk: int, tags: Any, tiles: Any) -> Iterator[list[Any]]:
        for k, rows in enumerate(streamed(session, chunk, tags, tiles)):
            yield rows
            if k == 0:
                append(700, 300)  # while the entries are read
        append(1000, 300)  # after they were read: tiles 2 to 4 appear

    monkeypatch.setattr(audit_module, "_stream_entries", growing)
    with ctx.db.reader() as r:
        report = audit_local(r, ctx.settings.origin, [ctx.log_verifier], chunk=256)
    assert report.ok, report.problems
    # SQLite reads one snapshot; PostgreSQL sees the first append, not the second.
    assert report.entries == (1000 if ctx.db.dialect == "postgresql" else 700)
    monkeypatch.undo()
    with ctx.db.reader() as r:
        assert audit_local(r, ctx.settings.origin, [ctx.log_verifier]).entries == 1300


def _tile_plant_at(lg: Ledger, level: int, idx: int) -> Mutation:
    return Mutation(
        "tile-plant",
        [
            (
                "INSERT INTO log_tiles (level, idx, nodes) VALUES (:l, :i, :n)",
                {"l": level, "i": idx, "n": secrets.token_bytes(TILE_BYTES)},
            )
        ],
        max(_tile_leaf(level, idx), lg.n),
        f"tile {level}/{idx}",
    )
