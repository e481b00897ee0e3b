"""Assessing credited 学时 against national, Sichuan, Panzhihua and a cycle policy."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.compliance import (
    ComplianceError,
    ComplianceResult,
    CreditedHours,
    assess,
    assess_cycle,
    hours_from_minutes,
)
from ledger.errors import LedgerError
from ledger.policy import EffectivePolicy, PolicyRegistry

REGISTRY = PolicyRegistry.load_builtin()
NATIONAL = REGISTRY.effective("CN")
SICHUAN = REGISTRY.effective("CN-SC")
PANZHIHUA = REGISTRY.effective("CN-SC-PZH")


def h(year: int, category: str, mode: str, hours: str | int, **kw: Any) -> CreditedHours:
    return CreditedHours(year, category, mode, Decimal(hours), **kw)


def one(policy: EffectivePolicy, items: list[CreditedHours], year: int = 2026) -> ComplianceResult:
    (result,) = assess(policy, items, [year])
    return result


def cycle_policy(anchor: int | None = 2024) -> EffectivePolicy:
    # Shanghai-like: 180 学时 per 3-year cycle, 专业 at least two thirds of it.
    requirement: dict[str, Any] = {"period": "cycle", "years": 3, "total": 180}
    if anchor is not None:
        requirement["anchor_year"] = anchor
    doc = {
        "code": "CN-SH",
        "name": "上海市",
        "level": "province",
        "parent": "CN",
        "version": 1,
        "effective_from": "2024-01-01",
        "source": "test policy",
        "hours": {
            "requirement": requirement,
            "category_minimums": [{"category": "专业", "min_hours": 120}],
            "online_caps": [{"category": "专业", "mode": "网络", "max_hours_per_year": 40}],
        },
    }
    return REGISTRY.from_json(json.dumps(doc).encode()).effective("CN-SH")


def test_errors_are_ledger_errors() -> None:
    assert issubclass(ComplianceError, LedgerError)


# --- national: 90 a year, 专业 at least two thirds ---------------------------------------


def test_national_met() -> None:
    result = one(NATIONAL, [h(2026, "专业", "面授", 70), h(2026, "公需", "网络", "26")])
    assert result.met and result.total_met
    assert [result.total, result.required, result.shortfall] == [96, 90, 0]
    assert result.by_category == {"公需": Decimal(26), "专业": Decimal(70), "选修": Decimal(0)}
    (check,) = result.category_checks
    assert check.category == "专业"
    assert [check.counted, check.required, check.met] == [70, 60, True]
    assert result.summary_zh == "2026年：96/90 学时 ✓；专业 70 ≥ 60 ✓；达标"
    assert (
        result.summary_en == "2026: 96/90 hours ✓; 专业 (professional) 70 ≥ 60 ✓; requirement met"
    )
    assert result.period == "year" and result.years == (2026,)
    assert (result.policy_code, result.policy_version) == ("CN", 1)


def test_national_short_in_total() -> None:
    result = one(NATIONAL, [h(2026, "专业", "面授", "62.5"), h(2026, "公需", "面授", 20)])
    assert not result.met and not result.total_met
    assert result.total == Decimal("82.5")
    assert result.shortfall == Decimal("7.5")
    assert result.category_checks[0].met
    assert "82.5/90 学时 ✗（差 7.5）" in result.summary_zh
    assert "short by 7.5" in result.summary_en
    assert result.summary_zh.endswith("未达标")


def test_national_short_in_a_category() -> None:
    result = one(NATIONAL, [h(2026, "专业", "面授", 50), h(2026, "公需", "面授", 45)])
    assert result.total_met and not result.met
    (check,) = result.category_checks
    assert (check.met, check.shortfall) == (False, Decimal(10))
    assert "专业 50 < 60 ✗（差 10）" in result.summary_zh


def test_years_are_separate_and_sorted() -> None:
    items = [h(2025, "专业", "面授", 90), h(2026, "专业", "面授", 30), h(2027, "专业", "面授", 200)]
    results = assess(NATIONAL, items, [2026, 2025, 2026])
    assert [r.years for r in results] == [(2025,), (2026,)]
    assert [r.met for r in results] == [True, False]
    # Hours of 2027 do not spill into 2026 (no carry-over).
    assert results[1].total == 30
    assert assess(NATIONAL, items, range(2025, 2028))[2].met


def test_no_items_is_not_met() -> None:
    result = one(NATIONAL, [])
    assert not result.met and result.total == 0 and result.shortfall == 90


# --- Sichuan: 公需 at least 30; online 专业 capped at 30 a year ----------------------------


def test_sichuan_met() -> None:
    items = [h(2026, "公需", "网络", 30), h(2026, "专业", "网络", 30), h(2026, "专业", "面授", 30)]
    result = one(SICHUAN, items)
    assert result.met
    assert result.caps_applied == ()
    assert [c.category for c in result.category_checks] == ["公需", "专业"]


def test_sichuan_short_in_public_subjects() -> None:
    items = [h(2026, "公需", "面授", 20), h(2026, "专业", "面授", 80)]
    result = one(SICHUAN, items)
    assert result.total_met and not result.met
    gongxu = result.category_checks[0]
    assert (gongxu.category, gongxu.shortfall) == ("公需", Decimal(10))


def test_sichuan_online_cap_applied() -> None:
    items = [h(2026, "公需", "面授", 30), h(2026, "专业", "网络", 50), h(2026, "专业", "面授", 20)]
    result = one(SICHUAN, items)
    assert result.claimed == 100
    assert result.total == 80  # 20 online 专业 hours above the cap are not counted
    assert result.by_category["专业"] == 50
    (cut,) = result.caps_applied
    assert (cut.year, cut.category, cut.mode) == (2026, "专业", "网络")
    assert [cut.cap, cut.claimed, cut.counted, cut.not_counted] == [30, 50, 30, 20]
    assert not result.met
    assert "网络专业超出年度上限 30 学时的 20 学时不计入" in result.summary_zh
    assert "20 online (网络) 专业 hours above the yearly cap of 30 not counted" in result.summary_en


def test_sichuan_cap_is_scoped_to_municipal_bases() -> None:
    items = [
        h(2026, "公需", "面授", 30),
        h(2026, "专业", "网络", 40, base_level="province"),
        h(2026, "专业", "网络", 25, base_level="city"),
    ]
    result = one(SICHUAN, items)
    assert result.caps_applied == ()
    assert result.met
    # Unknown base level: capped (nothing is credited that cannot be justified).
    capped = one(SICHUAN, [*items, h(2026, "专业", "网络", 10)])
    assert capped.caps_applied[0].not_counted == 5


def test_sichuan_cap_is_per_year() -> None:
    items = [h(2025, "专业", "网络", 40), h(2026, "专业", "网络", 40)]
    results = assess(SICHUAN, items, [2025, 2026])
    assert [r.total for r in results] == [30, 30]


# --- Panzhihua inherits Sichuan's hours rules ----------------------------------------------


def test_panzhihua_inherits_hours_rules() -> None:
    items = [h(2026, "公需", "面授", 30), h(2026, "专业", "网络", 50), h(2026, "专业", "面授", 30)]
    result = one(PANZHIHUA, items)
    assert result.policy_code == "CN-SC-PZH"
    assert result.total == 90
    assert result.caps_applied[0].not_counted == 20
    assert result.met
    assert result.summary_zh.startswith("2026年：90/90 学时 ✓；公需 30 ≥ 30 ✓；专业 60 ≥ 60 ✓")


# --- a cycle policy (Shanghai-like 180 per 3 years) -----------------------------------------


def test_cycle_met() -> None:
    policy = cycle_policy()
    items = [
        h(2024, "专业", "面授", 50),
        h(2025, "专业", "面授", 50),
        h(2026, "专业", "面授", 30),
        h(2026, "公需", "面授", 55),
    ]
    result = assess_cycle(policy, items, 2024)
    assert result.period == "cycle"
    assert result.years == (2024, 2025, 2026)
    assert (result.first_year, result.last_year) == (2024, 2026)
    assert [result.total, result.required] == [185, 180]
    assert result.met
    assert result.summary_zh.startswith("2024–2026年（3年周期）：185/180 学时 ✓；专业 130 ≥ 120 ✓")
    assert result.summary_en.startswith("2024–2026 (3-year cycle): 185/180 hours ✓")


def test_cycle_caps_apply_per_year() -> None:
    policy = cycle_policy()
    items = [h(y, "专业", "网络", 60) for y in (2024, 2025, 2026)]
    result = assess_cycle(policy, items, 2024)
    assert result.claimed == 180
    assert result.total == 120
    assert [c.year for c in result.caps_applied] == [2024, 2025, 2026]
    assert not result.met
    assert "2025年网络专业超出年度上限 40 学时的 20 学时不计入" in result.summary_zh


def test_assess_groups_years_into_anchored_cycles() -> None:
    policy = cycle_policy()
    items = [h(2027, "专业", "面授", 180)]
    results = assess(policy, items, range(2025, 2029))
    assert [r.years for r in results] == [(2024, 2025, 2026), (2027, 2028, 2029)]
    assert [r.met for r in results] == [False, True]


def test_cycle_misuse() -> None:
    with pytest.raises(ComplianceError, match="2025 falls in the cycle starting 2024"):
        assess_cycle(cycle_policy(), [], 2025)
    with pytest.raises(ComplianceError, match="use assess_cycle") as info:
        assess(cycle_policy(anchor=None), [], [2025])
    assert info.value.field == "years"
    # Per-person cycles start wherever the person's cycle starts.
    assert assess_cycle(cycle_policy(anchor=None), [], 2025).years == (2025, 2026, 2027)
    with pytest.raises(ComplianceError, match="every year, not per cycle") as info:
        assess_cycle(NATIONAL, [], 2024)
    assert info.value.field == "policy"


# --- input checks -------------------------------------------------------------------------


def test_unknown_category_or_mode_is_named() -> None:
    with pytest.raises(ComplianceError, match="category '公修' is unknown") as info:
        assess(NATIONAL, [h(2026, "专业", "面授", 1), h(2026, "公修", "面授", 1)], [2026])
    assert info.value.field == "items[1].category"
    with pytest.raises(ComplianceError) as info:
        assess(NATIONAL, [h(2026, "专业", "直播", 1)], [2026])
    assert info.value.field == "items[0].mode"


@pytest.mark.parametrize(
    ("hours", "words"),
    [
        (Decimal("1.25"), "one decimal place"),
        (Decimal(-1), "negative"),
        (Decimal("NaN"), "finite"),
        (1.5, "never a float"),
    ],
)
def test_bad_hours(hours: Any, words: str) -> None:
    with pytest.raises(ComplianceError, match=words) as info:
        CreditedHours(2026, "专业", "面授", hours)
    assert info.value.field == "hours"


def test_hours_are_normalised() -> None:
    assert str(CreditedHours(2026, "专业", "面授", Decimal("1.50")).hours) == "1.5"
    assert str(CreditedHours(2026, "专业", "面授", Decimal(2)).hours) == "2.0"
    with pytest.raises(ComplianceError):
        CreditedHours(2026, "专业", "面授", Decimal(1), base_level="county")  # type: ignore[arg-type]


def test_hours_from_minutes_rounds_down() -> None:
    assert hours_from_minutes(90, 45) == Decimal("2.0")
    assert hours_from_minutes(100, 45) == Decimal("2.2")
    assert hours_from_minutes(44, 45) == Decimal("0.9")
    with pytest.raises(ComplianceError):
        hours_from_minutes(-1, 45)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["公需", "专业", "选修"]),
            st.sampled_from(["面授", "网络", "会议"]),
            st.integers(0, 400).map(lambda n: Decimal(n) / 10),
        ),
        max_size=20,
    )
)
def test_counted_never_exceeds_claimed(rows: list[tuple[str, str, Decimal]]) -> None:
    items = [CreditedHours(2026, c, m, x) for c, m, x in rows]
    result = one(SICHUAN, items)
    assert result.total == sum(result.by_category.values())
    assert result.total <= result.claimed
    assert result.claimed - result.total == sum(c.not_counted for c in result.caps_applied)
    online_professional = sum(
        (i.hours for i in items if i.category == "专业" and i.mode == "网络"), Decimal(0)
    )
    assert result.claimed - result.total == max(online_professional - 30, 0)
    assert result.met == (
        result.total >= 90 and all(c.counted >= c.required for c in result.category_checks)
    )
