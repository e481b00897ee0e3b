"""The professional's pages (/me) through the app, on SQLite and PostgreSQL, as a browser uses
them: forms, the session cookie, redirects.

Activation → sign-in → my records with the right totals and history → downloads → a share link
whose public page works → extend / close → the access log lists the visit → sign-out.  Also:
nobody sees or closes another person's things, a POST without its form token is refused (403),
the cookie's flags, the same answer for an unknown ID number and a wrong password, lock-out,
session expiry, erasure, no 500 on any bad field, the demo's professional, and a basic HTML
check of every page.  The cookie is ``Secure``, so the client speaks https to the test app.

The phone-sized look is checked in a real headless Chromium (``test_me_on_a_phone``): it signs
in through the form, follows the redirect with the cookie the server set, and the /me page is
screenshot at 360×780.
"""

from __future__ import annotations

import base64
import fcntl
import html
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.routes.holder_web import FORM_COOKIE, SESSION_COOKIE
from tests.browser_support import CHROMIUM, CHROMIUM_FLAGS, require
from tests.completions_support import id_number
from tests.reliability_support import Server
from tests.test_accounts_support import (
    PASSWORD,
    Clock,
    history,
    issue_code,
    seeded,
    settings,
)
from tests.test_registry_support import bearer

__all__ = ["settings"]  # fixture, imported for pytest

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_ERROR = re.compile(r'<div class="msg bad" role="alert" id="error">(.*?)</div>', re.S)


# --------------------------------------------------------------------------------------------
# A browser: an https client on the app with its own cookie jar


@contextmanager
def _browser(settings: Any, ctx: Any, clock: Clock) -> Iterator[Any]:
    from litestar.testing import TestClient

    from api.app import create_app

    # https: the session cookie is Secure, and a client keeps it off plain http.
    with TestClient(
        app=create_app(settings, context=ctx), base_url="https://testserver.local"
    ) as tc:
        tc.app.state["holder_clock"] = clock
        yield tc


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def web(settings: Any, ctx: Any, clock: Clock) -> Iterator[Any]:
    with _browser(settings, ctx, clock) as tc:
        yield tc


def _db(ctx: Any) -> str:
    return str(ctx.settings.database_url).split(":")[0].split("+")[0]


def _csrf(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, f"expected a form token in the page: {page[:2000]}"
    return found.group(1)


def _error(page: str) -> str:
    found = _ERROR.search(page)
    assert found is not None, f"expected a form error in the page: {page[:3000]}"
    return found.group(1)


def _post(web: Any, page: str, action: str, fields: dict[str, Any]) -> Any:
    """Open ``page`` (for its form token) and post ``fields`` to ``action``, not following."""
    r = web.get(page)
    assert r.status_code == 200, r.text
    return web.post(action, data={"csrf": _csrf(r.text), **fields}, follow_redirects=False)


def _activate(web: Any, n: int | str, code: str, password: str = PASSWORD, **over: str) -> Any:
    number = id_number(n) if isinstance(n, int) else n
    fields = {"id_number": number, "code": code, "password": password, "password2": password}
    return _post(web, "/me/activate", "/me/activate", fields | over)


def _sign_in(web: Any, n: int, password: str = PASSWORD) -> Any:
    fields = {"id_number": id_number(n), "password": password}
    return _post(web, "/me/sign-in", "/me/sign-in", fields)


def _signed_in(web: Any, keys: dict[str, dict[str, str]], n: int) -> str:
    """Person n activated through the page; answers their session token (the cookie)."""
    r = _activate(web, n, issue_code(web, keys, "base:1", n))
    assert r.status_code == 303 and r.headers["location"] == "/me", r.text
    token = web.cookies.get(SESSION_COOKIE)
    assert token is not None and token.startswith("ses_")
    return str(token)


def _set_cookies(r: Any) -> dict[str, str]:
    """The response's Set-Cookie headers by cookie name."""
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


# --------------------------------------------------------------------------------------------
# A basic HTML check


_VOID = {"meta", "input", "br", "img", "link", "hr", "col", "area", "base", "wbr", "source"}
# Elements whose end tag HTML lets one leave out; these pages close them anyway.
_CLOSE_OPTIONAL: set[str] = set()


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else '—'}>")
            return
        self.stack.pop()


def _sane(page: Any, lang: str = "zh-CN") -> str:
    """Doctype, language, phone viewport, well-nested tags, no script, nothing loaded from
    elsewhere (images inline, forms and links to this site), no-store."""
    assert page.headers["content-type"].startswith("text/html"), page.headers
    assert page.headers["cache-control"] == "no-store"
    text: str = page.text
    assert text.startswith("<!doctype html>\n"), text[:200]
    assert f'<html lang="{lang}">' in text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert '<meta charset="utf-8">' in text
    lowered = text.lower()
    for bad in ("<script", "<link", "<iframe", "@import", "url(", " on" + "click=", "javascript:"):
        assert bad not in lowered, bad
    for src in re.findall(r'\ssrc="([^"]*)"', text):
        assert src.startswith("data:image/svg+xml;base64,"), src
    for href in re.findall(r'\s(?:href|action)="([^"]*)"', text):
        same_site = href.startswith(("/", "#", "?")) and not href.startswith("//")
        share_link = re.fullmatch(r"HTTP://TESTSERVER/S/[A-Z2-7]{32}", href) is not None
        assert same_site or share_link, href
    checker = _Balance()
    checker.feed(text)
    checker.close()
    assert checker.problems == [] and checker.stack == [], (checker.problems, checker.stack)
    return text


