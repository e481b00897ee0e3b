"""The professional's own pages (``/me``): activation, sign-in, my records, downloads, share
links, erasure.

Server-rendered HTML (Jinja templates in ``api/templates/holder/``) over the very services the
JSON API of `api.routes.holder` uses (`ledger.accounts`): no JavaScript, Chinese first
(``?lang=en`` for English), styled like the public verification page ``/V/`` (its CSS is reused,
not copied), readable on a 360-px phone.

* ``GET|POST /me/activate`` (ID number, activation code, new password twice), ``GET|POST
  /me/sign-in``, ``POST /me/sign-out``, ``/me/sign-out-everywhere``;
* ``GET /me`` — per-year (or per-cycle) totals against the policy with the shortfall sentence,
  every record with its status and history (corrections, revocation), downloads:
  ``POST /me/records/{record}/certificate`` and ``POST /me/transcript`` (PDF, or the credential
  JSON);
* ``GET|POST /me/shares`` (create: one record, one year, the whole transcript or a
  title-application check of the last N years, 7–180 days; list with link and QR),
  ``GET /me/shares/{share}`` (the access log), ``POST …/extend``, ``POST …/close``;
* ``GET|POST /me/erase`` (a confirmation page; the password again).

**Session**: the cookie ``celedger_session`` carries the same ``ses_…`` token the JSON API
answers (same table, same idle and absolute expiry, same sign-out; ``Max-Age`` is the absolute
end); it is ``HttpOnly`` (no script reads it), ``Secure`` (browsers keep it on https, and on
``http://127.0.0.1`` / ``localhost``, which they count as secure: ``./dev run`` works),
``SameSite=Strict`` (no other site's link or form carries it) and ``Path=/me`` (it never
reaches ``/api/``: the JSON API takes only its Bearer header, so the cookie opens no JSON route
to cross-site requests).

**CSRF**: besides SameSite=Strict, every POST carries a form token, checked before anything
else (a POST without the right token is a 403 and changes nothing): for a signed-in person an
HMAC of their session (its stored hash), for the two forms before sign-in an HMAC of a random
``celedger_form`` cookie (double submit; the same cookie flags).  The HMAC key is derived from
the key-encryption key, so a token is worth nothing without the server's key and dies with the
session.

**Errors** are shown on the form, in Chinese and English: a wrong ID number, code or password
gets the services' single answer (nothing says whether an ID number is known); lock-outs
(HTTP 429 with ``Retry-After``) are the services' own.  A bad field (missing, wrong type, too
long, control characters) is a 400 naming the field; no field reaches the database unchecked.
A typed ID number is never echoed back into a page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

import anyio
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Redirect
from markupsafe import Markup
from sqlalchemy.orm import Session

from api.context import Context
from api.problems import STATUS_FOR, handle_unexpected
from api.routes.holder import _client, _now, _passwords, _share_url, account_rules, erase_account
from api.routes.verify import _CSS
from ledger.accounts import records as holder_records
from ledger.accounts import services as accounts
from ledger.accounts import shares as holder_shares
from ledger.accounts.errors import AccountError, AuthenticationFailed, SessionInvalid, Throttled
from ledger.accounts.providers import PasswordProvider, sign_in
from ledger.accounts.rules import SHARE_SCOPES
from ledger.completions.models import Person
from ledger.errors import LedgerError
from ledger.identity import IdentityError, mask_id, validate_id_number
from ledger.registry.errors import NotFound
from ledger.registry.services import CHINA_TZ, local_date

__all__ = ["FORM_COOKIE", "SESSION_COOKIE", "HolderPagesController"]

SESSION_COOKIE: Final = "celedger_session"
FORM_COOKIE: Final = "celedger_form"
_COOKIE_PATH: Final = "/me"
# A form is a few hundred bytes; anything near this is not a person typing.
_MAX_FORM_BYTES: Final = 64 * 1024
_NO_STORE: Final = {"Cache-Control": "no-store"}
# Share and record ids are short ASCII handles; anything else is unknown without a query
# (a NUL byte, say, must not reach PostgreSQL).
_HANDLE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_TEMPLATES: Final = Path(__file__).resolve().parent.parent / "templates"
_ENV: Final = Environment(
    loader=FileSystemLoader(_TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
T = TypeVar("T")


def _when(stamp: object) -> str:
    """``2026-11-24T16:20:58Z`` as a person reads it: Beijing time to the minute."""
    try:
        at = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return str(stamp)
    return at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


_ENV.filters["when"] = _when

#: The /V/ page's CSS plus what these pages add (navigation, cards, progress bars, QR codes).
_STYLE: Final = _CSS + (
    "h2{font-size:1.2rem;margin:1.5rem 0 .5rem}"
    "header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;"
    "gap:.25rem .75rem;border-bottom:1px solid #ddd;padding-bottom:.25rem}"
    "header a,header button.link{padding:.5rem .25rem;display:inline-block}"
    "nav{display:flex;flex-wrap:wrap;gap:0 .5rem;align-items:center}"
    "form.inline{display:inline;margin:0;padding:0;background:none}"
    "button.link{background:none;border:0;color:#1a0dab;text-decoration:underline;"
    "font:inherit;padding:0;cursor:pointer}"
    ".msg{padding:.75rem;border-radius:.5rem;margin:1rem 0}"
    ".card{border:1px solid #ddd;border-radius:.5rem;padding:.75rem;margin:1rem 0}"
    ".card h3{margin:0 0 .5rem;font-size:1.05rem}.card table{margin:.25rem 0}"
    ".big{font-size:1.2rem;margin:.25rem 0}"
    ".bar{height:.6rem;background:#eee;border-radius:.3rem;overflow:hidden;margin:.25rem 0}"
    ".bar i{display:block;height:100%;background:#1e8e3e}.bar.short i{background:#f9ab00}"
    "label{display:block}label.check{display:inline-block;margin:.2rem 1rem .2rem 0}"
    "input[type=checkbox],input[type=radio]{width:auto;margin:0 .3rem 0 0}"
    "select{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box;margin:.2rem 0 .6rem}"
    "fieldset{border:0;padding:0;margin:0 0 .6rem}legend{padding:0}"
    ".actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-top:.5rem}"
    ".actions form{margin:0;padding:0;background:none}"
    "a.button{display:inline-block;padding:.5rem 1rem;border:1px solid #767676;"
    "border-radius:.2rem;color:inherit;text-decoration:none;background:#efefef}"
    ".danger{background:#fce8e6;border:2px solid #d93025}"
    ".url{word-break:break-all}.qr{width:12rem;height:12rem;display:block;margin:.5rem 0}"
    ".qr.small{width:7rem;height:7rem}.hint{color:#555;font-size:.9rem}"
    ".badge{display:inline-block;padding:0 .4rem;border-radius:.25rem;font-size:.875rem}"
    ".badge.active{background:#e6f4ea}.badge.expired{background:#fef7e0}"
    ".badge.closed{background:#eee}ol.history{padding-left:1.25rem;margin:.25rem 0}"
    "table.log th,table.log td{width:auto;font-size:.9rem;padding:.3rem .25rem}"
)

_TEXT: Final[dict[str, dict[str, Any]]] = {
    "zh": {
        "site": "继续教育学时账本 · 我的学时",
        "other": "English",
        "nav_records": "我的记录",
        "nav_shares": "分享链接",
        "sign_out": "退出",
        "sign_in_title": "专业技术人员登录",
        "activate_title": "首次登录（激活账户）",
        "records_title": "我的继续教育学时",
        "shares_title": "分享链接",
        "share_title": "分享链接详情",
        "erase_title": "删除我的个人信息",
        "erased_title": "个人信息已删除",
        "error_title": "出错了",
        "id_number": "身份证号",
        "password": "密码",
        "new_password": "新密码（10–128个字符）",
        "new_password2": "再次输入新密码",
        "code": "激活码（如 K7QM-2XHD-9RTA-PW3E）",
        "sign_in": "登录",
        "activate": "激活并登录",
        "first_time": "第一次使用？请用培训基地或主管部门发给您的激活码：",
        "activate_link": "激活账户",
        "have_account": "已设置密码？",
        "sign_in_link": "直接登录",
        "forgot": "忘记密码：请向培训基地或主管部门申请新的激活码，重新激活即可设置新密码。",
        "expired_session": "会话已过期或已退出，请重新登录。",
        "compliance": "学时达标情况",
        "hours_unit": "学时",
        "short_by": "差",
        "policy": "政策",
        "records": "学时记录",
        "no_records": "暂无学时记录。",
        "status": "记录状态",
        "base": "培训基地",
        "class": "项目编号",
        "hours": "学时",
        "dates": "培训日期",
        "result": "考核结果",
        "ledger": "账本位置",
        "history": "变更记录",
        "reason": "原因",
        "revoked_by": "撤销",
        "versions": "共 {n} 个版本",
        "statuses": {"current": "现行有效", "revoked": "已撤销", "superseded": "已被更正"},
        "kinds": {"completion": "登记", "correction": "更正"},
        "cert_pdf": "结业证明 PDF",
        "cert_json": "凭证 JSON",
        "share_this": "分享此记录",
        "transcript": "下载学时证明（登记证书）",
        "transcript_years": "选择年度：",
        "credential_json": "凭证 JSON",
        "more": "更多",
        "manage_shares": "管理分享链接",
        "sign_out_everywhere": "退出所有设备",
        "erase_link": "删除我的个人信息",
        "new_share": "新建分享链接",
        "scope": "分享范围",
        "scopes": {
            "record": "单条记录",
            "year": "某一年度",
            "transcript": "全部记录",
            "title-check": "职称评审周期验证（最近N年）",
        },
        "share_record": "记录（单条记录时）",
        "share_year": "年度（某一年度时）",
        "share_years": "年数N（周期验证时，1–10）",
        "share_through": "截止年度（周期验证时）",
        "days": "有效期（天，7–180）",
        "label": "备注（可选，如“给单位人事处”）",
        "create": "生成链接",
        "my_shares": "我的分享链接",
        "no_shares": "还没有分享链接。",
        "share_statuses": {"active": "有效", "expired": "已过期", "closed": "已关闭"},
        "created": "创建于",
        "valid_until": "有效期至",
        "tz": "北京时间",
        "opened": "查看次数",
        "manage": "详情 · 延期 · 关闭 · 访问记录",
        "link": "链接",
        "extend": "延长有效期",
        "extend_days": "增加天数（7–180，自今日起最长180天）",
        "extend_button": "延期",
        "close": "关闭此链接",
        "close_hint": "关闭后无法重新打开，查看者将看到“已关闭”。",
        "close_button": "关闭链接",
        "access_log": "访问记录",
        "no_access": "尚无人查看。",
        "at": "时间",
        "via": "方式",
        "outcome": "结果",
        "client": "来源代码",
        "vias": {"page": "网页", "api": "接口"},
        "erase_intro": (
            "依据《个人信息保护法》，您可以删除您在本系统中的个人信息。删除后：",
            "您的姓名、身份证号和账户将被永久删除，所有分享链接将关闭；",
            "账本中的学时记录保留，但任何人（包括本系统）都无法再将其与您关联；",
            "已签发的证书仍可核验，并显示“持有人已申请删除个人信息”；",
            "此操作无法撤销，之后您将无法再登录或下载证书。",
        ),
        "erase_confirm": "我已了解，确认删除我的个人信息",
        "erase_button": "永久删除",
        "erased_text": "您的个人信息已删除，账户已关闭。账本保留一条删除记录（不含个人信息）：",
        "erasure_id": "删除编号",
        "erasure_records": "不再关联的记录数",
        "erasure_entry": "账本位置",
        "back": "返回",
        "err_csrf": "表单已失效，请返回重新打开页面后再提交。",
        "err_required": "请填写{field}。",
        "err_too_long": "{field}过长（最多 {limit} 个字符）。",
        "err_control": "{field}含有不可见的控制字符。",
        "err_number": "{field}应为 {lo}–{hi} 之间的整数。",
        "err_choice": "{field}的选项无效。",
        "err_text": "{field}应为文本。",
        "err_mismatch": "两次输入的新密码不一致。",
        "err_signin": "身份证号或密码错误。",
        "err_confirm": "请勾选确认框。",
        "err_years": "请至少选择一个年度（最多 10 个）。",
        "err_locked": "尝试次数过多，已暂时锁定，请 {minutes} 分钟后再试。",
        "err_not_found": "没有找到此页面或记录。",
        "err_status": "请求无法处理（HTTP {status}）。",
    },
    "en": {
        "site": "CE Ledger · my continuing education",
        "other": "中文",
        "nav_records": "My records",
        "nav_shares": "Share links",
        "sign_out": "Sign out",
        "sign_in_title": "Sign in (professionals)",
        "activate_title": "First sign-in (activate your account)",
        "records_title": "My continuing-education hours",
        "shares_title": "Share links",
        "share_title": "Share link",
        "erase_title": "Erase my personal data",
        "erased_title": "Personal data erased",
        "error_title": "Something went wrong",
        "id_number": "ID number (身份证号)",
        "password": "Password",
        "new_password": "New password (10–128 characters)",
        "new_password2": "New password again",
        "code": "Activation code (e.g. K7QM-2XHD-9RTA-PW3E)",
        "sign_in": "Sign in",
        "activate": "Activate and sign in",
        "first_time": "First time here? Use the activation code your training base or authority gave you:",
        "activate_link": "activate your account",
        "have_account": "Already have a password?",
        "sign_in_link": "Sign in",
        "forgot": "Forgot your password? Ask your training base or authority for a new activation code and activate again to set a new one.",
        "expired_session": "Your session expired or was signed out: please sign in again.",
        "compliance": "Requirement per year",
        "hours_unit": "hours",
        "short_by": "short by",
        "policy": "policy",
        "records": "Records",
        "no_records": "No records yet.",
        "status": "Status",
        "base": "Training base",
        "class": "Class code",
        "hours": "Hours (学时)",
        "dates": "Dates",
        "result": "Result",
        "ledger": "Ledger entry",
        "history": "History",
        "reason": "reason",
        "revoked_by": "revoked",
        "versions": "{n} versions",
        "statuses": {"current": "current", "revoked": "revoked", "superseded": "superseded"},
        "kinds": {"completion": "posted", "correction": "corrected"},
        "cert_pdf": "Certificate PDF",
        "cert_json": "Credential JSON",
        "share_this": "Share this record",
        "transcript": "Download a transcript",
        "transcript_years": "Years:",
        "credential_json": "Credential JSON",
        "more": "More",
        "manage_shares": "Manage share links",
        "sign_out_everywhere": "Sign out on every device",
        "erase_link": "Erase my personal data",
        "new_share": "New share link",
        "scope": "What to share",
        "scopes": {
            "record": "one record",
            "year": "one year",
            "transcript": "all records",
            "title-check": "title-application check (last N years)",
        },
        "share_record": "Record (for one record)",
        "share_year": "Year (for one year)",
        "share_years": "N years (for the title check, 1–10)",
        "share_through": "Up to year (for the title check)",
        "days": "Valid for (days, 7–180)",
        "label": "Note (optional, e.g. “for HR”)",
        "create": "Create link",
        "my_shares": "My share links",
        "no_shares": "No share links yet.",
        "share_statuses": {"active": "active", "expired": "expired", "closed": "closed"},
        "created": "created",
        "valid_until": "valid until",
        "tz": "Beijing time, UTC+8",
        "opened": "opened",
        "manage": "details · extend · close · access log",
        "link": "Link",
        "extend": "Extend",
        "extend_days": "Days to add (7–180; at most 180 days from today)",
        "extend_button": "Extend",
        "close": "Close this link",
        "close_hint": "A closed link cannot be reopened; whoever opens it sees “closed”.",
        "close_button": "Close link",
        "access_log": "Access log",
        "no_access": "Nobody has opened it yet.",
        "at": "Time",
        "via": "Through",
        "outcome": "Answer",
        "client": "Network code",
        "vias": {"page": "page", "api": "API"},
        "erase_intro": (
            "Under the Personal Information Protection Law you may erase your personal data here. Then:",
            "your name, ID number and account are deleted for good, and every share link is closed;",
            "your records stay in the ledger, but nobody (this service included) can link them to you any more;",
            "certificates already issued still verify, with the note “the holder's personal data was erased”;",
            "this cannot be undone: you cannot sign in or download certificates afterwards.",
        ),
        "erase_confirm": "I understand: erase my personal data",
        "erase_button": "Erase for good",
        "erased_text": "Your personal data was erased and your account closed. The ledger keeps one erasure entry (no personal data):",
        "erasure_id": "Erasure id",
        "erasure_records": "Records no longer linked",
        "erasure_entry": "Ledger entry",
        "back": "Back",
        "err_csrf": "This form has expired: go back, reload the page and submit again.",
        "err_required": "{field}: required.",
        "err_too_long": "{field}: too long (at most {limit} characters).",
        "err_control": "{field}: contains invisible control characters.",
        "err_number": "{field}: expected a whole number from {lo} to {hi}.",
        "err_choice": "{field}: not one of the choices.",
        "err_text": "{field}: expected text.",
        "err_mismatch": "The two new passwords differ.",
        "err_signin": "The ID number or the password is wrong.",
        "err_confirm": "Tick the box to confirm.",
        "err_years": "Choose at least one year (at most 10).",
        "err_locked": "Too many attempts: locked for now, try again in {minutes} minutes.",
        "err_not_found": "There is no such page or record.",
        "err_status": "The request could not be handled (HTTP {status}).",
    },
}


# --------------------------------------------------------------------------------------------
# Pages, languages, links


def _lang(request: Request[Any, Any, Any]) -> str:
    return "en" if request.query_params.get("lang") == "en" else "zh"


def _href(lang: str) -> Callable[..., str]:
    """Links keep the language: ``href('/me/shares', scope='record')``."""

    def href(path: str, **params: object) -> str:
        query = {k: str(v) for k, v in params.items() if v is not None}
        if lang == "en":
            query["lang"] = "en"
        return path + ("?" + urlencode(query) if query else "")

    return href


def _render(
    request: Request[Any, Any, Any],
    template: str,
    *,
    title: str,
    here: str | None,
    bad: _Bad | None = None,
    notice: str | None = None,
    **context: Any,
) -> Response[str]:
    lang = _lang(request)
    other = "en" if lang == "zh" else "zh"
    t = _TEXT[lang]
    body = _ENV.get_template(f"holder/{template}.html").render(
        lang=lang,
        t=t,
        css=Markup(_STYLE),  # noqa: S704 - our own constant, not input
        title=t[title],
        href=_href(lang),
        switch=_href(other)(here) if here is not None else f"?lang={other}",
        error=bad.message if bad is not None else None,
        notice=notice,
        signed_in=context.pop("signed_in", False),
        csrf=context.pop("csrf", ""),
        **context,
    )
    return Response(
        body,
        status_code=bad.status if bad is not None else 200,
        media_type=MediaType.HTML,
        headers={**_NO_STORE, **(bad.headers if bad is not None else {})},
    )


def _redirect(request: Request[Any, Any, Any], path: str, **params: object) -> Redirect:
    return Redirect(
        _href(_lang(request))(path, **params),
        status_code=303,
        headers=_NO_STORE,
        media_type=MediaType.HTML,
    )


def _set_cookie(response: Response[Any], name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=_COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def _clear_cookie(response: Response[Any], name: str) -> None:
    _set_cookie(response, name, "", 0)


# --------------------------------------------------------------------------------------------
# Sessions and form tokens


class _SignInFirst(Exception):
    """No live session: the page answers a redirect to the sign-in form."""

    def __init__(self, expired: bool) -> None:
        super().__init__("sign in first")
        self.expired = expired


class _Forged(Exception):
    """A POST without the form token of this session (or of this browser, before sign-in)."""


def provide_web_holder(
    request: Request[Any, Any, Any], ctx: NamedDependency[Context]
) -> accounts.Holder:
    """The professional of the session cookie; `_SignInFirst` otherwise."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _SignInFirst(expired=False)
    try:
        return accounts.authenticate_session(
            ctx.db, token, account_rules(ctx.settings), now=_now(request)
        )
    except SessionInvalid:
        raise _SignInFirst(expired=True) from None


