"""Public verification: the QR code's landing page, the JSON API, match / no match, PDF upload.

No account, no JavaScript.  ``GET /V/{token}`` is what a phone camera opens (the token URL is
upper case so the QR can use alphanumeric mode; ``/v/`` works too): a page in Chinese
(``?lang=en`` for English) with the verdict and the named checks.  The same report is JSON at
``GET /api/v1/verify/{token}``.  Only masked personal data is shown; a verifier who types the
holder's full name or ID number (POST, never in a URL) is told match / no match.

Abuse: per-client rate limits on these routes (``CELEDGER_VERIFY_RATE_PER_MINUTE``), tokens of
128 random bits plus a signature (nothing to enumerate), no personal data in URLs or logs,
``Referrer-Policy: no-referrer`` so a token never leaks to another site, and short caching
(a revocation must show within a minute).
"""

from __future__ import annotations

import html
from typing import Annotated, Any, Final, Literal

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from api.context import Context
from api.ops import count_verification
from verification.report import Report

__all__ = ["UploadController", "VerifyController", "offline_bundle", "render_page"]

Lang = Annotated[Literal["zh", "en"], QueryParameter(name="lang")]
_MAX_TOKEN: Final = 400
# Results can change (a revocation), so caches may keep them only briefly.
_SHORT: Final = CacheControlHeader(max_age=60, public=True)

_CSS: Final = (
    "body{font-family:system-ui,'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;"
    "max-width:40rem;margin:0 auto;padding:1rem;line-height:1.6;color:#1a1a1a}"
    ".verdict{padding:1rem;border-radius:.5rem;font-size:1.25rem;font-weight:700;margin:1rem 0}"
    ".ok{background:#e6f4ea;border:2px solid #1e8e3e}.bad{background:#fce8e6;border:2px solid #d93025}"
    ".warn{background:#fef7e0;border:2px solid #f9ab00}"
    "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;"
    "text-align:left;vertical-align:top}th{width:7.5rem;color:#555;font-weight:400}"
    "li{margin:.3rem 0}.y{color:#1e8e3e}.n{color:#d93025}.q{color:#777}"
    "form{margin-top:1.5rem;padding:1rem;background:#f6f6f6;border-radius:.5rem}"
    "input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box;margin:.2rem 0 .6rem}"
    "button{font-size:1rem;padding:.5rem 1rem}small{color:#666}.d{white-space:nowrap}"
    "h1{font-size:1.5rem}@media(max-width:360px){h1{font-size:1.25rem}}"
    "p small a{display:inline-block;padding:.5rem .25rem}"
)

_LABELS: Final = {
    "zh": {
        "title": "继续教育学时证明核验",
        "checks": "核验项目",
        "holder": "持有人",
        "id": "身份证号",
        "base": "培训基地",
        "class": "培训项目",
        "category": "科目类别",
        "hours": "学时",
        "dates": "培训日期",
        "result": "考核结果",
        "ledger": "账本位置",
        "match": "核对持有人（输入完整姓名或身份证号，仅返回是否一致）",
        "name": "姓名",
        "submit": "核对",
        "yes": "一致",
        "no": "不一致",
        "other": "English",
        "upload": "上传PDF证书核验",
    },
    "en": {
        "title": "Continuing-education certificate verification",
        "checks": "Checks",
        "holder": "Holder",
        "id": "ID number",
        "base": "Base",
        "class": "Class",
        "category": "Category",
        "hours": "Hours (学时)",
        "dates": "Dates",
        "result": "Result",
        "ledger": "Ledger entry",
        "match": "Check the holder (type the full name or ID number; you only learn match / no match)",
        "name": "Name",
        "submit": "Check",
        "yes": "match",
        "no": "no match",
        "other": "中文",
        "upload": "Verify an uploaded PDF",
    },
}


#: What each check is called on the page (the JSON keeps the stable ids).
_CHECK_NAMES: Final = {
    "zh": {
        "token": "二维码", "signature": "签名", "key-status": "密钥状态",
        "ledger-inclusion": "账本登记", "record-status": "记录状态", "base-recognised": "基地资格",
        "pdf-signature": "PDF签名", "credential": "内嵌凭证", "consistency": "一致性",
    },
    "en": {
        "token": "Code", "signature": "Signature", "key-status": "Key status",
        "ledger-inclusion": "In the ledger", "record-status": "Record status",
        "base-recognised": "Base recognised", "pdf-signature": "PDF signature",
        "credential": "Embedded credential", "consistency": "Consistency",
    },
}  # fmt: skip


