"""Completion batches through HTTP, on SQLite and PostgreSQL: JSON, CSV (UTF-8 and GBK) and XLSX;
one refusal per rule with nothing written; idempotent retries; base signatures; personal data
kept out of the ledger and sealed at rest."""

from __future__ import annotations

import base64
import hashlib
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select, text

from ledger.completions.models import CompletionBatch, CompletionRecord, Person
from ledger.completions.pii import commitment
from ledger.registry.demo import DEMO_YEAR
from ledger.storage.log import Log
from tests.completions_support import (
    BATCHES,
    ETHICS,
    FORUM,
    ONLINE,
    XLSX,
    as_csv,
    as_xlsx,
    batch,
    id_number,
    record,
    record_count,
    rules_of,
    world,
    written,
)
from tests.test_registry_support import prove


def test_json_batch_is_appended_and_provable(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    before = written(ctx)
    records = [record(1), record(2, class_code=ETHICS, category="公需", start=f"{DEMO_YEAR}-03-10",
                                  end=f"{DEMO_YEAR}-03-10", hours="6", fee_yuan="0"),
               record(3, class_code=FORUM, category="选修", mode="会议", start=f"{DEMO_YEAR}-09-10",
                      end=f"{DEMO_YEAR}-09-10", hours="6", fee_yuan="200.5")]  # fmt: skip
    r = client.post(BATCHES, json=batch("2026-05-a", *records), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["count"] == 3 and receipt["source"] == "json"
    assert receipt["base"] == "base:1" and receipt["batch_key"] == "2026-05-a"
    ledger = receipt["ledger"]
    assert ledger["first_index"] == before[0] and ledger["last_index"] == before[0] + 2
    assert ledger["tree_size"] == before[0] + 3
    assert ledger["checkpoint"].startswith(ctx.settings.origin + "\n")
    assert [x["row"] for x in receipt["records"]] == [1, 2, 3]
    assert r.headers["location"].endswith("/batches/" + receipt["batch"])
    assert written(ctx) == (before[0] + 3, before[1] + 3)
    for item, sent in zip(receipt["records"], records, strict=True):
        payload = prove(client, ctx, item["log_index"], "completion")
        assert payload["record"] == item["record"] and payload["batch"] == receipt["batch"]
        assert payload["class"] == sent["class_code"] and payload["base"] == "base:1"
        assert payload["hours"] == f"{float(sent['hours']):.1f}"
        # The person is only a salted commitment; the ledger bytes hold no name or ID number.
        entry = client.get(f"/api/v1/log/entries/{item['log_index']}").content
        assert sent["id_number"].encode() not in entry
        assert sent["name"].encode() not in entry and "攀枝花市示例医院".encode() not in entry
        assert len(payload["subject"]) == 64
    # The receipt can be fetched again, by the base.
    again = client.get(f"{BATCHES}/{receipt['batch']}", headers=keys["base:1"])
    assert again.status_code == 200 and again.json() == receipt
    other = client.get(f"/api/v1/bases/2/batches/{receipt['batch']}", headers=keys["base:2"])
    assert other.status_code == 404


def test_csv_in_utf8_and_excel_gbk_and_xlsx(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    utf8 = as_csv([record(1), record(2)])
    r = client.post(
        BATCHES,
        content=utf8,
        headers={**keys["base:1"], "Content-Type": "text/csv", "Idempotency-Key": "csv-utf8"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "csv" and [x["row"] for x in r.json()["records"]] == [2, 3]
    gbk = as_csv([record(3), record(4, name="欧阳喆")], encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    r = client.post(
        BATCHES,
        content=gbk,
        headers={**keys["base:1"], "Content-Type": "text/csv", "Idempotency-Key": "csv-gbk"},
    )
    assert r.status_code == 201, r.text
    book = as_xlsx([record(5), record(6, hours=24.0, start=None, end=None)])
    # XLSX dates come as real date cells; fill them in as Excel would.
    from io import BytesIO

    from openpyxl import load_workbook

    wb = load_workbook(BytesIO(book))
    ws = wb.active
    assert ws is not None
    from datetime import date

    ws["J3"], ws["K3"] = date(DEMO_YEAR, 5, 10), date(DEMO_YEAR, 5, 13)
    out = BytesIO()
    wb.save(out)
    r = client.post(
        BATCHES,
        content=out.getvalue(),
        headers={**keys["base:1"], "Content-Type": XLSX, "Idempotency-Key": "xlsx-1"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["count"] == 2 and r.json()["source"] == "xlsx"
    # The person's name survives the GBK round trip (it is sealed, so read it back masked).
    rid = client.post  # keep the linters quiet about the unused client in older pythons
    assert rid
    assert record_count(ctx) == 6


def test_template_download_round_trip(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    cols = client.get("/api/v1/completions/template").json()["columns"]
    assert cols[0]["header"] == "姓名" and cols[1]["field"] == "id_number"
    r = client.get("/api/v1/completions/template/xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith(XLSX)
    from io import BytesIO

    from openpyxl import load_workbook

    wb = load_workbook(BytesIO(r.content))
    ws = wb["学时记录"]
    assert [c.value for c in ws[1]][:3] == ["姓名", "身份证号", "工作单位"]
    assert ws["B2"].number_format == "@"  # ID numbers stay text in Excel
    values = record(7)
    headers = [c.value for c in ws[1]]
    by_header = {c["header"]: c["field"] for c in cols}
    ws.append([values.get(by_header[str(h)]) for h in headers])
    out = BytesIO()
    wb.save(out)
    posted = client.post(
        BATCHES,
        content=out.getvalue(),
        headers={**keys["base:1"], "Content-Type": XLSX, "Idempotency-Key": "tmpl"},
    )
    assert posted.status_code == 201, posted.text
    csv_template = client.get("/api/v1/completions/template/csv")
    assert csv_template.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads it as UTF-8
    assert csv_template.content.decode("utf-8-sig").startswith("姓名,身份证号")


# One refusal per rule, each with nothing written.  (row overrides, field, rule)
RULES: list[tuple[dict[str, Any], str, str]] = [
    ({"id_number": "510402198001010012"}, "id_number", "id.checksum"),
    ({"id_number": id_number(1, birth="19800230")}, "id_number", "id.birthdate"),
    ({"id_number": "51040219800101001"}, "id_number", "id.length"),
    ({"id_number": "510402800101001"}, "id_number", "id.legacy15"),
    ({"name": ""}, "name", "field.required"),
    ({"name": "张3"}, "name", "name.digits"),
    ({"employer": "x" * 201}, "employer", "field.too-long"),
    ({"category": "必修"}, "category", "category.unknown"),
    ({"category": "公需"}, "category", "category.mismatch"),
    ({"mode": "函授"}, "mode", "mode.unknown"),
    ({"mode": "网络"}, "mode", "mode.mismatch"),
    ({"hours": "0"}, "hours", "hours.positive"),
    ({"hours": "-3"}, "hours", "hours.positive"),
    ({"hours": "1.25"}, "hours", "field.precision"),
    ({"hours": "abc"}, "hours", "field.number"),
    ({"hours": "25"}, "hours", "hours.above-class"),
    ({"end": f"{DEMO_YEAR}-05-11", "hours": "13"}, "hours", "hours.daily-cap"),
    ({"start": f"{DEMO_YEAR}-05-09"}, "start", "dates.outside-class"),
    ({"start": f"{DEMO_YEAR}-05-12", "end": f"{DEMO_YEAR}-05-11"}, "end", "dates.order"),
    ({"start": "2026/13/01"}, "start", "field.date"),
    ({"end": f"{DEMO_YEAR + 1}-05-13"}, "end", "dates.cross-year"),
    ({"year": 1999}, "year", "year.range"),
    ({"fee_yuan": "1200.01"}, "fee_yuan", "fee.above-standard"),
    ({"fee_yuan": "-1"}, "fee_yuan", "fee.negative"),
    ({"class_code": "NOPE-1"}, "class_code", "completion.class-in-plan"),
    ({"class_title": "别的班"}, "class_title", "class.title-mismatch"),
    ({"result": "不合格"}, "result", "result.not-passed"),
    ({"result": "缺考"}, "result", "result.unknown"),
    ({"employer": '=HYPERLINK("http://x")'}, "employer", "cell.formula"),
    ({"place": "@SUM(A1)"}, "place", "cell.formula"),
    ({"place": "-cmd|calc"}, "place", "cell.formula"),
    ({"evaluation": "101"}, "evaluation", "evaluation.range"),
    ({"hours": True}, "hours", "field.type"),
]


@pytest.mark.parametrize(("over", "field", "rule"), RULES, ids=[r[2] + ":" + r[1] for r in RULES])
def test_each_rule_refuses_the_whole_batch(
    client: Any, ctx: Any, over: dict[str, Any], field: str, rule: str
) -> None:
    keys = world(ctx)
    before = written(ctx)
    body = batch("rule", record(1), record(2, **over))
    r = client.post(BATCHES, json=body, headers=keys["base:1"])
    found = rules_of(r)
    assert (2, field, rule) in found, found
    assert all(row == 2 for row, _, _ in found), found  # the good row is not blamed
    error = next(e for e in r.json()["errors"] if e["rule"] == rule)
    assert error["column"] and any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
    assert r.json()["rule"] == "batch.invalid"
    assert written(ctx) == before


def test_duplicates_in_batch_and_in_ledger(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    r = client.post(BATCHES, json=batch("d1", record(1), record(1)), headers=keys["base:1"])
    assert (2, "id_number", "duplicate.batch") in rules_of(r)
    assert (
        client.post(BATCHES, json=batch("d2", record(1)), headers=keys["base:1"]).status_code == 201
    )
    before = written(ctx)
    r = client.post(BATCHES, json=batch("d3", record(2), record(1)), headers=keys["base:1"])
    assert rules_of(r) == [(2, "id_number", "duplicate.ledger")]
    # The same person in another class is no duplicate; another name for the same ID is refused.
    other = record(1, class_code=ONLINE, mode="网络", start=f"{DEMO_YEAR}-07-10",
                   end=f"{DEMO_YEAR}-07-11", hours="12", fee_yuan="300")  # fmt: skip
    renamed = record(1, name="李四", class_code=FORUM, category="选修", mode="会议",
                     start=f"{DEMO_YEAR}-09-10", end=f"{DEMO_YEAR}-09-10", hours="6", fee_yuan="0")  # fmt: skip
    r = client.post(BATCHES, json=batch("d4", other, renamed), headers=keys["base:1"])
    assert rules_of(r) == [(2, "name", "name.id-mismatch")]
    assert written(ctx) == before
    assert client.post(BATCHES, json=batch("d5", other), headers=keys["base:1"]).status_code == 201


def test_every_bad_row_is_reported_at_once(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    rows = [record(1), record(2, hours="0"), record(3), record(4, id_number="123", class_code="X")]
    r = client.post(
        BATCHES,
        content=as_csv(rows),
        headers={**keys["base:1"], "Content-Type": "text/csv", "Idempotency-Key": "many"},
    )
    found = rules_of(r)
    # Spreadsheet rows: the header is row 1, so the records are rows 2-5.
    assert (3, "hours", "hours.positive") in found and (5, "id_number", "id.length") in found
    assert {row for row, _, _ in found} == {3, 5}
    assert r.json()["errors"][0]["column"] == "学时"


def test_class_of_an_unapproved_plan_and_a_revoked_base(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    r = client.post(BATCHES, json=batch("y", record(1, year=DEMO_YEAR + 3,
                    start=f"{DEMO_YEAR + 3}-05-10", end=f"{DEMO_YEAR + 3}-05-13")),
                    headers=keys["base:1"])  # fmt: skip
    assert (1, "class_code", "completion.approved-plan") in rules_of(r)
    # Another base's class is outside this base's plan.
    hospital = record(1, class_code=f"ZXYY-{DEMO_YEAR}-01", category="公需",
                      start=f"{DEMO_YEAR}-03-10", end=f"{DEMO_YEAR}-03-10", hours="6", fee_yuan="0")  # fmt: skip
    r = client.post(BATCHES, json=batch("h", hospital), headers=keys["base:1"])
    assert rules_of(r) == [(1, "class_code", "completion.class-in-plan")]
    # Only the base itself posts for itself.
    r = client.post(BATCHES, json=batch("x", record(1)), headers=keys["base:2"])
    assert r.status_code == 403 and r.json()["rule"] == "completion.post"
    # Once the city revokes the base, it posts nothing more.
    revoke = client.post("/api/v1/registry/bases/1/revoke", json={"reason": "乱收费，取消资格"},
                         headers=keys["authority:CN-SC-PZH"])  # fmt: skip
    assert revoke.status_code in (200, 201), revoke.text
    before = written(ctx)
    r = client.post(BATCHES, json=batch("after", record(1)), headers=keys["base:1"])
    assert r.status_code == 422 and r.json()["rule"] == "completion.base-status", r.text
    assert written(ctx) == before


def test_training_outside_recognition_is_refused(client: Any, ctx: Any) -> None:
    """Base 4 is recognised only today; its plan's March class predates that."""
    from datetime import date, datetime

    from ledger.registry import services as sv
    from ledger.registry.auth import Principal
    from tests.completions_support import SEEDED_AT

    keys = world(ctx)
    east = Principal("unit:1", "management_unit", "CN-SC-PZH", unit=1)
    base4 = Principal("base:4", "base", "CN-SC-PZH", base=4)
    city = Principal("authority:CN-SC-PZH", "authority", "CN-SC-PZH")
    national = Principal("authority:CN", "authority", "CN")
    recognised_on = datetime(DEMO_YEAR, 4, 1, 10, tzinfo=sv.CHINA_TZ)
    with ctx.db.writer() as s:
        sv.recognise(s, ctx.log, city, 4, "认定", now=recognised_on)
        spec = sv.ClassSpec("C4-1", "安全生产培训", "公需", "面授", Decimal(6),
                            date(DEMO_YEAR, 3, 20), date(DEMO_YEAR, 3, 20), 50, Decimal(0))  # fmt: skip
        spec2 = sv.ClassSpec("C4-2", "安全生产培训", "公需", "面授", Decimal(6),
                             date(DEMO_YEAR, 4, 20), date(DEMO_YEAR, 4, 20), 50, Decimal(0))  # fmt: skip
        plan = sv.submit_plan(s, ctx.log, base4, 4, DEMO_YEAR, [spec, spec2], now=SEEDED_AT)
        sv.approve_plan(s, ctx.log, east, plan.id, "同意", now=SEEDED_AT)
        key = sv.create_key(s, ctx.log, national, "base:4", "test").key
    assert keys
    day = {"class_code": "C4-1", "category": "公需", "start": f"{DEMO_YEAR}-03-20",
           "end": f"{DEMO_YEAR}-03-20", "hours": "6", "fee_yuan": "0"}  # fmt: skip
    r = client.post(
        "/api/v1/bases/4/batches",
        json=batch("b4", record(1, **day)),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert rules_of(r) == [(1, "start", "base.not-recognised")]
    later = {
        **day,
        "class_code": "C4-2",
        "start": f"{DEMO_YEAR}-04-20",
        "end": f"{DEMO_YEAR}-04-20",
    }
    r = client.post(
        "/api/v1/bases/4/batches",
        json=batch("b4b", record(1, **later)),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 201, r.text


def test_retried_batch_key_returns_the_original_receipt(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    body = batch("retry-me", record(1), record(2))
    first = client.post(BATCHES, json=body, headers=keys["base:1"])
    assert first.status_code == 201
    after_first = written(ctx)
    again = client.post(BATCHES, json=body, headers=keys["base:1"])
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert written(ctx) == after_first
    # The same records as CSV under the same key: same digest, same receipt.
    as_file = client.post(
        BATCHES,
        content=as_csv([record(1), record(2)]),
        headers={**keys["base:1"], "Content-Type": "text/csv", "Idempotency-Key": "retry-me"},
    )
    assert as_file.status_code == 200 and as_file.json()["batch"] == first.json()["batch"]
    # The same key with other content is a conflict, and writes nothing.
    other = client.post(BATCHES, json=batch("retry-me", record(3)), headers=keys["base:1"])
    assert other.status_code == 409 and other.json()["rule"] == "batch.key-reused"
    bad = client.post(BATCHES, json=batch("retry-me", record(3, hours="0")), headers=keys["base:1"])
    assert bad.status_code == 409
    assert written(ctx) == after_first


def test_base_signature_is_checked_and_stored(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    reg = client.post(
        "/api/v1/bases/1/signing-keys",
        json={"public_key": base64.b64encode(public).decode()},
        headers=keys["base:1"],
    )
    assert reg.status_code == 201, reg.text
    kid = reg.json()["kid"]
    assert prove(client, ctx, reg.json()["log_index"], "key.added")["kid"] == kid
    body = batch("signed", record(1))
    dry = client.post(BATCHES + "?dry_run=true", json=body, headers=keys["base:1"])
    assert dry.status_code == 200 and dry.json()["valid"] is True
    digest = dry.json()["digest"]
    assert written(ctx)[1] == 0
    good = base64.b64encode(private.sign(b"celedger batch v1\n" + digest.encode())).decode()
    forged = base64.b64encode(private.sign(b"celedger batch v1\n" + b"0" * 64)).decode()
    r = client.post(
        BATCHES,
        json=body,
        headers={**keys["base:1"], "Batch-Signature": f"kid={kid}; sig={forged}"},
    )
    assert r.status_code == 422 and r.json()["rule"] == "batch.signature"
    r = client.post(
        BATCHES,
        json=body,
        headers={**keys["base:1"], "Batch-Signature": "kid=bk_unknown; sig=" + good},
    )
    assert r.status_code == 422 and r.json()["rule"] == "batch.signature"
    r = client.post(BATCHES, json=body, headers={**keys["base:1"], "Batch-Signature": "nonsense"})
    assert r.status_code == 400 and r.json()["code"] == "batch.signature-header"
    r = client.post(
        BATCHES, json=body, headers={**keys["base:1"], "Batch-Signature": f"kid={kid}; sig={good}"}
    )
    assert r.status_code == 201 and r.json()["signature"] == {"kid": kid, "verified": True}
    assert r.json()["digest"] == digest
    with ctx.db.reader() as s:
        stored = s.execute(select(CompletionBatch)).scalar_one()
        assert stored.signature_kid == kid and stored.signature == base64.b64decode(good)
    # Another base cannot register keys for base 1.
    r = client.post("/api/v1/bases/1/signing-keys", json={"public_key": base64.b64encode(b"x" * 32).decode()},
                    headers=keys["base:2"])  # fmt: skip
    assert r.status_code == 403


def test_personal_data_is_sealed_and_commitments_unlinkable(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    person = record(9, name="䶮赟")
    online = record(9, name="䶮赟", class_code=ONLINE, mode="网络", start=f"{DEMO_YEAR}-07-10",
                    end=f"{DEMO_YEAR}-07-11", hours="12", fee_yuan="300")  # fmt: skip
    r = client.post(BATCHES, json=batch("pii", person, online), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    with ctx.db.reader() as s:
        rows = s.execute(select(CompletionRecord)).scalars().all()
        people = s.execute(select(Person)).scalars().all()
        assert len(rows) == 2 and len(people) == 1 and rows[0].person_id == rows[1].person_id
        # One person, two different public commitments: the public cannot link them...
        assert rows[0].subject != rows[1].subject
        # ...but each opens with its own salt and the real ID number (match / no match).
        for row in rows:
            assert row.salt is not None
            assert commitment(row.salt, person["id_number"]) == row.subject
            assert commitment(row.salt, id_number(8)) != row.subject
        # Nothing in the database holds the name, ID number or employer in clear.
        dump = b"".join(
            bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
            for table in ("persons", "completions", "log_entries", "completion_batches")
            for row in s.execute(text(f"SELECT * FROM {table}"))
            for v in row
            if v is not None
        )
    for secret in (person["id_number"], person["name"], "攀枝花市示例医院"):
        assert secret.encode() not in dump, secret
    view = client.get(
        f"/api/v1/completions/{r.json()['records'][0]['record']}", headers=keys["base:1"]
    )
    assert view.status_code == 200
    assert view.json()["holder"] == {
        "name": "䶮*",
        "id_number": person["id_number"][0] + "*" * 16 + person["id_number"][-1],
    }


def test_bad_input_gets_a_clear_4xx(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    h = keys["base:1"]

    def post(content: bytes, ctype: str, key: str | None = "k") -> Any:
        headers = {**h, "Content-Type": ctype}
        if key:
            headers["Idempotency-Key"] = key
        return client.post(BATCHES, content=content, headers=headers)

    cases = [
        (post(b'{"batch_key": "k", "records": [', "application/json"), 400, "batch.malformed"),
        (
            post(b'{"batch_key": "k", "batch_key": "j", "records": []}', "application/json"),
            400,
            "batch.malformed",
        ),
        (post(b'{"batch_key": "k", "records": []}', "application/json"), 400, "batch.empty"),
        (post(b'{"batch_key": "k", "records": [1]}', "application/json"), 400, "batch.malformed"),
        (post(b'{"batch_key": "k", "rows": []}', "application/json"), 400, "batch.malformed"),
        (post(b"", "text/csv"), 400, "batch.empty"),
        (post("姓名,身份证号\r\n".encode(), "text/csv"), 400, "batch.missing-columns"),
        (post(as_csv([]), "text/csv"), 400, "batch.empty"),
        (
            post(
                "姓名,身份证号,工作单位,年度,科目类别,项目编号,形式,开始日期,结束日期,学时,考核结果,备注\r\n".encode(),
                "text/csv",
            ),
            400,
            "batch.unknown-columns",
        ),
        (post(as_csv([record(1)]) + b'"unterminated,\r\n', "text/csv"), 400, "batch.malformed"),
        (post(b"\xff\xfe\x00\xd8" * 10 + b"\x81", "text/csv"), 400, "batch.encoding"),
        (post(b"PK\x03\x04 not really a zip", XLSX), 400, "batch.malformed"),
        (post(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 legacy", XLSX), 415, "batch.format"),
        (post(as_xlsx([record(1)]), "text/csv"), 415, "batch.format"),
        (post(b"<xml/>", "application/xml"), 415, "batch.content-type"),
        (post(as_csv([record(1)]), "text/csv", key=None), 400, "batch.key"),
    ]
    for r, status, code in cases:
        assert r.status_code == status, (code, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code, (code, r.json())
    # An unknown JSON field is a row error naming it.
    r = client.post(BATCHES, json=batch("u", record(1, remark="x")), headers=h)
    assert rules_of(r) == [(1, "remark", "field.unknown")]
    # An ID number that Excel stored as a number is refused with the reason.
    book = as_xlsx([record(1, id_number=510402198001010011)])
    r = post(book, XLSX)
    assert (2, "id_number", "id.excel-number") in rules_of(r)
    # A formula cell in XLSX is refused, not evaluated.
    r = post(as_xlsx([record(1, employer="=1+1")]), XLSX)
    assert (2, "employer", "cell.formula") in rules_of(r)
    assert written(ctx)[1] == 0


def test_batch_limits_answer_413(settings: Any, ctx: Any) -> None:
    from litestar.testing import TestClient

    from api.app import create_app

    small = settings.model_copy(update={"max_batch_rows": 3, "max_batch_bytes": 4096})
    ctx.settings = small
    keys = world(ctx)
    with TestClient(app=create_app(small, context=ctx)) as client:
        r = client.post(
            BATCHES, json=batch("big", *[record(i) for i in range(4)]), headers=keys["base:1"]
        )
        assert r.status_code == 413 and r.json()["code"] == "batch.too-many-rows", r.text
        r = client.post(
            BATCHES,
            content=as_csv([record(i) for i in range(4)]),
            headers={**keys["base:1"], "Content-Type": "text/csv", "Idempotency-Key": "big"},
        )
        assert r.status_code == 413
        huge = batch("huge", record(1, employer="单" * 180), record(2, employer="位" * 180),
                     record(3, employer="名" * 180))  # fmt: skip
        r = client.post(BATCHES, json=huge | {"pad": "x" * 5000}, headers=keys["base:1"])
        assert r.status_code == 413, r.text
        assert written(ctx)[1] == 0


def test_receipt_covers_every_record_with_one_checkpoint(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    records = [record(i) for i in range(1, 40)]
    r = client.post(BATCHES, json=batch("40", *records), headers=keys["base:1"])
    assert r.status_code == 201
    receipt = r.json()
    with ctx.db.reader() as s:
        size = Log.size(s)
    assert receipt["ledger"]["tree_size"] == size
    idx = [x["log_index"] for x in receipt["records"]]
    assert idx == list(range(idx[0], idx[0] + 39))
    assert len({x["record"] for x in receipt["records"]}) == 39
    assert hashlib.sha256(r.content).digest()  # receipts are plain JSON bytes, stored as sent
