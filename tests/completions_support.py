"""Helpers shared by the completion tests (no tests here).

``world`` seeds the demo registry as it stood on 1 December 2025 (bases recognised then, plans
for 2026 approved), so the 2026 classes of base 1 (示例学院) fall inside its recognition.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ledger.completions.intake import COLUMNS
from ledger.completions.models import CompletionRecord
from ledger.identity import check_character
from ledger.registry.demo import DEMO_YEAR, seed_demo
from ledger.registry.services import CHINA_TZ
from tests.test_registry_support import bearer, log_size

SEEDED_AT = datetime(DEMO_YEAR - 1, 12, 1, 9, 0, tzinfo=CHINA_TZ)
BATCHES = "/api/v1/bases/1/batches"
#: Classes of base 1's approved 2026 plan (see ledger.registry.demo).
ETHICS = f"PZXY-{DEMO_YEAR}-01"  # 公需 面授 6 学时, 03-10, free
MATERIALS = f"PZXY-{DEMO_YEAR}-02"  # 专业 面授 24 学时, 05-10..05-13, 1200 元
ONLINE = f"PZXY-{DEMO_YEAR}-03"  # 专业 网络 12 学时, 07-10..07-11, 300 元
FORUM = f"PZXY-{DEMO_YEAR}-04"  # 选修 会议 6 学时, 09-10, 200.50 元
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def id_number(n: int, birth: str = "19800101", region: str = "510402") -> str:
    first17 = f"{region}{birth}{n % 1000:03d}"
    return first17 + check_character(first17)


def world(ctx: Any) -> dict[str, dict[str, str]]:
    info = seed_demo(ctx.db, ctx.log, now=SEEDED_AT)
    return {k.principal: bearer(k.key) for k in info.keys}


def record(n: int, **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "name": f"张{'一二三四五六七八九十'[n % 10]}{'甲乙丙丁'[n // 10 % 4]}",
        "id_number": id_number(n),
        "employer": "攀枝花市示例医院",
        "year": DEMO_YEAR,
        "category": "专业",
        "class_code": MATERIALS,
        "mode": "面授",
        "start": f"{DEMO_YEAR}-05-10",
        "end": f"{DEMO_YEAR}-05-13",
        "hours": "24",
        "result": "合格",
        "fee_yuan": "1200",
    }
    r.update(over)
    return {k: v for k, v in r.items() if v is not None}


def batch(key: str, *records: dict[str, Any]) -> dict[str, Any]:
    return {"batch_key": key, "records": list(records)}


def as_csv(records: list[dict[str, Any]], encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([c.header for c in COLUMNS])
    for r in records:
        w.writerow([r.get(c.key, "") for c in COLUMNS])
    return out.getvalue().encode(encoding)


def as_xlsx(records: list[dict[str, Any]], headers: list[str] | None = None) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(headers or [c.header for c in COLUMNS])
    for r in records:
        sheet.append([r.get(c.key) for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def record_count(ctx: Any) -> int:
    with ctx.db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(CompletionRecord)) or 0)


def written(ctx: Any) -> tuple[int, int]:
    """(log size, completion rows): unchanged means nothing was written."""
    return log_size(ctx), record_count(ctx)


def rules_of(r: Any) -> list[tuple[int, str, str]]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return [(e["row"], e["field"], e["rule"]) for e in r.json()["errors"]]
