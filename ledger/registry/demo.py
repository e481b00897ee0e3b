"""Demo data: a small registry a newcomer can browse and write to (``celedger demo``).

National → Sichuan → Panzhihua; three management units; five bases, one in each state
(recognised, under rectification, revoked, applied, and a national base whose plan was
returned); approved 2026 plans with classes; an inspection result; and API keys for every
principal involved, returned once so the CLI can print them.

Every act goes through ``services``, so every one of them is in the ledger, and all of it is
one transaction.  Seeding is idempotent: a database that already has a national jurisdiction
(demo or real) is left alone.  All institutions are fictional (示例).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final

from stdnum.cn import uscc as _uscc

from ledger.registry import services as sv
from ledger.registry.auth import Principal, authority_id
from ledger.registry.models import Jurisdiction
from ledger.storage.db import Database
from ledger.storage.log import Log

__all__ = ["DEMO_YEAR", "DemoInfo", "DemoKey", "demo_uscc", "seed_demo"]

DEMO_YEAR: Final = 2026


def demo_uscc(n: int) -> str:
    """A valid, fictional 统一社会信用代码 (Panzhihua region 510400; letters keep it from looking
    like a citizen ID number)."""
    body = f"12510400MB{n:07d}"
    return body + str(_uscc.calc_check_digit(body))


@dataclass(frozen=True)
class DemoKey:
    principal: str
    title: str
    key: str


@dataclass(frozen=True)
class DemoInfo:
    """What ``seed_demo`` did: the keys it issued (shown once) and the bases it made."""

    seeded: bool
    keys: tuple[DemoKey, ...] = ()
    bases: dict[str, int] = field(default_factory=dict)

    def key_for(self, principal: str) -> str:
        for k in self.keys:
            if k.principal == principal:
                return k.key
        raise KeyError(principal)

    def lines(self) -> list[str]:
        """Lines for the CLI to print."""
        if not self.seeded:
            return [
                "registry        already has data: demo not seeded (its keys were printed when "
                "it was)"
            ]
        out = [
            "public directory  /directory   (JSON: /api/v1/directory/bases)",
            "demo API keys (shown once; send as 'Authorization: Bearer <key>'):",
        ]
        out += [f"  {k.principal:<20} {k.title:<28} {k.key}" for k in self.keys]
        return out


def _classes(prefix: str, count: int) -> list[sv.ClassSpec]:
    catalogue = [
        ("公需", "面授", "专业技术人员职业道德与诚信建设", Decimal("6"), Decimal("0")),
        ("专业", "面授", "钒钛新材料前沿技术研修班", Decimal("24"), Decimal("1200")),
        ("专业", "网络", "智能制造新技术网络课程", Decimal("12"), Decimal("300")),
        ("选修", "会议", "康养产业发展学术交流会", Decimal("6"), Decimal("200.50")),
    ]
    out = []
    for i in range(count):
        category, mode, title, hours, fee = catalogue[i % len(catalogue)]
        month = 3 + 2 * i
        days = max(1, int(hours // 6))
        out.append(
            sv.ClassSpec(
                code=f"{prefix}-{DEMO_YEAR}-{i + 1:02d}",
                title=title,
                category=category,
                mode=mode,
                hours=hours,
                start=date(DEMO_YEAR, month, 10),
                end=date(DEMO_YEAR, month, 10 + days - 1),
                capacity=100 * (i + 1),
                fee_yuan=fee,
            )
        )
    return out


def seed_demo(db: Database, log: Log, *, now: datetime | None = None) -> DemoInfo:
    """Seed the demo registry unless the database already has one (see the module docstring)."""
    with db.writer() as s:
        log.lock(s)
        if s.get(Jurisdiction, "CN") is not None:
            return DemoInfo(seeded=False)
        keys: list[DemoKey] = []
        national_key = sv.bootstrap_authority_key(
            s, "CN", "demo national authority", log=log, now=now
        )
        keys.append(DemoKey(authority_id("CN"), "人力资源社会保障部", national_key))
        national = Principal(authority_id("CN"), "authority", "CN")
        sv.create_jurisdiction(s, log, national, "CN-SC", now=now)
        sv.create_jurisdiction(s, log, national, "CN-SC-PZH", now=now)
        sichuan = Principal(authority_id("CN-SC"), "authority", "CN-SC")
        city = Principal(authority_id("CN-SC-PZH"), "authority", "CN-SC-PZH")
        for p, title in (
            (sichuan, "四川省人力资源和社会保障厅"),
            (city, "攀枝花市人力资源和社会保障局"),
        ):
            keys.append(
                DemoKey(p.id, title, sv.create_key(s, log, national, p.id, "demo", now=now).key)
            )

        def unit(jurisdiction: str, title: str) -> Principal:
            row = sv.register_unit(s, log, national, jurisdiction, title, now=now)
            p = Principal(f"unit:{row.id}", "management_unit", jurisdiction, unit=row.id)
            keys.append(
                DemoKey(p.id, title, sv.create_key(s, log, national, p.id, "demo", now=now).key)
            )
            return p

        east = unit("CN-SC-PZH", "示例东区人力资源和社会保障局")
        health = unit("CN-SC-PZH", "示例市卫生健康委员会")
        province = unit("CN-SC", "示例省级行业主管部门人事处")

        def base(n: int, title: str, builder: str, jurisdiction: str, by: Principal) -> int:
            assert by.unit is not None
            row = sv.apply_base(
                s,
                log,
                by,
                sv.BaseApplication(
                    uscc=demo_uscc(n),
                    title=title,
                    construction_unit=builder,
                    jurisdiction=jurisdiction,
                    management_unit=by.unit,
                    contact=sv.Contact(
                        address=f"四川省攀枝花市示例路{n}号",
                        phone=f"0812-33{n:05d}",
                        email=f"base{n}@example.cn",
                    ),
                    reason="经审核，符合基地申报条件，推荐认定",
                ),
                now=now,
            )
            return row.base_id

        def base_principal(b: int, jurisdiction: str, title: str) -> Principal:
            p = Principal(f"base:{b}", "base", jurisdiction, base=b)
            keys.append(
                DemoKey(p.id, title, sv.create_key(s, log, national, p.id, "demo", now=now).key)
            )
            return p

        def approved_plan(bp: Principal, b: int, prefix: str, unit_p: Principal, count: int) -> int:
            plan = sv.submit_plan(s, log, bp, b, DEMO_YEAR, _classes(prefix, count), now=now)
            sv.approve_plan(s, log, unit_p, plan.id, "计划内容符合要求，同意", now=now)
            return plan.id

        college = base(1, "示例学院专业技术人员继续教育基地", "示例学院", "CN-SC-PZH", east)
        hospital = base(2, "示例中心医院继续教育基地", "示例中心医院", "CN-SC-PZH", health)
        school = base(3, "示例职业培训学校继续教育基地", "示例职业培训学校", "CN-SC-PZH", east)
        centre = base(4, "示例钒钛产业技术培训中心", "示例钒钛产业技术培训中心", "CN-SC-PZH", east)
        national_base = base(5, "示例国家级专业技术人员继续教育基地", "示例大学", "CN", province)

        for b, authority in (
            (college, city),
            (hospital, city),
            (school, city),
            (national_base, national),
        ):
            sv.recognise(s, log, authority, b, "经专家评审委员会评审通过，予以认定", now=now)

        college_p = base_principal(college, "CN-SC-PZH", "示例学院基地")
        hospital_p = base_principal(hospital, "CN-SC-PZH", "示例中心医院基地")
        national_p = base_principal(national_base, "CN", "示例国家级基地")

        plan = approved_plan(college_p, college, "PZXY", east, 4)
        sv.file_plan(s, log, college_p, plan, now=now)
        approved_plan(hospital_p, hospital, "ZXYY", health, 2)
        returned = sv.submit_plan(
            s, log, national_p, national_base, DEMO_YEAR, _classes("GJJD", 3), now=now
        )
        sv.return_plan(
            s, log, province, returned.id, "网络课程学时安排不足，请补充后重新报送", now=now
        )

        year = sv.local_date(now or datetime.now(UTC)).year
        sv.record_inspection(
            s, log, east, college, year, "优秀", "师资、制度与培训效果均达到要求", now=now
        )
        sv.record_inspection(
            s, log, health, hospital, year, "不合格", "培训登记管理不规范", now=now
        )
        sv.order_rectification(s, log, city, hospital, "检查考核不合格，责令限期整改", now=now)
        sv.revoke(
            s, log, city, school, "违反年度计划备案制度，出现乱收费现象，取消基地资格", now=now
        )

        return DemoInfo(
            seeded=True,
            keys=tuple(keys),
            bases={
                "recognised": college,
                "rectification": hospital,
                "revoked": school,
                "applied": centre,
                "returned_plan": national_base,
            },
        )
