"""The public directory (no login): bases, their status, units, contact, fee standards,
inspection results and status history; jurisdictions and their policies.

JSON under ``/api/v1/directory/…``; a plain server-rendered HTML view (no JavaScript) at
``/directory``.  The HTML is built from the same dicts as the JSON, every value escaped.
"""

from __future__ import annotations

import re
from html import escape
from typing import Annotated, Any, Final, Literal

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter

from api.context import Context
from api.problems import Problem
from ledger.registry import directory as d

__all__ = ["DirectoryController"]

CACHE: Final = {"Cache-Control": "public, max-age=30"}
Status = Literal["applied", "recognised", "rectification", "revoked", "rejected"]

STATUS_LABEL: Final = {
    "applied": "申请中 applied",
    "recognised": "已认定 recognised",
    "rectification": "限期整改 rectification",
    "revoked": "已撤销 revoked",
    "rejected": "未通过 rejected",
}


_JURISDICTION_CODE: Final = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,8}){0,2}")


def _code(code: str) -> str:
    # The "not found" problem quotes the code; a path segment that is no jurisdiction code is
    # free text (a name typed into the URL …), which a problem never repeats.
    if not _JURISDICTION_CODE.fullmatch(code):
        raise Problem(
            404,
            "not-found",
            "rule jurisdiction.exists: expected a jurisdiction code like CN-SC-PZH, found "
            "other text",
            extra={"rule": "jurisdiction.exists"},
        )
    return code


class DirectoryController(Controller):
    path = "/"
    tags = ("directory",)

    @get("/api/v1/directory/jurisdictions", sync_to_thread=True)
    def jurisdictions(self, ctx: NamedDependency[Context]) -> dict[str, Any]:
        """Every jurisdiction and the policy version that governs it."""
        with ctx.db.reader() as s:
            return {"jurisdictions": d.list_jurisdictions(s)}

    @get("/api/v1/directory/jurisdictions/{code:str}/policy", sync_to_thread=True)
    def policy(self, ctx: NamedDependency[Context], code: FromPath[str]) -> dict[str, Any]:
        """The effective policy of a jurisdiction and its versions (shipped and uploaded)."""
        with ctx.db.reader() as s:
            return d.policy_view(s, _code(code))

    @get(
        "/api/v1/directory/jurisdictions/{code:str}/policy/{version:int}",
        media_type="application/json",
        sync_to_thread=True,
    )
    def policy_document(
        self, ctx: NamedDependency[Context], code: FromPath[str], version: FromPath[int]
    ) -> Response[bytes]:
        """The exact bytes of one policy version (its SHA-256 is in the ``policy`` entry)."""
        with ctx.db.reader() as s:
            body = d.policy_document(s, _code(code), version)
        return Response(body, headers=CACHE)

    @get("/api/v1/directory/units", sync_to_thread=True)
    def units(
        self,
        ctx: NamedDependency[Context],
        jurisdiction: Annotated[str | None, Parameter(max_length=32)] = None,
    ) -> dict[str, Any]:
        """Management units."""
        with ctx.db.reader() as s:
            return {"units": d.list_units(s, jurisdiction)}

    @get("/api/v1/directory/bases", sync_to_thread=True)
    def bases(
        self,
        ctx: NamedDependency[Context],
        jurisdiction: Annotated[str | None, Parameter(max_length=32, description="subtree")] = None,
        status: FromQuery[Status | None] = None,
        unit: Annotated[int | None, Parameter(ge=1)] = None,
    ) -> dict[str, Any]:
        """Bases with status, jurisdiction, units and latest inspection result."""
        with ctx.db.reader() as s:
            return {"bases": d.list_bases(s, jurisdiction=jurisdiction, status=status, unit=unit)}

    @get("/api/v1/directory/bases/{base_id:int}", sync_to_thread=True)
    def base(self, ctx: NamedDependency[Context], base_id: FromPath[int]) -> dict[str, Any]:
        """One base: contact, fee standards, plans, inspections, status history."""
        with ctx.db.reader() as s:
            return d.base_detail(s, base_id)

    @get("/api/v1/directory/bases/{base_id:int}/plans/{year:int}", sync_to_thread=True)
    def plans(
        self, ctx: NamedDependency[Context], base_id: FromPath[int], year: FromPath[int]
    ) -> dict[str, Any]:
        """Every revision of a base's plan for a year, with the document the ledger hashes."""
        with ctx.db.reader() as s:
            return {"plans": d.plans_for_year(s, base_id, year)}

    @get("/directory", media_type="text/html; charset=utf-8", sync_to_thread=True)
    def html_index(self, ctx: NamedDependency[Context]) -> Response[str]:
        """The directory as a web page."""
        with ctx.db.reader() as s:
            bases = d.list_bases(s)
        return Response(_index_page(bases), headers=CACHE)

    @get(
        "/directory/bases/{base_id:int}", media_type="text/html; charset=utf-8", sync_to_thread=True
    )
    def html_base(self, ctx: NamedDependency[Context], base_id: FromPath[int]) -> Response[str]:
        """One base as a web page."""
        with ctx.db.reader() as s:
            base = d.base_detail(s, base_id)
        return Response(_base_page(base), headers=CACHE)