# --------------------------------------------------------------------------------------------
# The whole path


def test_activate_records_share_and_sign_out(web: Any, ctx: Any, clock: Clock, figure: Any) -> None:
    keys, ids = seeded(web, ctx)
    corrected, revoked = history(web, keys, ids["p1"])
    # Before sign-in: /me sends the browser to the sign-in form.
    r = web.get("/me", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me/sign-in"
    _sane(web.get("/me/sign-in"))
    _sane(web.get("/me/activate?lang=en"), "en")

    # Activation: the cookie carries the session token, with every flag.
    r = _activate(web, 1, issue_code(web, keys, "base:1", 1))
    assert r.status_code == 303 and r.headers["location"] == "/me", r.text
    cookie = _set_cookies(r)[SESSION_COOKIE]
    flags = {f.strip().split("=")[0].lower(): f.strip() for f in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= set(flags), cookie
    assert flags["samesite"].lower() == "samesite=strict" and flags["path"] == "Path=/me"
    assert int(flags["max-age"].split("=")[1]) == 7 * 24 * 3600  # the session's absolute end
    token = web.cookies.get(SESSION_COOKIE)
    assert token is not None and token.startswith("ses_")
    # The same session the JSON API knows (one store), which takes only its Bearer header.
    assert web.get("/api/v1/me", headers=bearer(token)).json()["name"] == "张二甲"
    r = web.get("/api/v1/me", headers={"Cookie": f"{SESSION_COOKIE}={token}"})
    assert r.status_code == 401

    # My records: the totals and the shortfall sentence the JSON API computes, the history.
    me = web.get("/me")
    assert me.status_code == 200
    text = _sane(me)
    (year,) = web.get("/api/v1/me/compliance", headers=bearer(token)).json()
    assert (year["total"], year["required"], year["shortfall"]) == ("26", "90", "64")
    short = {c["category"]: c["shortfall"] for c in year["category_checks"] if not c["met"]}
    assert short == {"公需": "24", "专业": "40"}
    sentence = "2026年：26/90 学时，共差 64 学时，公需差 24 学时，专业差 40 学时 ✗"
    assert sentence in text, text
    assert year["summary"]["zh"] in html.unescape(text)
    assert "张二甲" in text and id_number(1) not in text and "5****************" in text
    cards = dict(re.findall(r'data-record="([^"]+)" data-status="([^"]+)"', text))
    assert cards == {corrected: "current", ids["p1"][1]: "current", revoked: "revoked"}
    assert "学时登记有误" in text and "已被更正" in text and "查实未参会" in text
    en = _sane(web.get("/me?lang=en"), "en")
    assert (
        "2026: 26/90 学时, 64 学时 short in total, 24 学时 short in 公需, 40 学时 short in 专业 ✗"
        in en
    )
    figure(f"holder-web[{_db(ctx)}]: /me is {len(me.content):,} bytes for 3 records")

    # Downloads with the cookie session: certificate PDF and credential, transcript PDF.
    r = _post(web, "/me", f"/me/records/{corrected}/certificate", {"format": "pdf"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF-"), r.text[:500]
    assert r.headers["content-disposition"].startswith('attachment; filename="certificate-CE')
    r = _post(web, "/me", f"/me/records/{corrected}/certificate", {"format": "json"})
    assert r.status_code == 200 and "OpenBadgeCredential" in r.json()["type"], r.text[:500]
    r = _post(web, "/me", "/me/transcript", {"year": "2026", "format": "pdf"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
    r = _post(web, "/me", f"/me/records/{revoked}/certificate", {"format": "pdf"})
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")

    # A share link for one record, from the record's "share" link.
    form = web.get(f"/me/shares?scope=record&record={corrected}")
    assert f'<option value="{corrected}" selected>' in _sane(form)
    r = _post(
        web,
        "/me/shares",
        "/me/shares",
        {"scope": "record", "record": corrected, "days": "7", "label": "给单位人事处"},
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/me/shares/sh_"), r.text
    share_page = r.headers["location"]
    page = _sane(web.get(share_page))
    (url,) = re.findall(r'id="link">([^<]+)<', page)
    assert re.fullmatch(r"HTTP://TESTSERVER/S/[A-Z2-7]{32}", url)
    assert 'class="qr" src="data:image/svg+xml;base64,' in page and "给单位人事处" in page
    qr = re.search(r'class="qr" src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert qr is not None and b"<svg" in base64.b64decode(qr.group(1))
    assert "尚无人查看" in page
    # The verifier's page of the link works.
    public = web.get(urlsplit(url).path)
    assert 'data-verdict="valid"' in public.text and corrected in public.text
    assert "张*甲" in public.text and "张二甲" not in public.text
    # The access log lists the visit: the page, valid, a network code (no address).
    page = web.get(share_page).text
    visits = re.findall(
        r'<tr class="access"><td><span class="d">([^<]+)</span></td><td>([^<]+)</td>'
        r"<td>([^<]+)</td><td><code>([0-9a-f]{12})</code>",
        page,
    )
    assert [v[1:3] for v in visits] == [("网页", "有效")], visits
    assert "testclient" not in page
    # Extend by 30 days (from its end), then close: the public page says closed.
    before = re.findall(r'id="expires">([^<]+)<', page)[0]
    r = _post(web, share_page, f"{share_page}/extend", {"days": "30"})
    assert r.status_code == 303 and r.headers["location"] == share_page
    after = re.findall(r'id="expires">([^<]+)<', web.get(share_page).text)[0]
    stamp = "%Y-%m-%d %H:%M"
    gained = datetime.strptime(after, stamp) - datetime.strptime(before, stamp)
    assert gained == timedelta(days=30)
    r = _post(web, share_page, f"{share_page}/close", {})
    assert r.status_code == 303
    page = web.get(share_page).text
    assert 'id="status">已关闭<' in page and "/extend" not in page
    assert 'data-verdict="closed"' in web.get(urlsplit(url).path).text
    listing = _sane(web.get("/me/shares"))
    assert listing.count('class="card share"') == 1 and 'data-status="closed"' in listing

    # Sign-out: the cookie goes, the session ends (the old token opens nothing), /me sends
    # the browser to the sign-in form again.
    r = _post(web, "/me", "/me/sign-out", {})
    assert r.status_code == 303 and r.headers["location"] == "/me/sign-in"
    assert "Max-Age=0" in _set_cookies(r)[SESSION_COOKIE]
    assert web.cookies.get(SESSION_COOKIE) is None
    r = web.get("/me", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me/sign-in"
    r = web.get("/me", headers={"Cookie": f"{SESSION_COOKIE}={token}"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me/sign-in?expired=1"
    assert web.get("/api/v1/me", headers=bearer(token)).status_code == 401
    # Signing in again (with the password chosen at activation) lands on the records.
    r = _sign_in(web, 1)
    assert r.status_code == 303 and r.headers["location"] == "/me"
    assert "26/90" in web.get("/me").text


def test_nobody_sees_or_closes_another_persons_things(
    web: Any, settings: Any, ctx: Any, clock: Clock
) -> None:
    keys, ids = seeded(web, ctx)
    _signed_in(web, keys, 1)
    r = _post(web, "/me/shares", "/me/shares", {"scope": "transcript", "days": "30"})
    assert r.status_code == 303
    mine = r.headers["location"]
    with _browser(settings, ctx, clock) as other:
        _signed_in(other, keys, 2)
        text = other.get("/me").text
        assert ids["p2"][0] in text
        assert not any(record in text for record in ids["p1"])
        assert "张二甲" not in text and "张三甲" in text
        # Person 1's link: not found, not extended, not closed; person 1's record: no
        # certificate, no share.
        assert other.get(mine).status_code == 404
        for action, fields in (
            (f"{mine}/close", {}),
            (f"{mine}/extend", {"days": "30"}),
            (f"/me/records/{ids['p1'][0]}/certificate", {"format": "pdf"}),
        ):
            r = _post(other, "/me", action, fields)
            assert r.status_code == 404, (action, r.text[:300])
            assert r.headers["content-type"].startswith("text/html")
        r = _post(other, "/me/shares", "/me/shares", {"scope": "record", "record": ids["p1"][0], "days": "30"})  # fmt: skip
        assert r.status_code == 404 and "没有找到" in _error(r.text)
        assert 'class="card share"' not in other.get("/me/shares").text
        # Person 2's form token is worth nothing in person 1's session, and the reverse.
        theirs = _csrf(other.get("/me").text)
    r = web.post(f"{mine}/close", data={"csrf": theirs}, follow_redirects=False)
    assert r.status_code == 403
    page = web.get(mine).text
    assert 'id="status">有效<' in page


def test_posts_without_the_form_token_are_refused(
    web: Any, settings: Any, ctx: Any, clock: Clock
) -> None:
    keys, ids = seeded(web, ctx)
    # Before sign-in: the double-submit cookie and its token.
    code = issue_code(web, keys, "base:1", 1)
    fields = {"id_number": id_number(1), "code": code, "password": PASSWORD, "password2": PASSWORD}
    r = web.post("/me/activate", data=fields, follow_redirects=False)
    assert r.status_code == 403 and "表单已失效" in _error(r.text)
    web.get("/me/activate")
    assert web.cookies.get(FORM_COOKIE) is not None
    r = web.post("/me/activate", data=fields | {"csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    # Another browser's token (its cookie is not this one's).
    with _browser(settings, ctx, clock) as other:
        foreign = _csrf(other.get("/me/activate").text)
    r = web.post("/me/activate", data=fields | {"csrf": foreign}, follow_redirects=False)
    assert r.status_code == 403
    # Nothing was redeemed or counted: the code still activates.
    assert _activate(web, 1, code).status_code == 303
    r = web.post("/me/sign-in", data={"id_number": id_number(1), "password": PASSWORD})
    assert r.status_code == 403
    # Signed in: every POST wants the token of this session.
    r = _post(web, "/me/shares", "/me/shares", {"scope": "transcript", "days": "30"})
    share = r.headers["location"]
    for action, body in (
        ("/me/shares", {"scope": "transcript", "days": "30"}),
        (f"{share}/close", {}),
        (f"{share}/extend", {"days": "30"}),
        (f"/me/records/{ids['p1'][0]}/certificate", {"format": "pdf"}),
        ("/me/transcript", {"year": "2026"}),
        ("/me/erase", {"password": PASSWORD, "confirm": "yes"}),
        ("/me/sign-out", {}),
        ("/me/sign-out-everywhere", {}),
    ):
        for token in (None, "", "x" * 43):
            data = body if token is None else body | {"csrf": token}
            r = web.post(action, data=data, follow_redirects=False)
            assert r.status_code == 403, (action, token, r.text[:300])
        r = web.post(action, json=body, follow_redirects=False)
        assert r.status_code == 403, action
    # Nothing changed: one link, still open; still signed in; the account still there.
    assert web.get("/me/shares").text.count('class="card share"') == 1
    assert 'id="status">有效<' in web.get(share).text
    assert web.get("/me", follow_redirects=False).status_code == 200


def test_sign_in_errors_say_nothing_and_lock_out(web: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(web, ctx)
    _signed_in(web, keys, 1)
    web.cookies.clear()
    unknown = _sign_in(web, 77)
    wrong = _sign_in(web, 1, "wrong password!")
    assert unknown.status_code == wrong.status_code == 401
    assert _error(unknown.text) == _error(wrong.text) == "身份证号或密码错误。"
    assert id_number(77) not in unknown.text and id_number(1) not in wrong.text
    r = _post(web, "/me/sign-in?lang=en", "/me/sign-in?lang=en",
              {"id_number": id_number(1), "password": "wrong password!"})  # fmt: skip
    assert _error(r.text) == "The ID number or the password is wrong."
    # A malformed ID number says what is wrong with it, never echoing it.
    bad = "51040219800101001X"
    r = _post(web, "/me/sign-in", "/me/sign-in", {"id_number": bad, "password": PASSWORD})
    assert r.status_code == 400 and "check character" in _error(r.text) and bad not in r.text
    # Five failures for one ID number lock it (15 minutes), the right password too.
    for _ in range(3):
        assert _sign_in(web, 1, "wrong password!").status_code == 401
    locked = _sign_in(web, 1)
    assert locked.status_code == 429 and "锁定" in _error(locked.text)
    assert 14 * 60 < int(locked.headers["retry-after"]) <= 15 * 60
    assert "15 分钟" in _error(locked.text)
    clock.advance(minutes=15, seconds=1)
    assert _sign_in(web, 1).status_code == 303
    # Wrong codes: the service's single answer, whoever the ID number is.
    web.cookies.clear()
    a = _activate(web, 1, "ABCD-EFGH-JKMN-PQRS")
    b = _activate(web, 78, "ABCD-EFGH-JKMN-PQRS")
    assert a.status_code == b.status_code == 401 and _error(a.text) == _error(b.text)
    # Password typed twice differently; a weak one; a malformed code: each said, nothing kept.
    code = issue_code(web, keys, "base:1", 2)
    r = _activate(web, 2, code, password2="something else entirely")
    assert r.status_code == 400 and "不一致" in _error(r.text)
    r = _activate(web, 2, code, password="short")
    assert r.status_code == 422 and "password" in _error(r.text)
    r = _activate(web, 2, "ABC")
    assert r.status_code == 422 and "K7QM-2XHD-9RTA-PW3E" in _error(r.text)
    assert _activate(web, 2, code).status_code == 303


def test_sessions_expire_and_end_everywhere(
    web: Any, settings: Any, ctx: Any, clock: Clock
) -> None:
    keys, _ = seeded(web, ctx)
    _signed_in(web, keys, 1)
    clock.advance(hours=11, minutes=59)
    assert web.get("/me", follow_redirects=False).status_code == 200
    clock.advance(hours=12)
    r = web.get("/me", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me/sign-in?expired=1"
    assert "Max-Age=0" in _set_cookies(r)[SESSION_COOKIE]
    assert "会话已过期" in web.get("/me/sign-in?expired=1").text
    # Sign out everywhere ends the other browser's session too.
    assert _sign_in(web, 1).status_code == 303
    with _browser(settings, ctx, clock) as other:
        assert _sign_in(other, 1).status_code == 303
        assert other.get("/me", follow_redirects=False).status_code == 200
        r = _post(web, "/me", "/me/sign-out-everywhere", {})
        assert r.status_code == 303 and r.headers["location"] == "/me/sign-in"
        assert other.get("/me", follow_redirects=False).status_code == 303
    assert web.get("/me", follow_redirects=False).status_code == 303
    # A signed-in person opening the sign-in form goes to their records.
    assert _sign_in(web, 1).status_code == 303
    r = web.get("/me/sign-in", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/me"


def test_erasure_needs_the_password_and_confirmation(web: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(web, ctx)
    token = _signed_in(web, keys, 1)
    page = _sane(web.get("/me/erase"))
    assert "无法撤销" in page and 'name="confirm" value="yes"' in page
    r = _post(web, "/me/erase", "/me/erase", {"password": PASSWORD})
    assert r.status_code == 400 and "勾选" in _error(r.text)
    r = _post(web, "/me/erase", "/me/erase", {"password": "wrong password!", "confirm": "yes"})
    assert r.status_code == 401 and "密码错误" in _error(r.text)
    assert web.get("/api/v1/me", headers=bearer(token)).status_code == 200  # nothing erased
    r = _post(web, "/me/erase?lang=en", "/me/erase?lang=en", {"password": PASSWORD, "confirm": "yes"})  # fmt: skip
    assert r.status_code == 200, r.text
    text = _sane(r, "en")
    receipt = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", text))
    assert receipt["Records no longer linked"] == "3" and receipt["Erasure id"].startswith("er_")
    assert "Max-Age=0" in _set_cookies(r)[SESSION_COOKIE]
    assert web.get("/me", follow_redirects=False).status_code == 303
    assert _sign_in(web, 1).status_code == 401
    assert web.get("/api/v1/me", headers=bearer(token)).status_code == 401


def test_bad_fields_are_4xx_never_500(web: Any, ctx: Any, clock: Clock, figure: Any) -> None:
    keys, ids = seeded(web, ctx)
    # Before sign-in.
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("/me/sign-in", "/me/sign-in", {}, 400),
        ("/me/sign-in", "/me/sign-in", {"id_number": "123", "password": "x" * 12}, 400),
        ("/me/sign-in", "/me/sign-in", {"id_number": id_number(1)}, 400),
        ("/me/sign-in", "/me/sign-in", {"id_number": id_number(1), "password": "x" * 300}, 400),
        ("/me/sign-in", "/me/sign-in", {"id_number": "\x00" * 18, "password": "x" * 12}, 400),
        ("/me/sign-in", "/me/sign-in", {"id_number": "５１０４０２", "password": "x" * 12}, 400),
        ("/me/sign-in", "/me/sign-in", {"id_number": "x" * 5000, "password": "x"}, 400),
        ("/me/activate", "/me/activate", {"id_number": id_number(1)}, 400),
        (
            "/me/activate",
            "/me/activate",
            {
                "id_number": id_number(1),
                "code": "x" * 41,
                "password": "p" * 12,
                "password2": "p" * 12,
            },
            400,
        ),
        (
            "/me/activate",
            "/me/activate",
            {
                "id_number": id_number(1),
                "code": "ÄÖÜ-€",
                "password": "p" * 12,
                "password2": "p" * 12,
            },
            422,
        ),
    ]
    for page, action, fields, status in cases:
        r = _post(web, page, action, fields)
        assert r.status_code == status, (action, fields, r.text[:500])
        assert r.headers["content-type"].startswith("text/html") and _error(r.text)
    # Signed in.
    _signed_in(web, keys, 1)
    r = _post(web, "/me/shares", "/me/shares", {"scope": "transcript", "days": "30"})
    share = r.headers["location"]
    record = ids["p1"][0]
    cases = [
        ("/me/shares", "/me/shares", {}, 400),
        ("/me/shares", "/me/shares", {"scope": "everything", "days": "30"}, 400),
        ("/me/shares", "/me/shares", {"scope": "transcript"}, 400),
        ("/me/shares", "/me/shares", {"scope": "transcript", "days": "abc"}, 400),
        ("/me/shares", "/me/shares", {"scope": "transcript", "days": "6"}, 400),
        ("/me/shares", "/me/shares", {"scope": "transcript", "days": "181"}, 400),
        ("/me/shares", "/me/shares", {"scope": "transcript", "days": "9" * 40}, 400),
        ("/me/shares", "/me/shares", {"scope": "transcript", "days": "-7"}, 400),
        ("/me/shares", "/me/shares", {"scope": "transcript", "days": "3e1"}, 400),
        (
            "/me/shares",
            "/me/shares",
            {"scope": "transcript", "days": "30", "label": "x" * 101},
            400,
        ),
        (
            "/me/shares",
            "/me/shares",
            {"scope": "transcript", "days": "30", "label": "a\x00b"},
            400,
        ),
        ("/me/shares", "/me/shares", {"scope": "record", "days": "30"}, 400),
        ("/me/shares", "/me/shares", {"scope": "record", "days": "30", "record": "r\x00"}, 400),
        ("/me/shares", "/me/shares", {"scope": "record", "days": "30", "record": "nope"}, 404),
        ("/me/shares", "/me/shares", {"scope": "record", "days": "30", "record": "x" * 65}, 400),
        ("/me/shares", "/me/shares", {"scope": "year", "days": "30"}, 400),
        ("/me/shares", "/me/shares", {"scope": "year", "days": "30", "year": "1999"}, 400),
        ("/me/shares", "/me/shares", {"scope": "year", "days": "30", "year": "9" * 30}, 400),
        ("/me/shares", "/me/shares", {"scope": "title-check", "days": "30", "years": "11"}, 400),
        ("/me/shares", "/me/shares", {"scope": "title-check", "days": "30", "years": "0"}, 400),
        (
            "/me/shares",
            "/me/shares",
            {"scope": "title-check", "days": "30", "years": "3", "through": "21000"},
            400,
        ),
        (share, f"{share}/extend", {}, 400),
        (share, f"{share}/extend", {"days": "x"}, 400),
        (share, f"{share}/extend", {"days": "180"}, 422),  # 30 days left: at most 150 more
        ("/me", f"/me/records/{record}/certificate", {"format": "exe"}, 400),
        ("/me", "/me/records/nope/certificate", {"format": "pdf"}, 404),
        ("/me", "/me/transcript", {}, 400),
        ("/me", "/me/transcript", {"year": "20x6"}, 400),
        ("/me", "/me/transcript", {"year": [str(y) for y in range(2000, 2011)]}, 400),
        ("/me", "/me/transcript", {"year": "2026", "format": "docx"}, 400),
        ("/me/erase", "/me/erase", {"confirm": "yes"}, 400),
        ("/me/erase", "/me/erase", {"password": "x" * 257, "confirm": "yes"}, 400),
    ]
    for page, action, fields, status in cases:
        r = _post(web, page, action, fields)
        assert r.status_code == status, (action, fields, r.text[:500])
        assert r.headers["content-type"].startswith("text/html")
        if status != 404:
            assert _error(r.text)
    # Paths, uploads, JSON, huge bodies, methods.
    token = _csrf(web.get("/me").text)
    odd: list[tuple[str, str, dict[str, Any], int]] = [
        ("get", "/me/shares/%00", {}, 404),
        ("get", "/me/shares/" + "x" * 500, {}, 404),
        ("get", "/me/shares/sh_aaaaaaaaaaaaaaaa", {}, 404),
        ("post", "/me/shares/%00/close", {"data": {"csrf": token}}, 404),
        ("post", "/me/records/%00/certificate", {"data": {"csrf": token}}, 404),
        (
            "post",
            "/me/shares",
            {"data": {"csrf": token, "scope": "transcript"}, "files": {"days": ("d.txt", b"30")}},
            400,
        ),
        ("post", "/me/shares", {"json": {"csrf": token, "scope": "transcript", "days": 30}}, 403),
        ("post", "/me/shares", {"data": {"csrf": token, "label": "x" * 100_000}}, 413),
        (
            "post",
            "/me/shares",
            {
                "content": b"%%%\xff\xfe=&&==",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            403,
        ),
        ("put", "/me/shares", {}, 405),
        ("get", "/me/shares?scope=%3Cscript%3E&record=%00&year=x", {}, 200),
        ("get", "/me/nothing-here", {}, 404),
    ]
    for method, path, kwargs, status in odd:
        r = getattr(web, method)(path, follow_redirects=False, **kwargs)
        assert r.status_code == status, (method, path, r.text[:500])
        assert r.status_code < 500
    assert "<script>" not in web.get("/me/shares?scope=<script>").text
    # The same through the JSON API, whose share routes shared the services' NUL-byte 500s on
    # PostgreSQL (fixed in ledger.accounts.shares).
    auth = bearer(str(web.cookies.get(SESSION_COOKIE)))
    for method, path, kwargs, status in (
        ("get", "/api/v1/me/shares/%00", {}, 404),
        ("get", "/api/v1/me/shares/%00/qr", {}, 404),
        ("post", "/api/v1/me/shares/%00/close", {}, 404),
        ("post", "/api/v1/me/shares/%00/extend", {"json": {"days": 30}}, 404),
        (
            "post",
            "/api/v1/me/shares",
            {"json": {"scope": "transcript", "days": 30, "label": "a\x00b"}},
            400,  # refused as the body is read (api/bodies.py), naming the field
        ),
    ):
        r = getattr(web, method)(path, headers=auth, **kwargs)
        assert r.status_code == status, (method, path, r.text[:300])
        assert status != 400 or "label" in r.text, r.text
    figure(f"holder-web[{_db(ctx)}]: {len(cases) + len(odd) + 15} bad form cases, 0 answered 5xx")


def test_every_page_is_sane_in_both_languages(web: Any, ctx: Any, clock: Clock) -> None:
    keys, _ = seeded(web, ctx)
    for lang, tag in (("zh", "zh-CN"), ("en", "en")):
        for path in ("/me/sign-in", "/me/activate"):
            _sane(web.get(f"{path}?lang={lang}"), tag)
    _signed_in(web, keys, 1)
    r = _post(web, "/me/shares", "/me/shares", {"scope": "title-check", "years": "3", "through": "2026", "days": "60"})  # fmt: skip
    share = r.headers["location"]
    page = web.get(share).text
    assert "职称评审周期验证：2024–2026" in page
    for lang, tag in (("zh", "zh-CN"), ("en", "en")):
        for path in ("/me", "/me/shares", share, "/me/erase", "/me/shares/sh_unknownunknown"):
            r = web.get(f"{path}?lang={lang}")
            _sane(r, tag)
            # The language switch leads to the same page in the other language (an unknown
            # path by a relative link: a page never repeats what was typed into its path).
            other = "?lang=en" if lang == "zh" else "?lang=zh"
            switch = other if "unknown" in path else (path + "?lang=en" if lang == "zh" else path)
            assert f'href="{switch}"' in r.text, (path, lang)
    # Links inside a page keep the language.
    en = web.get("/me?lang=en").text
    assert 'href="/me/shares?lang=en"' in en and 'action="/me/sign-out?lang=en"' in en


def test_demo_prints_a_professional_who_can_sign_in(web: Any, ctx: Any, clock: Clock) -> None:
    from api.cli import seed_demo_lines

    for _ in range(2):  # a fresh code on every run, seeded or not
        lines = seed_demo_lines(ctx)
        (line,) = [x for x in lines if x.startswith("professional")]
        found = re.search(r"身份证号 ([0-9X]{18}) and activation code ([0-9A-Z-]{19})", line)
        assert found is not None, line
        number, code = found.groups()
    r = _activate(web, number, code)
    assert r.status_code == 303, r.text
    text = web.get("/me").text
    assert text.count('class="card record"') == 3
    assert "2026年：36/90 学时" in text and "张伟" in text


def test_the_shortfall_sentence() -> None:
    from api.routes.holder_web import _compliance_view

    def result(
        period: str, years: list[int], total: str, checks: list[tuple[str, str, str]]
    ) -> dict[str, Any]:
        required = "90" if period == "year" else "270"
        met = float(total) >= float(required) and all(float(c) >= float(r) for _, c, r in checks)
        return {
            "period": period, "years": years, "total": total, "required": required,
            "shortfall": str(max(0, int(required) - int(total))), "met": met,
            "category_checks": [
                {"category": k, "counted": c, "required": r, "met": float(c) >= float(r),
                 "shortfall": str(max(0, int(r) - int(c)))}
                for k, c, r in checks
            ],
            "summary": {"zh": "…", "en": "…"}, "policy": {"code": "CN", "version": 1},
        }  # fmt: skip

    short = _compliance_view(result("year", [2026], "84", [("专业", "54", "60")]), "zh")
    assert short["sentence"] == "2026年：84/90 学时，共差 6 学时，专业差 6 学时 ✗"
    assert short["percent"] == 93 and not short["met"]
    en = _compliance_view(result("year", [2026], "84", [("专业", "54", "60")]), "en")
    assert en["sentence"] == "2026: 84/90 学时, 6 学时 short in total, 6 学时 short in 专业 ✗"
    # Enough hours in all, one category short: only the category is said.
    cat = _compliance_view(result("year", [2026], "96", [("公需", "20", "30")]), "zh")
    assert cat["sentence"] == "2026年：96/90 学时，公需差 10 学时 ✗" and cat["percent"] == 100
    cycle = _compliance_view(result("cycle", [2024, 2025, 2026], "270", []), "zh")
    assert cycle["sentence"] == "2024–2026年：270/270 学时，已达标 ✓" and cycle["met"]
    assert (
        _compliance_view(result("cycle", [2024, 2025, 2026], "270", []), "en")["sentence"]
        == "2024–2026: 270/270 学时, requirement met ✓"
    )


# --------------------------------------------------------------------------------------------
# A phone, for real: headless Chromium signs in through the form and renders /me


class _DevTools:
    """Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    JSON messages separated by NUL on file descriptors 3 and 4), so no driver is needed."""

    def __init__(self, profile: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4.
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=_fds(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                assert "error" not in reply, (method, reply)
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, seen in enumerate(self.events):
                if seen.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._read())
        raise AssertionError(f"no {event} within {timeout} s")

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise AssertionError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        out: dict[str, Any] = json.loads(raw)
        return out

    def close(self) -> None:
        with suppress(AssertionError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _fds(read_end: int, write_end: int) -> Any:
    """In the child: the pipe's ends on fds 3 and 4 (by way of high numbers, since either end
    may itself be 3 or 4)."""

    def place() -> None:
        high_read = fcntl.fcntl(read_end, fcntl.F_DUPFD, 100)
        high_write = fcntl.fcntl(write_end, fcntl.F_DUPFD, 100)
        os.dup2(high_read, 3)
        os.dup2(high_write, 4)

    return place


def test_me_on_a_phone(settings: Any, ctx: Any, tmp_path: Path, figure: Any) -> None:
    from PIL import Image

    require(CHROMIUM, "chromium")
    keys, _ = seeded_direct(ctx)
    server = Server(
        settings,
        CELEDGER_PASSWORD_HASH_TIME_COST="1",
        CELEDGER_PASSWORD_HASH_MEMORY_KIB="64",
        CELEDGER_PASSWORD_HASH_PARALLELISM="1",
    )
    base = server.url
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            r = http.post(
                "/api/v1/activation-codes", json={"id_number": id_number(1)}, headers=keys["base:1"]
            )
            assert r.status_code == 201, r.text
            r = http.post(
                "/api/v1/me/activate",
                json={"id_number": id_number(1), "code": r.json()["code"], "password": PASSWORD},
            )
            assert r.status_code == 201, r.text
        with tempfile.TemporaryDirectory(prefix="celedger-chromium-") as profile:
            chrome = _DevTools(profile)
            try:
                dom, png = _phone_visit(chrome, base)
            finally:
                chrome.close()
    finally:
        server.stop()
    # Chromium kept the Secure, SameSite=Strict cookie over http://127.0.0.1 (a secure
    # context), followed the redirect with it and rendered the records.
    assert "<script" not in dom
    assert "张二甲" in dom and "2026年：36/90 学时" in dom, dom[:3000]
    assert dom.count('class="card record"') == 3
    shot = tmp_path / "me-360x780.png"
    shot.write_bytes(png)
    Path("/tmp/holder-me.png").write_bytes(png)  # a copy for a person to look at
    image = Image.open(shot).convert("RGB")
    assert image.size == (360, 780), image.size
    colours = image.getcolors(maxcolors=1 << 20) or []
    white = sum(n for n, c in colours if c == (255, 255, 255))
    inked = 1 - white / (360 * 780)
    # Text, the progress bar and the cards: far from blank, and more than two colours.
    assert inked > 0.05 and len(colours) > 20, (inked, len(colours))
    # Nothing wider than the phone: the page's own width is the viewport's.
    figure(
        f"holder-web phone screenshot[{_db(ctx)}]: 360×780, {inked:.0%} inked, {len(colours)} colours"
    )


def seeded_direct(ctx: Any) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """`seeded` without an app client: the registry and person 1's three records (and person
    2's one), posted through the services."""
    from litestar.testing import TestClient

    from api.app import create_app

    with TestClient(app=create_app(ctx.settings, context=ctx)) as tc:
        return seeded(tc, ctx)


def _phone_visit(chrome: _DevTools, base: str) -> tuple[str, bytes]:
    """Sign in through the form at 360×780 and come back with /me's DOM and a screenshot."""
    (target,) = [t for t in chrome.send("Target.getTargets")["targetInfos"] if t["type"] == "page"]
    session = chrome.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)[
        "sessionId"
    ]
    chrome.send("Page.enable", session)
    chrome.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=360,
        height=780,
        deviceScaleFactor=1,
        mobile=True,
    )

    def load(url: str | None = None, script: str | None = None) -> None:
        chrome.events.clear()
        if url is not None:
            chrome.send("Page.navigate", session, url=url)
        else:
            chrome.send("Runtime.evaluate", session, expression=script)
        chrome.wait_for("Page.loadEventFired")

    load(f"{base}/me/sign-in")
    # Type into the form and submit it, as a person would (the page has no script of its
    # own; this is the test's hand).
    number, password = json.dumps(id_number(1)), json.dumps(PASSWORD)
    load(
        script=(
            f"document.querySelector('input[name=id_number]').value={number};"
            f"document.querySelector('input[name=password]').value={password};"
            "document.querySelector('form[action=\"/me/sign-in\"]').submit();"
        )
    )
    where = chrome.send("Runtime.evaluate", session, expression="location.pathname")
    assert where["result"]["value"] == "/me", where
    dom = chrome.send("Runtime.evaluate", session, expression="document.documentElement.outerHTML")[
        "result"
    ]["value"]
    width = chrome.send(
        "Runtime.evaluate", session, expression="document.documentElement.scrollWidth"
    )["result"]["value"]
    assert width <= 360, f"the page is {width} px wide on a 360 px phone"
    shot = chrome.send("Page.captureScreenshot", session, format="png")
    return str(dom), base64.b64decode(shot["data"])