def _form_key(ctx: Context) -> bytes:
    return hmac.new(ctx.kek, b"celedger web form token v1", hashlib.sha256).digest()


def _mac(ctx: Context, kind: bytes, value: bytes) -> str:
    digest = hmac.new(_form_key(ctx), kind + b"\x00" + value, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _session_csrf(ctx: Context, holder: accounts.Holder) -> str:
    return _mac(ctx, b"session", holder.session_hash)


def _check_token(expected: str | None, form: Mapping[str, Any]) -> None:
    given = form.get("csrf")
    if (
        expected is None
        or not isinstance(given, str)
        or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
    ):
        raise _Forged


def _pre_session_csrf(ctx: Context, request: Request[Any, Any, Any]) -> tuple[str, str | None]:
    """The form token for a browser without a session, and a new cookie value if it has none."""
    cookie = request.cookies.get(FORM_COOKIE)
    fresh = None
    if not cookie or len(cookie) > 64:
        cookie = fresh = secrets.token_urlsafe(24)
    return _mac(ctx, b"form", cookie.encode()), fresh


async def _pre_session_form(
    request: Request[Any, Any, Any], ctx: Context
) -> tuple[Any, Mapping[str, Any]]:
    """A form posted before sign-in, its token checked first (`_Forged` otherwise), and the
    words of the page's language."""
    form = await _read_form(request)
    cookie = request.cookies.get(FORM_COOKIE)
    expected = None if not cookie or len(cookie) > 64 else _mac(ctx, b"form", cookie.encode())
    _check_token(expected, form)
    return form, _TEXT[_lang(request)]


def _live_session(ctx: Context, request: Request[Any, Any, Any]) -> bool:
    try:
        provide_web_holder(request, ctx)
    except _SignInFirst:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Form fields


class _Bad(Exception):
    """What a page says went wrong: a field the form names back to the person (400 with the
    form again), or a service's refusal with the JSON API's status (and headers: a lock-out's
    ``Retry-After``)."""

    def __init__(
        self, message: str, status: int = 400, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = dict(headers or {})


async def _read_form(request: Request[Any, Any, Any]) -> Any:
    return await request.form()


def _text(
    form: Any, name: str, label: str, t: Mapping[str, Any], limit: int, *, required: bool = True
) -> str:
    value = form.get(name)
    if value is None or value == "":
        if required:
            raise _Bad(t["err_required"].format(field=label))
        return ""
    if isinstance(value, UploadFile) or not isinstance(value, str):
        raise _Bad(t["err_text"].format(field=label))
    if len(value) > limit:
        raise _Bad(t["err_too_long"].format(field=label, limit=limit))
    if _CONTROL.search(value):
        raise _Bad(t["err_control"].format(field=label))
    return value


def _id_field(form: Any, t: Mapping[str, Any]) -> str:
    """The ID number typed into a form, checked (its message never repeats the number)."""
    try:
        return validate_id_number(_text(form, "id_number", _label(t, "id_number"), t, 40))
    except IdentityError as exc:
        raise _Bad(str(exc)) from None


def _format(form: Any, t: Mapping[str, Any]) -> str:
    """A download's format: the PDF (the default) or the credential JSON."""
    fmt = _text(form, "format", "format", t, 8, required=False) or "pdf"
    if fmt not in ("pdf", "json"):
        raise _Bad(t["err_choice"].format(field="format"))
    return fmt


def _number(
    form: Any, name: str, label: str, t: Mapping[str, Any], lo: int, hi: int, *, required: bool
) -> int | None:
    raw = _text(form, name, label, t, 12, required=required).strip()
    if raw == "" and not required:
        return None
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not lo <= int(raw) <= hi:
        raise _Bad(t["err_number"].format(field=label, lo=lo, hi=hi))
    return int(raw)


def _year(value: object, t: Mapping[str, Any]) -> int:
    label = _label(t, "share_year")
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}", value.strip()):
        raise _Bad(t["err_number"].format(field=label, lo=2000, hi=2100))
    year = int(value)
    if not 2000 <= year <= 2100:
        raise _Bad(t["err_number"].format(field=label, lo=2000, hi=2100))
    return year


def _digits(value: object, most: int) -> str | None:
    """A short number typed into a form, to show it again; anything else is not repeated."""
    if isinstance(value, str) and re.fullmatch(f"[0-9]{{1,{most}}}", value):
        return value
    return None


def _label(t: Mapping[str, Any], key: str) -> str:
    # Field names in messages without the hints in brackets ("新密码（10–128个字符）" → "新密码").
    return re.split(r"[（(]", str(t[key]))[0].strip()


def _status_of(exc: LedgerError) -> int:
    """The HTTP status the JSON API answers for the same error (`api.problems`)."""
    if isinstance(exc, IdentityError):
        return 400
    own = getattr(exc, "status", None)
    if isinstance(own, int):
        return own
    for cls, status, _ in STATUS_FOR:
        if isinstance(exc, cls):
            return status
    return 422


async def _run(work: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(work)


_Errors = type[LedgerError] | tuple[type[LedgerError], ...]


async def _attempt(
    work: Callable[[], T],
    t: Mapping[str, Any],
    refuse: _Errors = LedgerError,
    *,
    spare: _Errors = (),
) -> T:
    """Run a service off the event loop; its ``refuse`` errors (but not the ``spare`` ones) come
    back as `_Bad` for the form: a lock-out says when to try again (429 with ``Retry-After``),
    any other error what the service says, with the JSON API's status."""
    try:
        return await _run(work)
    except spare:
        raise
    except refuse as exc:
        if isinstance(exc, Throttled):
            minutes = max(1, (exc.retry_after + 59) // 60)
            raise _Bad(
                t["err_locked"].format(minutes=minutes),
                429,
                {"Retry-After": str(exc.retry_after)},
            ) from None
        raise _Bad(str(exc), _status_of(exc)) from None


# --------------------------------------------------------------------------------------------
# What the records page shows


def _compliance_view(c: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """One year (or cycle): the numbers, a bar, and the sentence saying what is missing."""
    years = c["years"]
    if c["period"] == "year":
        label = f"{years[0]}年" if lang == "zh" else str(years[0])
    else:
        label = f"{years[0]}–{years[-1]}年" if lang == "zh" else f"{years[0]}–{years[-1]}"
    total, required = Decimal(c["total"]), Decimal(c["required"])
    percent = 100 if required <= 0 else min(100, int(total * 100 / required))
    unmet = [k for k in c["category_checks"] if not k["met"]]
    if lang == "zh":
        parts = ([f"共差 {c['shortfall']} 学时"] if total < required else []) + [
            f"{k['category']}差 {k['shortfall']} 学时" for k in unmet
        ]
        verdict = "已达标 ✓" if c["met"] else ("，".join(parts) or "未达标") + " ✗"
        sentence = f"{label}：{c['total']}/{c['required']} 学时，{verdict}"
    else:
        parts = ([f"{c['shortfall']} 学时 short in total"] if total < required else []) + [
            f"{k['shortfall']} 学时 short in {k['category']}" for k in unmet
        ]
        verdict = "requirement met ✓" if c["met"] else (", ".join(parts) or "NOT met") + " ✗"
        sentence = f"{label}: {c['total']}/{c['required']} 学时, {verdict}"
    return {
        "label": label,
        "years": years,
        "met": c["met"],
        "total": c["total"],
        "required": c["required"],
        "percent": percent,
        "sentence": sentence,
        "summary": c["summary"][lang],
        "categories": c["category_checks"],
        "policy": f"{c['policy']['code']} v{c['policy']['version']}",
    }


@dataclass(frozen=True)
class _Mine:
    name: str
    id_masked: str
    records: list[dict[str, Any]]
    compliance: list[dict[str, Any]]


def _mine(ctx: Context, holder: accounts.Holder) -> _Mine:
    with ctx.db.reader() as s:
        person = s.get(Person, holder.person_id)
        if person is None or person.sealed is None:
            raise SessionInvalid("session.unknown", "the account no longer exists")
        data = ctx.vault.open(person.sealed, person.lookup)
        chains = holder_records.chains_of(s, holder.person_id)
        records = holder_records.records_json(s, chains)
        compliance = [
            holder_records.compliance_json(r) for r in holder_records.compliance(s, chains)
        ]
    records.sort(key=lambda r: (r["year"], r["start"], r["log_index"]), reverse=True)
    return _Mine(data["name"], mask_id(data["id_number"]), records, compliance)


def _qr_data_uri(url: str) -> str:
    """The link as an SVG QR code inside the page (``img-src data:`` is allowed; no request)."""
    import qrcode
    import qrcode.image.svg

    # As the JSON API's QR: error correction M, 4-module quiet zone.
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=10)
    code.add_data(url)
    code.make(fit=True)
    svg = code.make_image(image_factory=qrcode.image.svg.SvgPathImage).to_string(encoding="utf-8")
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def _describe(share: Mapping[str, Any], titles: Mapping[str, str], lang: str) -> str:
    t = _TEXT[lang]
    what = str(t["scopes"][share["scope"]]).split("（")[0].split(" (")[0]
    years = share["years"]
    if share["scope"] == "record" and share["record"] is not None:
        return f"{what}：{titles.get(share['record'], share['record'])}"
    if years:
        span = str(years[0]) if len(years) == 1 else f"{years[0]}–{years[-1]}"
        return f"{what}：{span}" if lang == "zh" else f"{what}: {span}"
    return what


def _share_views(
    ctx: Context, holder: accounts.Holder, now: datetime, lang: str, only: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The holder's links (or one of them, with its access log) and their records."""
    with ctx.db.reader() as s:
        chains = holder_records.chains_of(s, holder.person_id)
        records = holder_records.records_json(s, chains)
        titles = {}
        for r in records:
            for v in r["versions"]:
                titles[v["record"]] = f"{r['year']} {r['class_title']}"
        if only is not None:
            rows = [holder_shares.holder_share(s, holder.person_id, only)]
        else:
            rows = holder_shares.list_shares(s, holder.person_id)
        shares = []
        for row in reversed(rows):  # newest first
            url = _share_url(ctx, holder_shares.share_token(ctx.vault, row))
            view = holder_shares.share_json(s, row, url, now=now)
            view["describe"] = _describe(view, titles, lang)
            view["qr"] = (
                _qr_data_uri(url) if url is not None and view["status"] == "active" else None
            )
            if only is not None:
                view["access_log"] = holder_shares.access_log(s, row)
            shares.append(view)
    return shares, records


# --------------------------------------------------------------------------------------------
# Error pages (this controller's pages answer HTML, not problem JSON)


def _on_sign_in_first(request: Request[Any, Any, Any], exc: _SignInFirst) -> Response[Any]:
    response = _redirect(request, "/me/sign-in", expired=1 if exc.expired else None)
    if exc.expired:
        _clear_cookie(response, SESSION_COOKIE)
    return response


def _error_page(request: Request[Any, Any, Any], status: int, message: str) -> Response[str]:
    back = "/me" if request.cookies.get(SESSION_COOKIE) else "/me/sign-in"
    # The language switch of a page that was asked for (GET) shows the same page again, by a
    # relative link: the page never repeats a path it was given (whatever was typed there).
    here = None if request.method == "GET" and status != 405 else back
    return _render(
        request,
        "error",
        title="error_title",
        here=here,
        bad=_Bad(message, status),
        back=back,
    )


def _on_forged(request: Request[Any, Any, Any], _: _Forged) -> Response[str]:
    return _error_page(request, 403, _TEXT[_lang(request)]["err_csrf"])


def _on_ledger_error(request: Request[Any, Any, Any], exc: LedgerError) -> Response[str]:
    t = _TEXT[_lang(request)]
    if isinstance(exc, NotFound):
        return _error_page(request, 404, t["err_not_found"])
    return _error_page(request, _status_of(exc), str(exc))


def _on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:  # a bug: logged and answered as everywhere else
        return handle_unexpected(request, exc)
    t = _TEXT[_lang(request)]
    message = (
        t["err_not_found"]
        if exc.status_code == 404
        else t["err_status"].format(status=exc.status_code)
    )
    response = _error_page(request, exc.status_code, message)
    for k, v in (exc.headers or {}).items():
        response.headers[k] = v
    return response


def _check_handle(value: str) -> str:
    if not _HANDLE.fullmatch(value):
        raise NotFound("page.unknown", "no such record or link")
    return value


# --------------------------------------------------------------------------------------------
# A signed-in person's request


@dataclass(frozen=True)
class _Me:
    """What every page of a signed-in person works with: the request, the context and the
    professional of the session cookie."""

    request: Request[Any, Any, Any]
    ctx: Context
    holder: accounts.Holder

    @property
    def t(self) -> Mapping[str, Any]:
        return _TEXT[_lang(self.request)]

    async def form(self) -> Any:
        """The posted form, its token (this session's) checked first: `_Forged` otherwise."""
        form = await _read_form(self.request)
        _check_token(_session_csrf(self.ctx, self.holder), form)
        return form

    def page(
        self, template: str, here: str, bad: _Bad | None = None, **context: Any
    ) -> Response[str]:
        """One of the signed-in pages; its forms carry this session's token."""
        return _render(
            self.request,
            template,
            title=f"{template}_title",
            here=here,
            bad=bad,
            signed_in=True,
            csrf=_session_csrf(self.ctx, self.holder),
            **context,
        )

    def writing(self, work: Callable[[Session], T]) -> Callable[[], T]:
        """``work`` in one write transaction, to run off the event loop (`_run`, `_attempt`)."""

        def run() -> T:
            with self.ctx.db.writer() as s:
                return work(s)

        return run


def _provide_me(
    request: Request[Any, Any, Any],
    ctx: NamedDependency[Context],
    holder: NamedDependency[accounts.Holder],
) -> _Me:
    return _Me(request, ctx, holder)


def _share_spec(form: Any, t: Mapping[str, Any]) -> holder_shares.ShareSpec:
    """The link the share form asks for."""
    scope = _text(form, "scope", t["scope"], t, 20)
    if scope not in SHARE_SCOPES:
        raise _Bad(t["err_choice"].format(field=t["scope"]))
    days = _number(form, "days", _label(t, "days"), t, 7, 180, required=True) or 0
    label = _text(form, "label", _label(t, "label"), t, 100, required=False) or None
    if scope == "record":
        record = _text(form, "record", _label(t, "share_record"), t, 64)
        return holder_shares.ShareSpec(scope="record", days=days, record=record, label=label)
    if scope == "year":
        year = _number(form, "year", _label(t, "share_year"), t, 2000, 2100, required=True)
        return holder_shares.ShareSpec(scope="year", days=days, year=year, label=label)
    if scope == "title-check":
        count = _number(form, "years", _label(t, "share_years"), t, 1, 10, required=True)
        through = _number(
            form, "through", _label(t, "share_through"), t, 2000, 2100, required=False
        )
        return holder_shares.ShareSpec(
            scope="title-check", days=days, years=count, through=through, label=label
        )
    return holder_shares.ShareSpec(scope="transcript", days=days, label=label)


# --------------------------------------------------------------------------------------------
# The controller


class HolderPagesController(Controller):
    """The professional's pages: HTML forms over the holder services; see the module text."""

    path = "/me"
    include_in_schema = False
    request_max_body_size = _MAX_FORM_BYTES
    dependencies = {  # noqa: RUF012 - Litestar reads it off the class
        "holder": Provide(provide_web_holder, sync_to_thread=True),
        "me": Provide(_provide_me, sync_to_thread=False),
    }
    exception_handlers = {  # noqa: RUF012 - Litestar reads it off the class
        _SignInFirst: _on_sign_in_first,
        _Forged: _on_forged,
        LedgerError: _on_ledger_error,
        HTTPException: _on_http,
    }

    # -- before a session -----------------------------------------------------------------------

    def _pre_form(
        self,
        request: Request[Any, Any, Any],
        ctx: Context,
        template: str,
        bad: _Bad | None = None,
        *,
        notice: str | None = None,
    ) -> Response[str]:
        token, fresh = _pre_session_csrf(ctx, request)
        response = _render(
            request,
            template,
            title=f"{template}_title",
            here=f"/me/{template.replace('_', '-')}",
            bad=bad,
            csrf=token,
            notice=notice,
        )
        if fresh is not None:
            _set_cookie(response, FORM_COOKIE, fresh, 24 * 3600)
        return response

    def _signed_in(
        self, request: Request[Any, Any, Any], issued: accounts.IssuedSession
    ) -> Response[Any]:
        response = _redirect(request, "/me")
        max_age = int((issued.expires_at - _now(request)).total_seconds())
        _set_cookie(response, SESSION_COOKIE, issued.token, max(max_age, 0))
        _clear_cookie(response, FORM_COOKIE)
        return response

    @get("/sign-in", include_in_schema=False, media_type=MediaType.HTML)
    async def sign_in_form(
        self, request: Request[Any, Any, Any], ctx: NamedDependency[Context]
    ) -> Response[Any]:
        """The sign-in form (a signed-in person goes straight to their records)."""
        if await _run(lambda: _live_session(ctx, request)):
            return _redirect(request, "/me")
        t = _TEXT[_lang(request)]
        notice = t["expired_session"] if request.query_params.get("expired") else None
        return self._pre_form(request, ctx, "sign_in", notice=notice)

    @post("/sign-in", include_in_schema=False, media_type=MediaType.HTML, status_code=200)
    async def sign_in(
        self, request: Request[Any, Any, Any], ctx: NamedDependency[Context]
    ) -> Response[Any]:
        """ID number and password: the session cookie, then the records page."""
        form, t = await _pre_session_form(request, ctx)
        try:
            id_number = _id_field(form, t)
            password = _text(form, "password", t["password"], t, 256)
            rules = account_rules(ctx.settings)
            provider = PasswordProvider(ctx.vault, _passwords(ctx.settings), rules)
            now, client = _now(request), _client(request)
            issued = await _attempt(
                lambda: sign_in(
                    ctx.db,
                    provider,
                    rules,
                    {"id_number": id_number, "password": password},
                    client,
                    now=now,
                ),
                t,
                Throttled,
            )
        except AuthenticationFailed:
            # One answer for an unknown ID number and a wrong password (the service's too).
            return self._pre_form(request, ctx, "sign_in", _Bad(t["err_signin"], 401))
        except _Bad as exc:
            return self._pre_form(request, ctx, "sign_in", exc)
        return self._signed_in(request, issued)

    @get("/activate", include_in_schema=False, media_type=MediaType.HTML)
    async def activate_form(
        self, request: Request[Any, Any, Any], ctx: NamedDependency[Context]
    ) -> Response[str]:
        """First sign-in (or a password reset) with an activation code."""
        return self._pre_form(request, ctx, "activate")

    @post("/activate", include_in_schema=False, media_type=MediaType.HTML, status_code=200)
    async def activate(
        self, request: Request[Any, Any, Any], ctx: NamedDependency[Context]
    ) -> Response[Any]:
        """Activation code + a new password (twice): the account, a session, the records page."""
        form, t = await _pre_session_form(request, ctx)
        try:
            id_number = _id_field(form, t)
            code = _text(form, "code", _label(t, "code"), t, 40)
            password = _text(form, "password", _label(t, "new_password"), t, 256)
            repeat = _text(form, "password2", _label(t, "new_password2"), t, 256)
            if not hmac.compare_digest(password.encode(), repeat.encode()):
                raise _Bad(t["err_mismatch"])
            now, client = _now(request), _client(request)
            # Wrong code and unknown ID number: the service's one message; a spent code, a
            # malformed code or a weak password: what it says.
            issued = await _attempt(
                lambda: accounts.activate(
                    ctx.db,
                    ctx.vault,
                    _passwords(ctx.settings),
                    account_rules(ctx.settings),
                    id_number,
                    code,
                    password,
                    client,
                    now=now,
                ),
                t,
            )
        except _Bad as exc:
            return self._pre_form(request, ctx, "activate", exc)
        return self._signed_in(request, issued)

    # -- the session ----------------------------------------------------------------------------

    @post("/sign-out", include_in_schema=False, media_type=MediaType.HTML, status_code=303)
    async def sign_out(self, me: NamedDependency[_Me]) -> Response[Any]:
        """End this session; the cookie goes too."""
        return await self._end_sessions(me, accounts.sign_out)

    @post(
        "/sign-out-everywhere", include_in_schema=False, media_type=MediaType.HTML, status_code=303
    )
    async def sign_out_everywhere(self, me: NamedDependency[_Me]) -> Response[Any]:
        """End every session of the account (other phones and computers too)."""
        return await self._end_sessions(me, accounts.sign_out_everywhere)

    async def _end_sessions(
        self, me: _Me, end: Callable[[Session, accounts.Holder], object]
    ) -> Response[Any]:
        await me.form()
        await _run(me.writing(lambda s: end(s, me.holder)))
        response = _redirect(me.request, "/me/sign-in")
        _clear_cookie(response, SESSION_COOKIE)
        return response

    # -- records and downloads ------------------------------------------------------------------

    @get("", include_in_schema=False, media_type=MediaType.HTML)
    async def records(self, me: NamedDependency[_Me]) -> Response[str]:
        """My records: totals per year (or cycle) against the policy, every record with its
        status and history, downloads."""
        return await self._records_page(me)

    async def _records_page(self, me: _Me, bad: _Bad | None = None) -> Response[str]:
        mine = await _run(lambda: _mine(me.ctx, me.holder))
        lang = _lang(me.request)
        return me.page(
            "records",
            "/me",
            bad,
            name=mine.name,
            id_masked=mine.id_masked,
            compliance=[_compliance_view(c, lang) for c in mine.compliance],
            records=mine.records,
            years=sorted({r["year"] for r in mine.records}),
        )

    async def _deliver(
        self,
        me: _Me,
        fmt: str,
        name: str,
        issue: Callable[[Session, Any], Any],
        *,
        spare: _Errors = (),
    ) -> Response[Any]:
        """A document issued now (``issue`` with the issuer) as a download; a refusal shows the
        records page with what the service says."""

        def work() -> Any:
            issuer = me.ctx.issuer()
            with me.ctx.db.writer() as s:
                return issue(s, issuer)

        try:
            issued = await _attempt(work, me.t, spare=spare)
        except _Bad as exc:
            return await self._records_page(me, exc)
        return _download(issued, fmt, name)

    @post("/records/{record:str}/certificate", include_in_schema=False, status_code=200)
    async def certificate(self, me: NamedDependency[_Me], record: FromPath[str]) -> Response[Any]:
        """A completion certificate of one of my current records: the signed PDF, or the
        credential (JSON) it embeds."""
        form = await me.form()
        record = _check_handle(record)
        try:
            fmt = _format(form, me.t)
        except _Bad as exc:
            return await self._records_page(me, exc)

        def issue(s: Session, issuer: Any) -> Any:
            from certificates.issue import completion_certificate

            holder_records.find_chain(s, me.holder.person_id, record)  # 404 unless mine
            return completion_certificate(s, issuer, "holder", record)

        return await self._deliver(me, fmt, "certificate", issue, spare=NotFound)

    @post("/transcript", include_in_schema=False, status_code=200)
    async def transcript(self, me: NamedDependency[_Me]) -> Response[Any]:
        """My transcript (登记证书) for the years ticked: PDF, or the CLR credential (JSON)."""
        form, t = await me.form(), me.t
        try:
            fmt = _format(form, t)
            raw = form.getall("year", [])
            if not 1 <= len(raw) <= 10:
                raise _Bad(t["err_years"])
            years = sorted({_year(v, t) for v in raw})
        except _Bad as exc:
            return await self._records_page(me, exc)

        def issue(s: Session, issuer: Any) -> Any:
            from certificates.issue import transcript

            return transcript(s, issuer, "holder", me.holder.person_id, years)

        return await self._deliver(me, fmt, "transcript", issue)

    # -- share links ----------------------------------------------------------------------------

    async def _shares_page(
        self, me: _Me, form: Mapping[str, Any], bad: _Bad | None = None
    ) -> Response[str]:
        """My links and the form for a new one, filled in with ``form``."""
        now, lang = _now(me.request), _lang(me.request)
        shares, records = await _run(lambda: _share_views(me.ctx, me.holder, now, lang))
        this_year = local_date(now).year
        record_years = sorted({r["year"] for r in records}, reverse=True)
        return me.page(
            "shares",
            "/me/shares",
            bad,
            shares=shares,
            records=[r for r in records if r["status"] == "current"],
            years=record_years or [this_year],
            through_years=list(range(this_year, this_year - 11, -1)),
            scopes=SHARE_SCOPES,
            form={
                "scope": form.get("scope") if form.get("scope") in SHARE_SCOPES else "record",
                "record": form.get("record") or "",
                "year": str(form.get("year") or ""),
                "years": _digits(form.get("years"), 2) or "5",
                "through": _digits(form.get("through"), 4) or str(this_year - 1),
                "days": _digits(form.get("days"), 3) or "30",
                "label": form.get("label") if isinstance(form.get("label"), str) else "",
            },
        )

    @get("/shares", include_in_schema=False, media_type=MediaType.HTML)
    async def shares(self, me: NamedDependency[_Me]) -> Response[str]:
        """My share links (link, QR, status, how often opened) and the form for a new one
        (``?scope=record&record=…`` fills it in)."""
        prefill = {
            k: v[:64]
            for k in ("scope", "record", "year")
            if isinstance(v := me.request.query_params.get(k), str) and not _CONTROL.search(v)
        }
        return await self._shares_page(me, prefill)

    @post("/shares", include_in_schema=False, media_type=MediaType.HTML, status_code=303)
    async def create_share(self, me: NamedDependency[_Me]) -> Response[Any]:
        """A new share link; then its page (link, QR code)."""
        form, t = await me.form(), me.t
        now = _now(me.request)

        def create(s: Session) -> str:
            share, _ = holder_shares.create_share(
                s, me.ctx.vault, me.holder.person_id, spec, account_rules(me.ctx.settings), now=now
            )
            return share.id

        try:
            spec = _share_spec(form, t)
            share_id = await _attempt(me.writing(create), t, spare=NotFound)
        except NotFound as exc:
            bad = _Bad(t["err_not_found"], _status_of(exc))
        except _Bad as exc:
            bad = exc
        else:
            return _redirect(me.request, f"/me/shares/{share_id}")
        kept = {k: v for k, v in form.items() if isinstance(v, str) and len(v) <= 100}
        return await self._shares_page(me, kept, bad)

    async def _share_page(self, me: _Me, share: str, bad: _Bad | None = None) -> Response[str]:
        now, lang = _now(me.request), _lang(me.request)
        (view,), _ = await _run(lambda: _share_views(me.ctx, me.holder, now, lang, only=share))
        return me.page("share", f"/me/shares/{view['id']}", bad, share=view)

    @get("/shares/{share:str}", include_in_schema=False, media_type=MediaType.HTML)
    async def share(self, me: NamedDependency[_Me], share: FromPath[str]) -> Response[str]:
        """One link of mine: link and QR, extend, close, and who opened it when (page or API,
        what it answered, a short network code — never an address)."""
        return await self._share_page(me, _check_handle(share))

    @post(
        "/shares/{share:str}/extend",
        include_in_schema=False,
        media_type=MediaType.HTML,
        status_code=303,
    )
    async def extend_share(self, me: NamedDependency[_Me], share: FromPath[str]) -> Response[Any]:
        """Add 7–180 days (at most 180 from today); an expired link opens again."""
        form = await me.form()
        share = _check_handle(share)
        now, t = _now(me.request), me.t
        try:
            days = _number(form, "days", _label(t, "extend_days"), t, 7, 180, required=True) or 0
            await _attempt(
                me.writing(
                    lambda s: holder_shares.extend_share(
                        s, me.holder.person_id, share, days, account_rules(me.ctx.settings), now=now
                    )
                ),
                t,
                spare=NotFound,
            )
        except _Bad as exc:
            return await self._share_page(me, share, exc)
        return _redirect(me.request, f"/me/shares/{share}")

    @post(
        "/shares/{share:str}/close",
        include_in_schema=False,
        media_type=MediaType.HTML,
        status_code=303,
    )
    async def close_share(self, me: NamedDependency[_Me], share: FromPath[str]) -> Response[Any]:
        """Close a link for good."""
        await me.form()
        share = _check_handle(share)
        now = _now(me.request)
        await _run(
            me.writing(lambda s: holder_shares.close_share(s, me.holder.person_id, share, now=now))
        )
        return _redirect(me.request, f"/me/shares/{share}")

    # -- erasure --------------------------------------------------------------------------------

    @get("/erase", include_in_schema=False, media_type=MediaType.HTML)
    async def erase_form(self, me: NamedDependency[_Me]) -> Response[str]:
        """What erasure does, and the form (password again, a tick to confirm)."""
        return me.page("erase", "/me/erase")

    @post("/erase", include_in_schema=False, media_type=MediaType.HTML, status_code=200)
    async def erase(self, me: NamedDependency[_Me]) -> Response[str]:
        """Erase my personal data (PIPL): the services' erasure, password re-entered."""
        form, t = await me.form(), me.t
        try:
            password = _text(form, "password", t["password"], t, 256)
            if form.get("confirm") != "yes":
                raise _Bad(t["err_confirm"])
            now, client = _now(me.request), _client(me.request)
            receipt = await _attempt(
                lambda: erase_account(me.ctx, me.holder, password, client, now), t, AccountError
            )
        except _Bad as exc:
            return me.page("erase", "/me/erase", exc)
        response = _render(
            me.request,
            "erased",
            title="erased_title",
            here="/me/sign-in",
            receipt=receipt.to_json(),
        )
        _clear_cookie(response, SESSION_COOKIE)
        return response


def _download(issued: Any, fmt: str, name: str) -> Response[bytes]:
    """A document as a download: the signed PDF, or the credential it embeds as a JSON file."""
    if fmt == "json":
        body = json.dumps(issued.credential, ensure_ascii=False, indent=2).encode("utf-8")
        media, ext = "application/json", "json"
    else:
        body, media, ext = bytes(issued.pdf), "application/pdf", "pdf"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{issued.certificate_number}.{ext}"',
            **_NO_STORE,
        },
    )
