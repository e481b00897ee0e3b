"""Jurisdiction policies: the shipped data, inheritance, new versions and refused uploads."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from typing import Any

import pytest

from ledger.errors import LedgerError
from ledger.policy import (
    BUILTIN_POLICY_FILES,
    INHERITABLE_FIELDS,
    CycleRequirement,
    JurisdictionPolicy,
    MonthDay,
    PolicyError,
    PolicyRegistry,
    YearRequirement,
    parse_policy,
    resolve,
)


@pytest.fixture(scope="module")
def registry() -> PolicyRegistry:
    return PolicyRegistry.load_builtin()


def builtin_doc(name: str) -> dict[str, Any]:
    data = resources.files("ledger.policies").joinpath(name).read_bytes()
    doc: dict[str, Any] = json.loads(data)
    return doc


def upload(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def refused(registry: PolicyRegistry, doc: dict[str, Any]) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        registry.from_json(upload(doc))
    return info.value


# --- the shipped policies -----------------------------------------------------------------


def test_builtin_policies_load(registry: PolicyRegistry) -> None:
    assert registry.codes() == ("CN", "CN-SC", "CN-SC-PZH")
    assert [registry.get(c).level for c in registry.codes()] == ["national", "province", "city"]
    assert registry.get("CN").name == "人力资源社会保障部"
    assert registry.get("CN-SC").name == "四川省"
    assert registry.get("CN-SC-PZH").name == "攀枝花市"
    assert len(BUILTIN_POLICY_FILES) == 3


def test_national_policy(registry: PolicyRegistry) -> None:
    cn = registry.effective("CN")
    assert cn.register_name == "《专业技术人员继续教育证书》"
    assert cn.plan_filing.management_unit_deadline == MonthDay(month=12, day=10)
    assert cn.plan_filing.authority_deadline == MonthDay(month=12, day=31)
    assert cn.plan_filing.execution_summary_required is True
    # Deadlines fall in the year before the plan year.
    assert cn.plan_filing.management_unit_due(2027) == date(2026, 12, 10)
    assert cn.plan_filing.authority_due(2027) == date(2026, 12, 31)
    assert cn.rectification_months is None
    assert "no period" in cn.notes["rectification_months"]
    assert (cn.min_trainees_per_year, cn.trainee_count_mode) == (2000, "distinct_people")
    hours = cn.hours
    assert hours.requirement == YearRequirement(period="year", total=Decimal(90))
    assert hours.category_minimums[0].min_fraction == Fraction(2, 3)
    assert hours.category_required("专业") == Decimal("60.0")
    assert hours.category_required("公需") == 0
    assert hours.categories == ("公需", "专业", "选修")
    assert {"面授", "网络", "会议", "实践"} <= set(hours.modes)
    assert hours.minutes_per_hour == 45
    assert hours.daily_cap_hours is None
    assert hours.online_caps == ()
    assert hours.correction_window_days == 90
    assert "[secondary]" in cn.notes["hours.requirement"]


def test_sichuan_policy(registry: PolicyRegistry) -> None:
    sc = registry.effective("CN-SC")
    assert sc.register_name == "《四川省专业技术人员继续教育登记证书》"
    assert sc.hours.category_required("公需") == Decimal(30)
    assert sc.hours.category_required("专业") == Decimal(60)
    assert sc.hours.daily_cap_hours == Decimal(6)
    (cap,) = sc.hours.online_caps
    assert (cap.category, cap.mode, cap.max_hours_per_year) == ("专业", "网络", Decimal(30))
    assert cap.base_levels == ("city",)
    assert sc.hours.cross_year_records_allowed is False
    # Inherited from national.
    assert sc.plan_filing.authority_deadline == MonthDay(month=12, day=31)
    assert sc.provenance["plan_filing.authority_deadline"] == "CN"
    assert sc.provenance["hours.daily_cap_hours"] == "CN-SC"


def test_panzhihua_inherits(registry: PolicyRegistry) -> None:
    pzh = registry.effective("CN-SC-PZH")
    assert [link.code for link in pzh.chain] == ["CN", "CN-SC", "CN-SC-PZH"]
    assert pzh.register_name == "《四川省专业技术人员继续教育登记证书》"
    assert pzh.provenance["register_name"] == "CN-SC"
    assert pzh.plan_filing.authority_deadline == MonthDay(month=11, day=30)
    assert pzh.plan_filing.authority_due(2022) == date(2021, 11, 30)
    assert pzh.plan_filing.management_unit_deadline is None
    assert pzh.plan_filing.management_unit_due(2022) is None
    assert pzh.rectification_months == 3
    assert pzh.trainee_count_mode == "person_times"
    assert pzh.min_trainees_per_year == 2000
    # Hours come from Sichuan, and from national through Sichuan.
    assert pzh.hours.daily_cap_hours == Decimal(6)
    assert pzh.hours.requirement.total == Decimal(90)
    assert pzh.provenance["hours.requirement"] == "CN"
    assert pzh.provenance["hours.online_caps"] == "CN-SC"
    # Notes follow the value: the register's citation is Sichuan's, the deadline's Panzhihua's.
    assert "第十七条" in pzh.notes["register_name"]
    assert "11月底" in pzh.notes["plan_filing.authority_deadline"]


def test_every_rule_is_populated_and_cited(registry: PolicyRegistry) -> None:
    for code in registry.codes():
        effective = registry.effective(code)
        assert set(effective.provenance) == set(INHERITABLE_FIELDS)
    national = registry.get("CN")
    assert set(INHERITABLE_FIELDS) <= set(national.notes)


def test_chain_and_lookup(registry: PolicyRegistry) -> None:
    assert [p.code for p in registry.chain("CN-SC-PZH")] == ["CN", "CN-SC", "CN-SC-PZH"]
    assert "CN-SC" in registry
    with pytest.raises(PolicyError, match="unknown jurisdiction 'CN-GD'") as info:
        registry.get("CN-GD")
    assert info.value.field == "code"
    with pytest.raises(PolicyError, match="no version of CN-SC-PZH is in force on 2020-01-01"):
        registry.effective("CN-SC-PZH", at=date(2020, 1, 1))
    assert registry.effective("CN-SC-PZH", at=date(2021, 9, 3)).version == 1


# --- new versions -------------------------------------------------------------------------


def test_new_version_replaces(registry: PolicyRegistry) -> None:
    doc = builtin_doc("panzhihua.json")
    doc.update(version=2, effective_from="2025-01-01", rectification_months=6)
    doc["plan_filing"]["authority_deadline"] = {"month": 11, "day": 15}
    newer = registry.from_json(upload(doc))
    assert newer.get("CN-SC-PZH").version == 2
    assert newer.effective("CN-SC-PZH").rectification_months == 6
    assert newer.effective("CN-SC-PZH").plan_filing.authority_due(2026) == date(2025, 11, 15)
    # History is kept and can be asked for by date; the old registry is unchanged.
    assert [p.version for p in newer.versions("CN-SC-PZH")] == [1, 2]
    assert newer.effective("CN-SC-PZH", at=date(2024, 6, 1)).rectification_months == 3
    assert registry.effective("CN-SC-PZH").rectification_months == 3


def test_new_parent_version_reaches_children(registry: PolicyRegistry) -> None:
    doc = builtin_doc("sichuan.json")
    doc.update(version=2, effective_from="2026-01-01")
    doc["hours"]["daily_cap_hours"] = 8
    newer = registry.from_json(upload(doc))
    assert newer.effective("CN-SC-PZH").hours.daily_cap_hours == Decimal(8)


def test_child_can_clear_a_nullable_rule(registry: PolicyRegistry) -> None:
    doc = builtin_doc("panzhihua.json")
    doc.update(version=2, effective_from="2025-01-01", hours={"daily_cap_hours": None})
    pzh = registry.from_json(upload(doc)).effective("CN-SC-PZH")
    assert pzh.hours.daily_cap_hours is None
    assert pzh.provenance["hours.daily_cap_hours"] == "CN-SC-PZH"
    assert pzh.hours.minutes_per_hour == 45  # the rest of the section is still inherited


def test_a_new_jurisdiction_can_be_added(registry: PolicyRegistry) -> None:
    doc = {
        "code": "CN-SH",
        "name": "上海市",
        "level": "province",
        "parent": "CN",
        "version": 1,
        "effective_from": "2024-01-01",
        "source": "test",
        "hours": {"requirement": {"period": "cycle", "years": 3, "total": 180}},
    }
    sh = registry.from_json(upload(doc)).effective("CN-SH")
    assert sh.hours.requirement == CycleRequirement(period="cycle", years=3, total=Decimal(180))
    assert sh.hours.category_required("专业") == Decimal(120)


# --- refused uploads ----------------------------------------------------------------------


def test_errors_are_ledger_errors() -> None:
    assert issubclass(PolicyError, LedgerError)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"version": "2"}, "version", "valid integer"),
        ({"version": 2.0}, "version", "valid integer"),
        ({"effective_from": "next year"}, "effective_from", "date"),
        ({"level": "county"}, "level", "national"),
        ({"rectification_months": True}, "rectification_months", "integer"),
        ({"register_name": None}, "register_name", "omit the field"),
        ({"trainee_count_mode": "people"}, "trainee_count_mode", "person_times"),
        (
            {"plan_filing": {"authority_deadline": {"month": 11, "day": 31}}},
            "plan_filing.authority_deadline",
            "day 31",
        ),
        (
            {"hours": {"requirement": {"period": "year", "total": "ninety"}}},
            "hours.requirement.total",
            "decimal",
        ),
        ({"hours": {"requirement": {"period": "month", "total": 9}}}, "hours.requirement", "year"),
        (
            {"hours": {"requirement": {"period": "year", "total": 0}}},
            "hours.requirement.total",
            "greater than 0",
        ),
        (
            {"hours": {"requirement": {"period": "year", "total": 90.25}}},
            "hours.requirement.total",
            "decimal place",
        ),
        ({"hours": {"daily_cap_hours": -1}}, "hours.daily_cap_hours", "greater than 0"),
        (
            {"hours": {"category_minimums": [{"category": "专业", "min_fraction": "3/2"}]}},
            "hours.category_minimums[0].min_fraction",
            "between 0 and 1",
        ),
        (
            {"hours": {"category_minimums": [{"category": "专业", "min_fraction": "two thirds"}]}},
            "hours.category_minimums[0].min_fraction",
            '"2/3"',
        ),
        (
            {"hours": {"category_minimums": [{"category": "专业"}]}},
            "hours.category_minimums[0]",
            "neither",
        ),
        ({"hours": {"minutes_per_hour": None}}, "hours.minutes_per_hour", "omit the field"),
        ({"hours": {"categories": []}}, "hours.categories", "at least 1"),
    ],
)
def test_bad_field_types_and_values(
    registry: PolicyRegistry, change: dict[str, Any], field: str, words: str
) -> None:
    doc = builtin_doc("panzhihua.json") | {"version": 2} | change
    error = refused(registry, doc)
    assert error.field == field
    assert words in error.reason
    assert error.policy == "CN-SC-PZH"
    assert field in str(error)


def test_extra_field_is_refused(registry: PolicyRegistry) -> None:
    doc = builtin_doc("panzhihua.json") | {"version": 2, "rectification_month": 3}
    error = refused(registry, doc)
    assert error.field == "rectification_month"
    assert "unknown field" in error.reason

    doc = builtin_doc("panzhihua.json") | {"version": 2, "hours": {"daily_cap": 5}}
    assert refused(registry, doc).field == "hours.daily_cap"


def test_several_errors_are_all_named(registry: PolicyRegistry) -> None:
    doc = builtin_doc("panzhihua.json") | {"version": "x", "rectification_months": "x"}
    error = refused(registry, doc)
    assert error.field == "version"
    assert "rectification_months" in error.reason


def test_version_must_increase(registry: PolicyRegistry) -> None:
    error = refused(registry, builtin_doc("sichuan.json"))
    assert error.field == "version"
    assert "greater than 1" in error.reason
    assert error.policy == "CN-SC"


def test_effective_from_must_not_go_back(registry: PolicyRegistry) -> None:
    doc = builtin_doc("panzhihua.json") | {"version": 2, "effective_from": "2020-01-01"}
    assert refused(registry, doc).field == "effective_from"


def test_unknown_parent(registry: PolicyRegistry) -> None:
    doc = builtin_doc("panzhihua.json") | {"code": "CN-GD-SZ", "parent": "CN-GD"}
    error = refused(registry, doc)
    assert error.field == "parent"
    assert "unknown parent 'CN-GD'" in error.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"parent": "CN"}, "parent"),  # must be the code without its last segment
        ({"level": "province"}, "level"),  # a three-segment code is a city
        ({"code": "cn-sc-pzh"}, "code"),
        ({"notes": {"hours.daily_cap": "typo"}}, "notes.hours.daily_cap"),
    ],
)
def test_identity_rules(registry: PolicyRegistry, change: dict[str, Any], field: str) -> None:
    doc = builtin_doc("panzhihua.json") | {"version": 2} | change
    assert refused(registry, doc).field == field


def test_minimums_cannot_exceed_total(registry: PolicyRegistry) -> None:
    doc = builtin_doc("sichuan.json") | {"version": 2}
    doc["hours"]["category_minimums"] = [
        {"category": "公需", "min_hours": 40},
        {"category": "专业", "min_fraction": "2/3"},
    ]
    error = refused(registry, doc)
    assert error.field == "hours.category_minimums"
    assert "add up to 100" in error.reason

    doc["hours"]["category_minimums"] = [{"category": "公需", "min_hours": 95}]
    error = refused(registry, doc)
    assert error.field == "hours.category_minimums[0]"
    assert "exceeds the required total of 90" in error.reason


def test_unknown_category_or_mode(registry: PolicyRegistry) -> None:
    doc = builtin_doc("sichuan.json") | {"version": 2}
    doc["hours"]["online_caps"] = [{"category": "专业", "mode": "直播", "max_hours_per_year": 30}]
    error = refused(registry, doc)
    assert error.field == "hours.online_caps[0].mode"
    assert "unknown mode '直播'" in error.reason

    doc = builtin_doc("sichuan.json") | {"version": 2}
    doc["hours"]["category_minimums"] = [{"category": "公修", "min_hours": 30}]
    assert refused(registry, doc).field == "hours.category_minimums[0].category"


def test_parent_change_that_breaks_a_child_is_refused(registry: PolicyRegistry) -> None:
    # Sichuan's cap names 专业; a national version without 专业 would break it.
    doc = builtin_doc("national.json") | {"version": 2}
    doc["hours"]["categories"] = ["公需", "选修"]
    doc["hours"]["category_minimums"] = []
    error = refused(registry, doc)
    assert error.policy == "CN-SC"
    assert error.field == "hours.category_minimums[1].category"
    assert "which CN-SC inherits from" in error.reason


def test_national_must_state_every_rule() -> None:
    doc = builtin_doc("national.json")
    del doc["hours"]["minutes_per_hour"]
    with pytest.raises(PolicyError) as info:
        PolicyRegistry().from_json(upload(doc))
    assert info.value.field == "hours.minutes_per_hour"
    assert "national policy must state every rule" in info.value.reason


def test_invalid_json() -> None:
    with pytest.raises(PolicyError, match="not valid JSON"):
        parse_policy(b"{not json")


def test_resolve_checks_the_chain(registry: PolicyRegistry) -> None:
    with pytest.raises(PolicyError, match="chain is broken"):
        resolve([registry.get("CN"), registry.get("CN-SC-PZH")])
    with pytest.raises(PolicyError):
        resolve([])


def test_policy_model_is_frozen(registry: PolicyRegistry) -> None:
    policy = registry.get("CN")
    with pytest.raises(ValueError, match="frozen"):
        policy.version = 5
    assert isinstance(policy, JurisdictionPolicy)