# --------------------------------------------------------------------------------------------
# HTML


def _e(value: object) -> str:
    return "—" if value is None or value == "" else escape(str(value))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:75em}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}"
        "th{background:#f3f3f3}.revoked,.rejected{color:#a00}.rectification{color:#b60}"
        "</style></head><body>"
        f"{body}<p><small>CE Ledger · 数据来自公开账本，每项记录附账本序号 (log index)，"
        "可用 <code>/api/v1/log/proof/inclusion?index=…</code> 取得包含证明并验证。"
        "</small></p></body></html>"
    )


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status(status: str) -> str:
    return f'<span class="{escape(status)}">{escape(STATUS_LABEL.get(status, status))}</span>'


def _index_page(bases: list[dict[str, Any]]) -> str:
    rows = [
        [
            f'<a href="/directory/bases/{b["id"]}">{_e(b["title"])}</a>',
            _status(b["status"]),
            _e(b["jurisdiction"]),
            _e(b["management_unit"]["title"]),
            _e(b["construction_unit"]),
            _e(
                None
                if b["latest_inspection"] is None
                else f"{b['latest_inspection']['year']} {b['latest_inspection']['result']}"
            ),
        ]
        for b in bases
    ]
    body = "<h1>继续教育基地名录 Directory of CE bases</h1>" + _table(
        [
            "基地 base",
            "状态 status",
            "认定机关 jurisdiction",
            "管理单位 management unit",
            "建设单位 construction unit",
            "最近检查考核 latest inspection",
        ],
        rows,
    )
    return _page("继续教育基地名录", body)


def _base_page(b: dict[str, Any]) -> str:
    contact = b["contact"]
    parts = [
        f'<p><a href="/directory">← 名录 directory</a></p><h1>{_e(b["title"])}</h1>',
        _table(
            ["项目", "内容"],
            [
                ["状态 status", _status(b["status"]) + f" ({_e(b['status_since'])})"],
                ["统一社会信用代码", _e(b["uscc"])],
                ["认定机关 jurisdiction", _e(b["jurisdiction"])],
                ["管理单位 management unit", _e(b["management_unit"]["title"])],
                ["建设单位 construction unit", _e(b["construction_unit"])],
                ["地址 address", _e(contact["address"])],
                ["电话 phone", _e(contact["phone"])],
                ["电子邮件 e-mail", _e(contact["email"])],
            ]
            + (
                [
                    [
                        "整改期限 rectification deadline",
                        _e(b["rectification"]["deadline"])
                        + (" (已逾期 overdue)" if b["rectification"]["overdue"] else ""),
                    ]
                ]
                if b["rectification"]
                else []
            ),
        ),
        "<h2>收费标准 Fee standards</h2>",
        _table(
            ["年度 year", "班次 code", "名称 title", "收费（元）fee (yuan)"],
            [
                [_e(f["year"]), _e(c["code"]), _e(c["title"]), _e(c["fee_yuan"])]
                for f in b["fee_standards"]
                for c in f["classes"]
            ],
        ),
        "<h2>年度计划 Annual plans</h2>",
        _table(
            ["年度", "修订", "状态", "报送截止", "逾期报送", "备案截止", "逾期备案", "账本序号"],
            [
                [
                    _e(p["year"]),
                    _e(p["revision"]),
                    _e(p["status"]),
                    _e(p["management_unit_due"] or p["authority_due"]),
                    "是 late" if p["late_submission"] else "否",
                    _e(p["authority_due"]),
                    "—" if p["late_filing"] is None else ("是 late" if p["late_filing"] else "否"),
                    _e(p["submitted"]["log_index"]),
                ]
                for p in b["plans"]
            ],
        ),
        "<h2>检查考核 Inspections</h2>",
        _table(
            ["年度", "结果", "说明", "账本序号"],
            [
                [_e(i["year"]), _e(i["result"]), _e(i["notes"]), _e(i["log_index"])]
                for i in b["inspections"]
            ],
        ),
        "<h2>状态记录 Status history</h2>",
        _table(
            ["时间", "事项", "状态", "办理人", "理由", "期限", "账本序号"],
            [
                [
                    _e(h["at"]),
                    _e(h["kind"]),
                    _status(h["to"]),
                    _e(h["by"]),
                    _e(h["reason"]),
                    _e(h["deadline"]),
                    _e(h["log_index"]),
                ]
                for h in b["status_history"]
            ],
        ),
    ]
    return _page(str(b["title"]), "".join(parts))
