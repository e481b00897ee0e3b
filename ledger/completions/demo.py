"""Demo completions: one batch from the demo college (base 1), so a newcomer has records,
receipts, certificates and transcripts to look at.  Fictional people with valid-format ID
numbers; seeded once, with the demo registry."""

from __future__ import annotations

from typing import Final

from ledger.completions.intake import parse_json_records
from ledger.completions.pii import PersonalDataVault
from ledger.completions.services import post_batch
from ledger.identity import check_character
from ledger.registry.auth import Principal
from ledger.registry.demo import DEMO_YEAR
from ledger.storage.db import Database
from ledger.storage.log import Log

__all__ = ["DEMO_PEOPLE", "seed_completions"]

#: (name, birth date): fictional professionals, one with a rare surname character.
DEMO_PEOPLE: Final = (
    ("张伟", "19850312"),
    ("王芳", "19900521"),
    ("李娜", "19881103"),
    ("刘洋", "19790630"),
    ("陈静", "19921218"),
    ("欧阳䶮", "19830407"),
)


def demo_id_number(i: int, birth: str) -> str:
    first17 = f"510402{birth}{100 + i:03d}"
    return first17 + check_character(first17)


def seed_completions(db: Database, log: Log, vault: PersonalDataVault) -> list[str]:
    """Post the demo batch (every person in classes 01, 02 and 04 of base 1's plan)."""
    classes = (
        ("01", "公需", "面授", "03-10", "03-10", "6", "0"),
        ("02", "专业", "面授", "05-10", "05-13", "24", "1200"),
        ("04", "选修", "会议", "09-10", "09-10", "6", "200.50"),
    )
    records = [
        {
            "name": name,
            "id_number": demo_id_number(i, birth),
            "employer": "示例市人民医院",
            "year": DEMO_YEAR,
            "category": category,
            "class_code": f"PZXY-{DEMO_YEAR}-{code}",
            "mode": mode,
            "start": f"{DEMO_YEAR}-{start}",
            "end": f"{DEMO_YEAR}-{end}",
            "hours": hours,
            "result": "合格",
            "fee_yuan": fee,
        }
        for code, category, mode, start, end, hours, fee in classes
        for i, (name, birth) in enumerate(DEMO_PEOPLE)
    ]
    base = Principal("base:1", "base", "CN-SC-PZH", base=1)
    with db.writer() as s:
        posted = post_batch(
            s, log, vault, base, 1, parse_json_records(records, max_rows=1000),
            batch_key="demo-batch-1",
        )  # fmt: skip
    receipt = posted.as_json()
    first = receipt["records"][0]["record"]
    return [
        f"demo batch      {receipt['batch']}: {receipt['count']} records of 示例学院 (base 1), "
        f"ledger entries {receipt['ledger']['first_index']}–{receipt['ledger']['last_index']}",
        f"  a record      /api/v1/completions/{first}   (needs base:1's key)",
        f"  certificate   POST /api/v1/completions/{first}/certificate",
        f'  transcript    POST /api/v1/transcripts {{"id_number": "{demo_id_number(0, DEMO_PEOPLE[0][1])}", '
        f'"years": [{DEMO_YEAR}]}}   (authority key)',
        "  batch template /api/v1/completions/template/xlsx",
    ]