def _e(value: object) -> str:
    return html.escape(str(value))


def render_page(
    report: Report,
    lang: str,
    *,
    action: str | None = None,
    matched: dict[str, str] | None = None,
    switch: str = "",
) -> str:
    """The verdict page (also used for an uploaded PDF's report)."""
    t = _LABELS[lang]
    cls = "ok" if report.ok else ("warn" if report.verdict == "superseded" else "bad")
    checks = "".join(
        f'<li><span class="{"y" if c.ok else ("q" if c.ok is None else "n")}">'
        f"{'✓' if c.ok else ('–' if c.ok is None else '✗')}</span> "
        f"<b>{_e(_CHECK_NAMES[lang].get(c.id, c.id))}</b>：{_e(c.zh if lang == 'zh' else c.en)}</li>"
        for c in report.checks
    )
    rows = ""
    for r in report.records:
        rows += (
            "<table>"
            f"<tr><th>{t['holder']}</th><td>{_e(r['holder']['name'])}</td></tr>"
            f"<tr><th>{t['id']}</th><td>{_e(r['holder']['id_number'])}</td></tr>"
            f"<tr><th>{t['base']}</th><td>{_e(r['base'])}</td></tr>"
            f"<tr><th>{t['class']}</th><td>{_e(r['class_title'])} ({_e(r['class_code'])})</td></tr>"
            f"<tr><th>{t['category']}</th><td>{_e(r['category'])} · {_e(r['mode'])}</td></tr>"
            f"<tr><th>{t['hours']}</th><td>{_e(r['hours'])}</td></tr>"
            f'<tr><th>{t["dates"]}</th><td><span class="d">{_e(r["start"])}</span> – '
            f'<span class="d">{_e(r["end"])}</span></td></tr>'
            f"<tr><th>{t['result']}</th><td>{_e(r['result'])}</td></tr>"
            f"<tr><th>{t['ledger']}</th><td>#{_e(r['ledger_index'])} <small>{_e(r['record'])}</small></td></tr>"
            "</table>"
        )
    notes = "".join(f"<p>{_e(z if lang == 'zh' else en)}</p>" for z, en in report.notes)
    match_block = ""
    if action is not None and report.records:
        answers = ""
        if matched:
            answers = (
                "<p>"
                + " · ".join(
                    f"{t['name'] if k == 'name' else t['id']}: "
                    f'<b class="{"y" if v == "match" else "n"}">{t["yes"] if v == "match" else t["no"]}</b>'
                    for k, v in matched.items()
                )
                + "</p>"
            )
        match_block = (
            f'<form method="post" action="{_e(action)}"><p>{t["match"]}</p>{answers}'
            f'<label>{t["name"]}<input name="name" autocomplete="off"></label>'
            f'<label>{t["id"]}<input name="id_number" autocomplete="off" inputmode="text"></label>'
            f'<button type="submit">{t["submit"]}</button></form>'
        )
    return (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{t['title']}</title><style>{_CSS}</style></head><body>"
        f"<h1>{t['title']}</h1>"
        f'<div class="verdict {cls}" id="verdict" data-verdict="{_e(report.verdict)}">'
        f"{_e(report.headline(lang))}</div>{notes}{rows}"
        f"<h2>{t['checks']}</h2><ul>{checks}</ul>{match_block}"
        f'<p><small><a href="{_e(switch)}">{t["other"]}</a> · '
        f'<a href="/verify">{t["upload"]}</a></small></p>'
        "</body></html>"
    )


_UPLOAD_FORM: Final = {
    "zh": (
        "上传PDF证书核验",
        "选择本系统签发的PDF证书或学时证明，核验其电子签名、内嵌凭证、二维码与账本记录是否一致。",
        "核验",
    ),
    "en": (
        "Verify a certificate PDF",
        "Choose a certificate PDF issued by this service: its signature, embedded credential, QR code and ledger record are checked together.",
        "Verify",
    ),
}


