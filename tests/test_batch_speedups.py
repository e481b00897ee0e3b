"""The fast paths of batch posting give exactly what the general paths give.

Each speed-up of ``ledger.completions`` (reading JSON records, typing rows, the batch digest,
the ledger entries, record ids, sealing) and of ``ledger.storage.db`` (COPY text, raw
executemany) is checked here against the general code it short-cuts, on generated values and
on the inputs that make such short-cuts go wrong: full-width and compatibility characters,
quotes, backslashes, tabs and newlines, non-BMP text, numbers in odd spellings, formula-like
cells.  The storage and concurrency cases run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    text,
    update,
)

from ledger.completions import intake, pii
from ledger.completions import services as cs
from ledger.completions.intake import RawRow
from ledger.completions.models import CompletionRecord, Person
from ledger.completions.rules import (
    RowIn,
    _normalise_row,
    _plain_row,
    normalise_row,
    normalise_rows,
)
from ledger.entries import encode_entries
from ledger.errors import FormatError
from ledger.registry.demo import DEMO_YEAR, seed_demo
from ledger.registry.services import principal_for_key
from ledger.storage import db as storage
from tests.completions_support import MATERIALS, ONLINE, SEEDED_AT, id_number, record

TODAY = date(DEMO_YEAR, 11, 24)

# -- typing rows: the fast path accepts only what the full rules accept, with equal values --

TRICKY_TEXT = [
    "",
    " ",
    "\u3000专业\u3000",
    "专业",
    "ＰＺＸＹ－２０２６－０２",
    "a\tb",
    "a\nb",
    "=1+1",
    "+1",
    "-1",
    "-x",
    "@x",
    "\u200bx",
    "x\x7f",
    'say "hi"',
    "back\\slash",
    "欧阳䶮",
    "名²",
    "张3",
    "٣",
    "\u2028",
    "\uf9fc格",
    "x" * 65,
    "x" * 201,
]
NUMBERS: list[Any] = [
    "24",
    "24.0",
    "24.5",
    "24.50",
    "24.",
    ".5",
    "0",
    "-3",
    "1.25",
    "1e2",
    "NaN",
    "Infinity",
    "１２",
    " 12 ",
    "012",
    "99999999999",
    24,
    0,
    -1,
    10**9,
    24.5,
    24.0,
    True,
    None,
    "",
]
DATES: list[Any] = [
    f"{DEMO_YEAR}-05-10",
    f"{DEMO_YEAR}0510",
    f"{DEMO_YEAR}/05/10",
    f"{DEMO_YEAR}-5-10",
    f"{DEMO_YEAR}年05月10日",
    f" {DEMO_YEAR}-05-13 ",
    f"{DEMO_YEAR}-02-30",
    f"+{DEMO_YEAR}-05-10",
    date(DEMO_YEAR, 5, 11),
    datetime(DEMO_YEAR, 5, 12, 8, 30),
    45000,
    None,
    "",
]
IDS: list[Any] = [
    id_number(1),
    id_number(1).lower(),
    " " + id_number(2) + " ",
    "１１０１０５１９４９１２３１００２Ｘ",
    "11010519491231002X",
    "11010519491231002x",
    "510402198001010012",
    "51040219800101001",
    "510402800101001",
    id_number(3, birth="20991231"),
    id_number(3, birth="17991231"),
    id_number(4, birth="19800230"),
    510402198001010011,
    "=" + id_number(5)[1:],
    None,
]


def _cells(base: dict[str, Any], **over: Any) -> dict[str, Any]:
    cells = {**base, **over}
    return {k: v for k, v in cells.items() if v is not ...}


def _check(cells: dict[str, Any]) -> RowIn | None:
    raw = RawRow(7, cells)
    fast = _plain_row(raw, TODAY)
    full = _normalise_row(raw, today=TODAY)
    if fast is not None:
        assert fast == full, (cells, fast, full)
    assert normalise_row(raw, today=TODAY) == full
    return fast


def test_plain_rows_take_the_fast_path() -> None:
    rows = [record(n) for n in range(50)]
    rows.append(record(1, evaluation="85.5", place="成都", title_field="主治医师/内科"))
    rows.append(record(2, hours=24, year=str(DEMO_YEAR), fee_yuan="200.5", evaluation="100"))
    rows.append(record(3, start=date(DEMO_YEAR, 5, 10), end=datetime(DEMO_YEAR, 5, 13, 9, 0)))
    for cells in rows:
        assert _check(cells) is not None, cells
    # Compatibility forms fold as in the full rules; a score of 100 is written "100".
    row = _check(record(4, employer="ＡＢＣ医院", evaluation="100"))
    assert row is not None and row.employer == "ABC医院" and row.evaluation == "100"


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "employer",
        "category",
        "class_code",
        "mode",
        "place",
        "class_title",
        "title_field",
        "certificate_number",
        "result",
    ],
)
def test_text_cells_agree(field: str) -> None:
    for value in [*TRICKY_TEXT, "合格", " 良好 ", 12, 12.0, None, True]:
        _check(_cells(record(1), **{field: value}))


@pytest.mark.parametrize("field", ["hours", "year", "fee_yuan", "evaluation"])
def test_number_cells_agree(field: str) -> None:
    for value in [*NUMBERS, str(DEMO_YEAR), DEMO_YEAR, "100", "100.0", "101", "85.55"]:
        _check(_cells(record(1), **{field: value}))


def test_date_and_id_cells_agree() -> None:
    for value in DATES:
        _check(_cells(record(1), start=value))
        _check(_cells(record(1), end=value))
    for value in IDS:
        _check(_cells(record(1), id_number=value))
    _check(_cells(record(1), __unknown__="remark"))
    _check(_cells(record(1), __extra__="第18列没有表头"))
    _check(_cells(record(1), name=...))
    _check(_cells(record(1), hours=intake._Unsupported("list")))


@settings(max_examples=600, deadline=None)
@given(
    st.text(alphabet="0123456789Xx ", min_size=16, max_size=19)
    | st.builds(
        lambda n, b: id_number(n, birth=b),
        st.integers(0, 999),
        st.dates(date(1700, 1, 1), date(2200, 12, 31)).map(lambda d: f"{d:%Y%m%d}"),
    )
)
def test_plain_id_numbers_agree(text: str) -> None:
    from ledger.completions.rules import _plain_id
    from ledger.identity import IdentityError, validate_id_number

    fast = _plain_id(text, TODAY)
    try:
        full: str | None = validate_id_number(text, today=TODAY)
    except IdentityError:
        full = None
    if fast is not None:
        assert fast == full
    elif full is not None:
        assert full != text  # only numbers that needed normalising take the full rules


def test_rows_sharing_class_cells_agree() -> None:
    """`normalise_rows` reads shared class cells once: equal-hashing cells of other types
    (1, 1.0, True; a text and an unsupported value of the same spelling) are not confused."""
    rows = [record(1), record(2, hours=24), record(3, hours=24.0), record(4, hours=True)]
    rows += [record(5, hours=1), record(6, hours=1.0), record(7, hours=True), record(8)]
    rows += [record(9, mode=intake._Unsupported("面授")), record(10, start=date(DEMO_YEAR, 5, 10))]
    rows += [record(11, start=datetime(DEMO_YEAR, 5, 10)), record(12, hours=float("nan"))]
    rows += [record(13, hours=float("nan")), record(14, year=DEMO_YEAR + 0.0)]
    raws = [RawRow(i + 1, cells) for i, cells in enumerate(rows)]
    good, errors = normalise_rows(raws, today=TODAY)
    one_by_one = [normalise_row(r, today=TODAY) for r in raws]
    assert good == [r for r in one_by_one if not isinstance(r, list)]
    assert errors == [e for r in one_by_one if isinstance(r, list) for e in r]
    assert {e.rule for e in errors} >= {"field.type", "field.number"}


_cell = st.one_of(
    st.none(),
    st.integers(-5, 3000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([*TRICKY_TEXT, *[n for n in NUMBERS if isinstance(n, str)], *IDS[:5]]),
    st.text(max_size=12),
    st.dates(),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([c.key for c in intake.COLUMNS]), _cell, max_size=6))
def test_generated_rows_agree(over: dict[str, Any]) -> None:
    cells = _cells(record(1), **over)
    _check(cells)
    raws = [
        RawRow(2, record(2)),
        RawRow(3, cells),
        RawRow(4, {**record(4), **over}),
        RawRow(5, record(5)),
    ]
    good, errors = normalise_rows(raws, today=TODAY)
    one_by_one = [normalise_row(r, today=TODAY) for r in raws]
    assert good == [r for r in one_by_one if not isinstance(r, list)]
    assert errors == [e for r in one_by_one if isinstance(r, list) for e in r]


# -- reading JSON records ---------------------------------------------------------------------

JSON_TEXTS = [
    b'{"batch_key": "k", "records": [{"name": "\\u5f20", "hours": 1.5, "x": null}]}',
    b'{"a": 1, "a": 2}',
    b'{"a": {"b": 1, "c": 2, "b": 3}, "a": 0}',
    b'[{"k": 1}, {"k": 2, "j": 1, "k": 3}]',
    b'{"a": NaN}',
    b'{"a": -Infinity}',
    b'{"a": 1,}',
    b'{"a": "\\ud800"}',
    b"\xff\xfe",
    b"[" * 100_000,
    b"",
    '{"名": 1, "名": 2}'.encode(),
]


@pytest.mark.parametrize("data", JSON_TEXTS, ids=range(len(JSON_TEXTS)))
def test_json_body_parses_like_parse_json(data: bytes) -> None:
    from ledger.canonical import parse_json

    try:
        expected: Any = parse_json(data)
    except FormatError as exc:
        with pytest.raises(FormatError) as caught:
            intake.parse_json_body(data)
        assert str(caught.value) == str(exc)
    else:
        assert intake.parse_json_body(data) == expected


def _json_text(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    members = st.tuples(st.sampled_from("abc"), children).map(lambda m: f'"{m[0]}":{m[1]}')
    return st.lists(children, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]") | st.lists(
        members, max_size=4
    ).map(lambda ms: "{" + ",".join(ms) + "}")


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        (st.none() | st.booleans() | st.integers() | st.text(max_size=5)).map(json.dumps),
        _json_text,
        max_leaves=12,
    )
)
def test_generated_json_parses_like_parse_json(text: str) -> None:
    test_json_body_parses_like_parse_json(text.encode())


def test_json_records_fast_path_reads_like_the_general_one() -> None:
    items: list[Any] = [
        record(1),
        record(2, hours=24, evaluation=85.5, place=None),
        record(3, remark="x"),
        record(4, hours=True),
        record(5, hours=[24]),
        record(6, hours={"v": 1}),
        {},
    ]
    batch = intake.parse_json_records(items, max_rows=100)
    assert [r.number for r in batch.rows] == list(range(1, len(items) + 1))
    for row, item in zip(batch.rows, items, strict=True):
        assert row == intake._json_row(row.number, item)
    assert batch.rows[0].cells is items[0]  # taken as is: no copy of a plain record
    assert batch.rows[2].cells["__unknown__"] == "remark"
    assert type(batch.rows[3].cells["hours"]) is intake._Unsupported
    with pytest.raises(intake.IntakeError, match=r"records\[1\]: expected a JSON object"):
        intake.parse_json_records([record(1), [1]], max_rows=10)


# -- digest, entries, record ids, sealing ------------------------------------------------------

ODD = ['q"uote', "back\\slash", "tab\tnew\nline\rcr", "\u2028\u2029", "䶮😀", "\x7f", "é"]


def _rows(n: int = 12) -> list[RowIn]:
    rows = []
    for i in range(n):
        odd = ODD[i % len(ODD)]
        rows.append(
            RowIn(
                row=i + 2,
                name="张" + odd,
                id_number=id_number(i),
                employer=odd,
                title_field="" if i % 2 else odd,
                year=DEMO_YEAR,
                category=["专业", "公需", odd][i % 3],
                class_code=[MATERIALS, ONLINE][i % 2],
                class_title="" if i % 3 else odd,
                mode=["面授", odd][i % 2],
                start=date(DEMO_YEAR, 5, 10),
                end=date(DEMO_YEAR, 5, 10 + i % 4),
                place=odd if i % 4 else "",
                hours_tenths=10 * (i + 1) + i % 10,
                result=["合格", odd][i % 2],
                certificate_number="" if i % 5 else f"C-{i}",
                fee_fen=i * 137,
                evaluation=["", "85", "1E+2"][i % 3],
            )
        )
    return rows


def test_row_json_equals_the_general_encodings() -> None:
    rows = _rows()
    fields = "name id_number employer category class_code mode result title_field class_title"
    blank = dict.fromkeys([*fields.split(), "place", "certificate_number", "evaluation"], "")
    rows.append(rows[0]._replace(**blank))
    rows.append(rows[1]._replace(category="", employer="{,"))
    for r in rows:
        assert cs._digest(1, "k", [r]) == cs.batch_digest(1, "k", [r])
        assert r.details_json() == pii.sealed_plaintext(r.details())
        assert pii.person_plaintext(r.name, r.id_number) == pii.sealed_plaintext(
            {"name": r.name, "id_number": r.id_number}
        )


def test_digest_equals_the_jcs_digest() -> None:
    rows = _rows()
    for key in ["k", "批次-2026", 'odd "key"\t\\', "😀"]:
        assert cs._digest(7, key, rows) == cs.batch_digest(7, key, rows)
    lone = [_rows(1)[0]._replace(employer="\ud800")]
    with pytest.raises(FormatError):
        cs.batch_digest(7, "k", lone)
    with pytest.raises(FormatError):
        cs._digest(7, "k", lone)


def _ids(n: int) -> tuple[list[str], list[str]]:
    records = cs._record_ids([secrets.token_bytes(16) for _ in range(n)])
    subjects = [pii.commitment(pii.new_salt(), id_number(i)) for i in range(n)]
    return records, subjects


def test_entries_equal_encode_entries() -> None:
    rows = _rows(30)
    records, subjects = _ids(len(rows))
    plans = {r.row: 3 + r.row % 2 for r in rows}
    expected = encode_entries(
        "completion",
        [
            cs._entry_payload(rid, "b_batch", 1, plans[r.row], r, subj)
            for rid, r, subj in zip(records, rows, subjects, strict=True)
        ],
    )
    assert cs._completion_entries(1, "b_batch", plans, rows, records, subjects) == expected
    # A row whose own value holds a placeholder takes the general way, with the same bytes.
    clash = [rows[0]._replace(mode="x" + cs._RECORD_MARK)]
    expected = encode_entries(
        "completion", [cs._entry_payload(records[0], "b_batch", 1, 3, clash[0], subjects[0])]
    )
    assert (
        cs._completion_entries(1, "b_batch", {clash[0].row: 3}, clash, records[:1], subjects[:1])
        == expected
    )


def test_entries_keep_the_personal_data_tripwire() -> None:
    rows = _rows(2)
    records, subjects = _ids(2)
    plans = {r.row: 3 for r in rows}
    leaky = [rows[0], rows[1]._replace(class_code=id_number(9))]
    with pytest.raises(FormatError, match="citizen ID number"):
        cs._completion_entries(1, "b_batch", plans, leaky, records, subjects)
    with pytest.raises(ValueError, match="generated"):
        cs._completion_entries(
            1, "b_batch", plans, rows, ["r_" + id_number(1), records[1]], subjects
        )


def test_record_ids_equal_one_by_one() -> None:
    tokens = [secrets.token_bytes(16) for _ in range(257)]
    assert cs._record_ids(tokens) == [cs.record_id_of_token(t) for t in tokens]
    assert cs._record_ids([]) == []


def test_sealing_many_equals_sealing_one() -> None:
    vault = pii.PersonalDataVault(secrets.token_bytes(32))
    values = [{"employer": odd, "title_field": "", "place": odd * 2} for odd in ODD]
    for fields in values:
        expected = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        assert pii.sealed_plaintext(fields) == expected
    contexts = [f"r_{i}".encode() for i in range(len(values))]
    sealed = vault.seal_many([pii.sealed_plaintext(v) for v in values], contexts)
    assert len({s[:12] for s in sealed}) == len(sealed)  # every nonce fresh
    for blob, fields, context in zip(sealed, values, contexts, strict=True):
        assert vault.open(blob, context) == fields
        assert vault.open(vault.seal(fields, context), context) == fields
    numbers = [id_number(i) for i in range(5)]
    assert vault.lookups(numbers) == [vault.lookup(n) for n in numbers]
    salts = pii.new_salts(5)
    assert len(set(salts)) == 5 and all(len(s) == pii.SALT_BYTES for s in salts)
    with pytest.raises(ValueError, match="one context per value"):
        vault.seal_many([b"{}"], [])


# -- storage: COPY text and raw executemany store what SQLAlchemy stores ---------------------

_meta = MetaData()
_probe = Table(
    "speedup_probe",
    _meta,
    Column("id", Integer, primary_key=True),
    Column("t", String(200)),
    Column("b", LargeBinary),
    Column("d", Date),
    Column("at", DateTime(timezone=True)),
)
PROBE_VALUES: list[dict[str, Any]] = [
    {
        "t": odd,
        "b": odd.encode("utf-8"),
        "d": date(2026, 5, i + 1),
        "at": datetime(2026, 5, 1, 8, i, 3, 123456, tzinfo=UTC),
    }
    for i, odd in enumerate([*ODD, "\\N", "\\.", "", "a\\tb", "x\x01y"])
] + [{"t": None, "b": None, "d": None, "at": None}, {"t": "b", "b": b"", "d": None, "at": None}]


def test_copy_text_fields() -> None:
    assert storage.copy_text(None) == "\\N"
    assert storage.copy_text("a\tb\\c\nd\re") == "a\\tb\\\\c\\nd\\re"
    assert storage.copy_text(b"\x00\xff") == "\\\\x00ff"
    assert storage.copy_text(True) == "t" and storage.copy_text(-7) == "-7"
    assert storage.copy_text(date(2026, 1, 2)) == "2026-01-02"
    with pytest.raises(TypeError, match="COPY text"):
        storage.copy_text(1.5)


def _stored(db: storage.Database, table: str) -> list[tuple[Any, ...]]:
    with db.reader() as s:
        return [tuple(r) for r in s.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


def test_bulk_paths_store_what_sqlalchemy_stores(db_url: str) -> None:
    db = storage.Database(db_url)
    try:
        twin = _probe.to_metadata(_meta, name="speedup_twin")
        _meta.create_all(db.write_engine, tables=[_probe, twin])
        rows = [{"id": i + 1, **v} for i, v in enumerate(PROBE_VALUES)]
        with db.writer() as s:
            storage.bulk_insert(s, _probe, rows)
            s.execute(insert(twin), rows)
        assert _stored(db, "speedup_probe") == _stored(db, "speedup_twin")
        with db.reader() as s:
            back = [dict(r._mapping) for r in s.execute(select(_probe).order_by(_probe.c.id))]
        for got, want in zip(back, rows, strict=True):
            assert got["t"] == want["t"] and got["b"] == want["b"] and got["d"] == want["d"]
            if want["at"] is not None:
                assert got["at"].replace(tzinfo=got["at"].tzinfo or UTC) == want["at"]
        # A clash on a unique key is recognised (the people path relies on it).
        with pytest.raises(Exception) as caught, db.writer() as s:
            storage.bulk_insert(s, _probe, rows[:1])
        assert storage.is_unique_violation(caught.value)
        assert not storage.is_unique_violation(ValueError("x"))
    finally:
        _meta.drop_all(db.write_engine, tables=[_probe, _meta.tables["speedup_twin"]])
        _meta.remove(_meta.tables["speedup_twin"])
        db.dispose()


def test_reserve_ids(db_url: str) -> None:
    db = storage.Database(db_url)
    try:
        with db.writer() as s:
            ids = storage.reserve_ids(s, Person.__table__, 1000)
            assert len(set(ids)) == 1000 and storage.reserve_ids(s, Person.__table__, 0) == []
            if db.dialect == "postgresql":
                assert set(ids).isdisjoint(storage.reserve_ids(s, Person.__table__, 10))
    finally:
        db.dispose()


# -- posting: the people added before the lock, and what may change before it is taken ------


def _base1(ctx: Any) -> Any:
    info = seed_demo(ctx.db, ctx.log, now=SEEDED_AT)
    with ctx.db.reader() as s:
        return principal_for_key(s, info.key_for("base:1"))


def _prepare(ctx: Any, actor: Any, key: str, *records: dict[str, Any]) -> Any:
    raw = intake.parse_json_records(list(records), max_rows=10_000)
    with ctx.db.reader() as s:
        return cs.prepare_batch(s, ctx.vault, actor, 1, raw, batch_key=key)


def _commit(ctx: Any, prepared: Any) -> cs.PostedBatch:
    with ctx.db.writer() as s:
        posted: cs.PostedBatch = cs.commit_batch(s, ctx.log, ctx.vault, prepared)
        return posted


def _count(ctx: Any, entity: Any) -> int:
    with ctx.db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(entity)) or 0)


def _person_of(ctx: Any, record_id: str) -> int:
    with ctx.db.reader() as s:
        return int(
            s.scalar(select(CompletionRecord.person_id).where(CompletionRecord.id == record_id))
        )


def test_receipt_and_records_as_written(ctx: Any) -> None:
    actor = _base1(ctx)
    rows = [record(i) for i in range(1, 30)] + [
        record(40, place='会"议\\室\t二', evaluation="85.5")
    ]
    posted = _commit(ctx, _prepare(ctx, actor, "r1", *rows))
    receipt = json.loads(posted.receipt)
    assert json.dumps(receipt, ensure_ascii=False, separators=(",", ":")).encode() == posted.receipt
    first = receipt["ledger"]["first_index"]
    assert [r["log_index"] for r in receipt["records"]] == list(range(first, first + len(rows)))
    assert [r["row"] for r in receipt["records"]] == list(range(1, len(rows) + 1))
    with ctx.db.reader() as s:
        stored = s.scalars(select(CompletionRecord).order_by(CompletionRecord.log_index)).all()
        entries = ctx.log.entries(s, first, first + len(rows))
    assert [r.id for r in stored] == [r["record"] for r in receipt["records"]]
    last = stored[-1]
    assert (last.row_number, last.hours_tenths, last.fee_fen, last.start_date) == (
        30,
        240,
        120000,
        date(DEMO_YEAR, 5, 10),
    )
    assert (
        last.batch_id == receipt["batch"]
        and last.posted_by is None  # the batch's poster, once
        and last.poster == "base:1"
        and last.kind == "completion"
    )
    assert ctx.vault.open(last.sealed, last.id.encode())["place"] == '会"议\\室\t二'
    assert ctx.vault.open(last.sealed, last.id.encode())["evaluation"] == "85.5"
    assert pii.commitment(last.salt, id_number(40)) == last.subject
    assert json.loads(entries[-1])["subject"] == last.subject
    assert cs.record_id_of_token(last.token) == last.id
    with ctx.db.reader() as s:
        person = s.get(Person, last.person_id)
        assert person is not None and person.lookup == ctx.vault.lookup(id_number(40))
        assert ctx.vault.open(person.sealed, person.lookup) == {
            "name": record(40)["name"],
            "id_number": id_number(40),
        }


def test_person_added_by_another_batch_meanwhile(ctx: Any, monkeypatch: Any) -> None:
    clashes: list[bool] = []
    real = cs.is_unique_violation
    monkeypatch.setattr(cs, "is_unique_violation", lambda e: clashes.append(real(e)) or real(e))
    actor = _base1(ctx)
    mine = _prepare(ctx, actor, "a", record(1), record(2), record(3))
    other = record(
        2,
        class_code=ONLINE,
        mode="网络",
        start=f"{DEMO_YEAR}-07-10",
        end=f"{DEMO_YEAR}-07-11",
        hours="12",
        fee_yuan="300",
    )
    theirs = _commit(ctx, _prepare(ctx, actor, "b", other))
    posted = _commit(ctx, mine)  # the bulk insert of people meets person 2: added one by one
    assert clashes == [True] and _count(ctx, Person) == 3
    records = {r["row"]: r["record"] for r in posted.as_json()["records"]}
    assert _person_of(ctx, records[2]) == _person_of(ctx, theirs.as_json()["records"][0]["record"])
    # ...and the name that person was registered under is checked then.
    late = _prepare(ctx, actor, "c", record(4), record(5))
    _commit(
        ctx,
        _prepare(
            ctx,
            actor,
            "d",
            record(
                5,
                name="李四",
                class_code=ONLINE,
                mode="网络",
                start=f"{DEMO_YEAR}-07-10",
                end=f"{DEMO_YEAR}-07-11",
                hours="12",
                fee_yuan="300",
            ),
        ),
    )
    with pytest.raises(cs.BatchRejected) as rejected:
        _commit(ctx, late)
    assert [(e.row, e.rule) for e in rejected.value.errors] == [(2, "name.id-mismatch")]
    assert _count(ctx, Person) == 4  # person 4 was not kept: nothing of the batch was


def test_duplicate_posted_meanwhile_is_found_under_the_lock(ctx: Any) -> None:
    actor = _base1(ctx)
    _commit(ctx, _prepare(ctx, actor, "x", record(9)))
    mine = _prepare(
        ctx,
        actor,
        "a",
        record(1),
        record(
            9,
            class_code=ONLINE,
            mode="网络",
            start=f"{DEMO_YEAR}-07-10",
            end=f"{DEMO_YEAR}-07-11",
            hours="12",
            fee_yuan="300",
        ),
    )
    _commit(
        ctx,
        _prepare(
            ctx,
            actor,
            "b",
            record(
                9,
                class_code=ONLINE,
                mode="网络",
                start=f"{DEMO_YEAR}-07-10",
                end=f"{DEMO_YEAR}-07-11",
                hours="12",
                fee_yuan="300",
            ),
        ),
    )
    with pytest.raises(cs.BatchRejected) as rejected:
        _commit(ctx, mine)
    assert [(e.row, e.rule) for e in rejected.value.errors] == [(2, "duplicate.ledger")]


def test_same_key_committed_meanwhile_replays_and_leaves_nothing(ctx: Any) -> None:
    actor = _base1(ctx)
    first = _prepare(ctx, actor, "same", record(1), record(2))
    second = _prepare(ctx, actor, "same", record(1), record(2))
    other = _prepare(ctx, actor, "same", record(3))
    posted = _commit(ctx, first)
    people, records = _count(ctx, Person), _count(ctx, CompletionRecord)
    again = _commit(ctx, second)
    assert again.replayed and again.receipt == posted.receipt
    assert (_count(ctx, Person), _count(ctx, CompletionRecord)) == (people, records)
    with pytest.raises(cs.StateConflict, match="other content"):
        _commit(ctx, other)
    assert (_count(ctx, Person), _count(ctx, CompletionRecord)) == (people, records)


def test_person_erased_meanwhile_gets_a_new_person(ctx: Any, monkeypatch: Any) -> None:
    actor = _base1(ctx)
    old = _commit(ctx, _prepare(ctx, actor, "x", record(1)))
    old_person = _person_of(ctx, old.as_json()["records"][0]["record"])
    mine = _prepare(
        ctx,
        actor,
        "a",
        record(2),
        record(
            1,
            class_code=ONLINE,
            mode="网络",
            start=f"{DEMO_YEAR}-07-10",
            end=f"{DEMO_YEAR}-07-11",
            hours="12",
            fee_yuan="300",
        ),
    )
    assert mine.people.ids == {id_number(1): old_person}
    with ctx.db.writer() as s:  # what erasure does to the person, under the append lock
        ctx.log.lock(s)
        s.execute(
            update(Person)
            .where(Person.id == old_person)
            .values(sealed=None, lookup=secrets.token_bytes(32), erased_at=datetime.now(UTC))
        )
    reads: list[int] = []
    real = cs._read_people
    monkeypatch.setattr(cs, "_read_people", lambda *a: reads.append(1) or real(*a))
    posted = _commit(ctx, mine)
    assert reads == [1]  # read again once, after the savepoint let go of the lock
    new_person = _person_of(ctx, posted.as_json()["records"][1]["record"])
    assert new_person != old_person
    with ctx.db.reader() as s:
        person = s.get(Person, new_person)
        assert person is not None and person.lookup == ctx.vault.lookup(id_number(1))


def test_batch_of_many_people_on_both_databases(ctx: Any) -> None:
    """Enough rows for every chunked query (more than 500 people), half of them known."""
    actor = _base1(ctx)
    known = [record(i, id_number=id_number(i, birth="19850101")) for i in range(600)]
    _commit(ctx, _prepare(ctx, actor, "known", *known))
    online = {
        "class_code": ONLINE,
        "mode": "网络",
        "start": f"{DEMO_YEAR}-07-10",
        "end": f"{DEMO_YEAR}-07-11",
        "hours": "12",
        "fee_yuan": "300",
    }
    rows = [{**r, **online} for r in known[:300]]
    rows += [record(i, id_number=id_number(i, birth="19860101"), **online) for i in range(300)]
    prepared = _prepare(ctx, actor, "mixed", *rows)
    assert len(prepared.people.ids) == 300 and len(prepared.people.new) == 300
    posted = _commit(ctx, prepared)
    assert posted.as_json()["count"] == 600 and _count(ctx, Person) == 900


def test_evaluation_scores_are_written_plainly() -> None:
    """A score of 90 or 100 is "90" / "100" in the canonical form a base signs, not "9E+1"."""
    from datetime import date

    from ledger.completions.intake import RawRow
    from ledger.completions.rules import normalise_row
    from tests.completions_support import record

    for score, expected in (("90", "90"), ("100", "100"), ("87.5", "87.5"), (90, "90"), ("0", "0")):
        row = normalise_row(RawRow(1, record(1, evaluation=score)), today=date(2026, 11, 24))
        assert not isinstance(row, list), row
        assert row.canonical()["evaluation"] == expected, (score, row.canonical())
