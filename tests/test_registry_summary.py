"""The annual execution summary from synthetic completion rows (the completions feature will
feed real ones): counting rules, the policy's minimum, and the JSON/CSV/PDF renderings."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from certificates.summary_pdf import summary_pdf
from ledger.policy import PolicyRegistry
from ledger.registry.demo import DEMO_YEAR, seed_demo
from ledger.registry.services import execution_summary
from ledger.registry.summary import CompletionRow, PlannedClass, summarise, to_csv

REGISTRY = PolicyRegistry.load_builtin()
NATIONAL = REGISTRY.effective("CN")
PANZHIHUA = REGISTRY.effective("CN-SC-PZH")

PLANNED = [
    PlannedClass("C1", "职业道德", "公需", "面授", Decimal("6"), 100),
    PlannedClass("C2", "新材料研修", "专业", "网络", Decimal("12.5"), 50),
    PlannedClass("C3", "学术会议", "选修", "会议", Decimal("3"), 30),
]
ROWS = [
    CompletionRow("subj-a", "C1", "公需", "面授", Decimal("6")),
    CompletionRow("subj-a", "C2", "专业", "网络", Decimal("12.5")),
    CompletionRow("subj-b", "C1", "公需", "面授", Decimal("3")),
    CompletionRow("subj-b", "C1", "公需", "面授", Decimal("3")),  # a second session, same class
    CompletionRow("subj-c", "C2", "专业", "网络", Decimal("12.5")),
    CompletionRow("subj-d", "X9", "专业", "面授", Decimal("2")),  # not in the plan
]


def _summary(policy: Any, rows: list[CompletionRow] = ROWS) -> Any:
    return summarise(
        base="base:1", base_name="示例基地", year=2026, policy=policy, planned=PLANNED, rows=rows
    )


def test_counts_and_hours() -> None:
    s = _summary(NATIONAL)
    assert (s.trainees, s.person_times) == (4, 5)
    assert s.person_hours == Decimal("39.0")
    assert s.person_hours_by_category == {
        "公需": Decimal("12.0"),
        "专业": Decimal("27.0"),
        "选修": Decimal("0.0"),
    }
    assert s.person_hours_by_mode["面授"] == Decimal("14.0") and s.person_hours_by_mode[
        "网络"
    ] == Decimal("25.0")
    assert (s.classes_planned, s.classes_run, s.classes_not_run, s.unplanned_classes) == (
        3,
        2,
        ("C3",),
        ("X9",),
    )
    lines = {c.code: c for c in s.classes}
    assert lines["C1"].trainees == 2 and lines["C1"].person_hours == Decimal("12.0")
    assert not lines["X9"].planned and lines["X9"].planned_hours is None


def test_minimum_is_counted_the_policys_way() -> None:
    # National: 名 = distinct people; Panzhihua: 人次 = person-times (same threshold of 2000).
    assert (
        _summary(NATIONAL).counted_trainees == 4
        and NATIONAL.trainee_count_mode == "distinct_people"
    )
    assert (
        _summary(PANZHIHUA).counted_trainees == 5 and PANZHIHUA.trainee_count_mode == "person_times"
    )
    assert not _summary(NATIONAL).minimum_met and _summary(NATIONAL).min_trainees_per_year == 2000
    assert _summary(NATIONAL.model_copy(update={"min_trainees_per_year": 4})).minimum_met
    assert not _summary(NATIONAL.model_copy(update={"min_trainees_per_year": 5})).minimum_met
    assert _summary(PANZHIHUA.model_copy(update={"min_trainees_per_year": 5})).minimum_met


def test_renderings() -> None:
    s = _summary(PANZHIHUA)
    data = s.to_json()
    assert data["person_hours"] == "39.0" and data["person_hours_by_category"]["专业"] == "27.0"
    assert data["policy"] == "CN-SC-PZH@1" and data["minimum_met"] is False

    text = to_csv(s)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    figures = dict(r for r in rows if len(r) == 2)
    assert figures["培训人次 person-times"] == "5" and figures["是否达标 minimum met"] == "否 no"
    header = rows.index(next(r for r in rows if r and r[0] == "code 班次编号"))
    assert [r[0] for r in rows[header + 1 :]] == ["C1", "C2", "C3", "X9"]

    pdf = summary_pdf(s)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    # The CJK font is embedded (a subset), not left to the reader's machine.
    assert b"/FontFile2" in pdf and b"STSong-Light" not in pdf


_rows = st.lists(
    st.builds(
        CompletionRow,
        subject=st.sampled_from(["s1", "s2", "s3", "s4"]),
        class_code=st.sampled_from(["C1", "C2", "C3", "Z"]),
        category=st.sampled_from(["公需", "专业", "选修"]),
        mode=st.sampled_from(["面授", "网络"]),
        hours=st.decimals(min_value=Decimal("0.1"), max_value=Decimal("40"), places=1),
    ),
    max_size=30,
)


@given(_rows)
def test_summary_invariants(rows: list[CompletionRow]) -> None:
    s = _summary(PANZHIHUA, rows)
    assert s.trainees <= s.person_times <= len(rows)
    assert (
        sum(s.person_hours_by_category.values())
        == s.person_hours
        == sum(s.person_hours_by_mode.values())
    )
    assert s.person_hours == sum((r.hours for r in rows), Decimal(0))
    assert s.classes_run + len(s.classes_not_run) == s.classes_planned
    assert sum(c.person_hours for c in s.classes) == s.person_hours


def test_summary_from_the_registry(ctx: Any) -> None:
    seed_demo(ctx.db, ctx.log)
    rows = [
        CompletionRow("s1", f"PZXY-{DEMO_YEAR}-01", "公需", "面授", Decimal("6")),
        CompletionRow("s1", f"PZXY-{DEMO_YEAR}-02", "专业", "面授", Decimal("24")),
        CompletionRow("s2", f"PZXY-{DEMO_YEAR}-02", "专业", "面授", Decimal("24")),
    ]
    with ctx.db.reader() as s:
        summary = execution_summary(s, 1, DEMO_YEAR, rows)
        empty = execution_summary(s, 5, DEMO_YEAR, [])  # its only plan was returned
    assert (
        summary.base_name == "示例学院专业技术人员继续教育基地" and summary.policy == "CN-SC-PZH@1"
    )
    assert (
        summary.classes_planned,
        summary.classes_run,
        summary.person_times,
        summary.trainees,
    ) == (4, 2, 3, 2)
    assert summary.trainee_count_mode == "person_times" and summary.counted_trainees == 3
    assert empty.classes_planned == 0 and empty.trainee_count_mode == "distinct_people"


def test_summary_pdf_text_is_extractable(tmp_path: Any) -> None:
    import subprocess

    s = _summary(PANZHIHUA)
    path = tmp_path / "s.pdf"
    path.write_bytes(summary_pdf(s))
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert "年度计划执行情况总结" in text and s.base_name in text