def render_upload_form(lang: str) -> str:
    title, text, button = _UPLOAD_FORM[lang]
    return (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head><body><h1>{title}</h1><p>{text}</p>"
        f'<form method="post" action="/verify?lang={lang}" enctype="multipart/form-data">'
        f'<input type="file" name="file" accept="application/pdf" required>'
        f'<button type="submit">{button}</button></form></body></html>'
    )


class MatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: Annotated[str | None, Field(default=None, max_length=60)] = None
    id_number: Annotated[str | None, Field(default=None, max_length=40)] = None


def _clip(token: str) -> str:
    if len(token) > _MAX_TOKEN:
        return token[:_MAX_TOKEN]  # too long to be a token: verified (and refused) as is
    return token


class VerifyController(Controller):
    tags = ("verification",)

    def _report(self, ctx: Context, token: str) -> Report:
        with ctx.db.reader() as s:
            report = ctx.verifier().verify(s, _clip(token))
        count_verification(report, "token")
        return report

    async def _report_async(self, ctx: Context, token: str) -> Report:
        # A kept report is answered on the event loop: the thread hop would cost more than
        # the lookup.  Anything else reads the database, in a worker thread.
        verifier, clipped = ctx.verifier(), _clip(token)
        report = verifier.cached(clipped)
        if report is None and verifier.renewable():
            await ctx.renew_verifier_snapshot()
            report = verifier.cached(clipped)
        if report is None:
            return await anyio.to_thread.run_sync(self._report, ctx, token)
        count_verification(report, "token")
        return report

    # HTML pages stay out of the API reference (and two paths would share one operation id).
    @get(
        ["/V/{token:str}", "/v/{token:str}"],
        include_in_schema=False,
        cache_control=_SHORT,
        media_type="text/html; charset=utf-8",
    )
    async def landing(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        token: FromPath[str],
        lang: Lang = "zh",
    ) -> Response[str]:
        """The QR code's landing page: verdict and checks, masked data, no JavaScript."""
        report = await self._report_async(ctx, token)
        other = "en" if lang == "zh" else "zh"
        # Links relative to this page ("?lang=en"): the page never repeats its path, which is
        # whatever the visitor typed or pasted there (someone's ID number, a name …).
        return Response(
            render_page(report, lang, action=f"?lang={lang}", switch=f"?lang={other}"),
            media_type="text/html; charset=utf-8",
        )

    # (Handlers with several paths are async and offload by hand: Litestar's sync_to_thread
    # wrapper is not awaited for them.)
    @post(
        ["/V/{token:str}", "/v/{token:str}"],
        include_in_schema=False,
        status_code=200,
        media_type="text/html; charset=utf-8",
        cache_control=CacheControlHeader(no_store=True),
    )
    async def page_match(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        token: FromPath[str],
        data: Annotated[MatchIn, Body(media_type=RequestEncodingType.URL_ENCODED)],
        lang: Lang = "zh",
    ) -> Response[str]:
        """The page's match form: match / no match, never the data."""

        def work() -> tuple[Report, dict[str, str]]:
            report = self._report(ctx, token)
            with ctx.db.reader() as s:
                try:
                    matched = ctx.verifier().match(
                        s, _clip(token), data.name or None, data.id_number or None
                    )
                except LookupError:
                    matched = {}
            return report, matched

        report, matched = await anyio.to_thread.run_sync(work)
        other = "en" if lang == "zh" else "zh"
        return Response(
            render_page(
                report, lang, action=f"?lang={lang}", matched=matched, switch=f"?lang={other}"
            ),
            media_type="text/html; charset=utf-8",
        )

    @get("/api/v1/verify/bundle", sync_to_thread=True, cache_control=_SHORT)
    def bundle(self, ctx: NamedDependency[Context]) -> dict[str, Any]:
        """Everything an offline verifier needs, in one file: the issuer's DID and keys, the
        log's origin, verifier key and latest signed checkpoint, the PDF-signing root.  Save it
        and run ``celedger verify FILE.pdf --offline --bundle bundle.json``."""
        return offline_bundle(ctx)

    @get("/api/v1/verify/{token:str}", cache_control=_SHORT)
    async def api(self, ctx: NamedDependency[Context], token: FromPath[str]) -> dict[str, Any]:
        """The verification report as JSON: ``verdict`` (valid, valid-base-revoked-later,
        revoked, superseded, key-compromised, unknown, forged), named ``checks`` (signature,
        key-status, ledger-inclusion, record-status, base-recognised) with reasons, masked
        record data."""
        return (await self._report_async(ctx, token)).to_json()

    @post(
        "/api/v1/verify/{token:str}/match",
        sync_to_thread=True,
        status_code=200,
        cache_control=CacheControlHeader(no_store=True),
    )
    def api_match(
        self, ctx: NamedDependency[Context], token: FromPath[str], data: JSONBody[MatchIn]
    ) -> dict[str, str]:
        """Whether a typed full name and/or ID number are the holder's: match / no-match."""
        from api.problems import Problem

        if data.name is None and data.id_number is None:
            raise Problem(400, "match.empty", "give name, id_number or both")
        with ctx.db.reader() as s:
            try:
                return ctx.verifier().match(s, _clip(token), data.name, data.id_number)
            except LookupError as exc:
                raise Problem(404, "match.unknown", str(exc)) from None


def offline_bundle(ctx: Context) -> dict[str, Any]:
    from asn1crypto import pem

    from ledger.issuing import keyset
    from ledger.keyset import did_web
    from ledger.storage.log import Log

    roots = ctx.pdf_trust_roots()
    with ctx.db.reader() as s:
        checkpoint = Log.latest_checkpoint(s)
        jwks = keyset(s).to_jwks()
    return {
        "did": did_web(ctx.settings.public_url),
        "jwks": jwks,
        "origin": ctx.settings.origin,
        "log_key": ctx.log_verifier.to_vkey(),
        "checkpoint": None if checkpoint is None else checkpoint.note,
        "pdf_root_pem": "".join(
            pem.armor("CERTIFICATE", cert.dump()).decode("ascii") for cert in roots
        ),
    }


def _pdf_from(request_body: bytes) -> bytes:
    from api.problems import Problem

    if not request_body.startswith(b"%PDF-"):
        raise Problem(400, "verify.not-pdf", "expected a PDF file (starting with %PDF-)")
    return request_body


class UploadController(Controller):
    """Verification of an uploaded certificate PDF (page form and API)."""

    tags = ("verification",)
    request_max_body_size = 20 * 1024 * 1024

    async def _verify(self, ctx: Context, pdf: bytes) -> Report:
        def work() -> Report:
            roots = ctx.pdf_trust_roots()
            with ctx.db.reader() as s:
                return ctx.verifier().verify_pdf(s, pdf, roots)

        report = await anyio.to_thread.run_sync(work)
        count_verification(report, "pdf")
        return report

    @post("/api/v1/verify/pdf", status_code=200, cache_control=CacheControlHeader(no_store=True))
    async def api_pdf(
        self, request: Request[Any, Any, Any], ctx: NamedDependency[Context]
    ) -> dict[str, Any]:
        """Verify an uploaded certificate PDF (``Content-Type: application/pdf``, or a
        multipart ``file``): PDF signature, embedded credential, QR code and ledger status
        together, with a ``consistency`` check that they name the same record(s)."""
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            data = await upload.read() if isinstance(upload, UploadFile) else b""
        else:
            data = await request.body()
        return (await self._verify(ctx, _pdf_from(data))).to_json()

    @get("/verify", media_type="text/html; charset=utf-8", sync_to_thread=False)
    def form(self, lang: Lang = "zh") -> str:
        """The upload form (no JavaScript)."""
        return render_upload_form(lang)

    @post(
        "/verify",
        status_code=200,
        media_type="text/html; charset=utf-8",
        cache_control=CacheControlHeader(no_store=True),
    )
    async def form_post(
        self, request: Request[Any, Any, Any], ctx: NamedDependency[Context], lang: Lang = "zh"
    ) -> Response[str]:
        """The upload form's result page."""
        form = await request.form()
        upload = form.get("file")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
        report = await self._verify(ctx, _pdf_from(data))
        return Response(
            render_page(report, lang, switch=f"/verify?lang={'en' if lang == 'zh' else 'zh'}"),
            media_type="text/html; charset=utf-8",
        )
