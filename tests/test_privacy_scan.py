"""No personal data in anything public, nor in any log line: a scan of a whole session.

A real server (``celedger serve``, JSON logs at DEBUG into a file) is driven through a realistic
session — batches with real-looking ID numbers, names (a compound surname, a Uyghur name with a
separator, an ID number ending in X), phone numbers in the places a clerk puts them by mistake;
professionals activating and signing in; share links opened by verifiers; certificates issued,
verified by token, by typed name / ID number and by PDF upload; a correction, a revocation, an
erasure; and a long list of bad requests that carry personal data where a careless error
message would echo it (422s on bad ID numbers, malformed JSON, ID numbers pasted as tokens,
in query strings, in unknown routes, in a witness request …).

Then four scans, for every ID number (full, and the pieces that identify: the first 17, region
and birth date, the birth date both ways, the last 8), every name (and given name, and one in
pinyin) and every phone number, in raw, JSON-escaped and percent-encoded forms:

* every response to a request without valid credentials — status, headers and body (the
  ledger's entries as served, one by one and in tile bundles, among them);
* every line the server logged;
* the ledger's entries as stored (``log_entries``): they carry only salted commitments;
* every column of every table: personal data is sealed at rest, so nothing is in plain text
  but the free text people typed (a correction's reason, …), which the session fills with names
  on purpose and which the public scan shows never leaves.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import MetaData, select

from ledger.identity import check_character
from ledger.registry.demo import DEMO_YEAR
from ledger.storage.models import LogEntry
from tests.completions_support import ETHICS, MATERIALS, as_csv, world
from tests.reliability_support import Server
from tests.test_accounts_support import PASSWORD
from tests.test_registry_support import bearer

_CSRF: Final = re.compile(r'name="csrf" value="([^"]*)"')
_FORM_COOKIE: Final = re.compile(r"celedger_form=([^;]+)")


def _id(region: str, birth: str, seq: int) -> str:
    first17 = f"{region}{birth}{seq:03d}"
    return first17 + check_character(first17)


def _id_ending_in_x(region: str, birth: str) -> str:
    return next(n for seq in range(1000) if (n := _id(region, birth, seq)).endswith("X"))


@dataclass(frozen=True)
class Someone:
    name: str
    id_number: str
    phone: str


PEOPLE: Final = (
    Someone("王建国", _id("110105", "19650312", 417), "13912345678"),
    Someone("李秀英", _id("310104", "19780923", 262), "18682234567"),
    Someone("欧阳娜娜", _id("440305", "19891130", 538), "13508136655"),
    Someone("陈晓东", _id("510107", "19720617", 91), "15928807744"),
    Someone("阿依古丽·买买提", _id("650102", "19930405", 724), "17799012345"),
    Someone("赵磊", _id("510402", "19861208", 333), "0812-3345678"),
    Someone("刘芳芳", _id_ending_in_x("510411", "19951021"), "13658120099"),
    Someone("孙悦", _id("370202", "19680229", 845), "+86 139 8123 4567"),
)
NOBODY: Final = Someone("钱多多", _id("320106", "19770707", 123), "13300001111")  # never posted
PINYIN: Final = "wangjianguo"  # person 0's name as a URL-minded person types it


def _row(p: Someone, **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "name": p.name,
        "id_number": p.id_number,
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
    return r


def _ethics(p: Someone) -> dict[str, Any]:
    day = f"{DEMO_YEAR}-03-10"
    return _row(p, class_code=ETHICS, category="公需", start=day, end=day, hours="6", fee_yuan="0")


# -- what is searched for ----------------------------------------------------------------------


def _forms(text: str) -> set[str]:
    """The ways a string can appear in a response or a log line."""
    out = {text, json.dumps(text)[1:-1], quote(text), quote(text, safe="")}
    return {f for f in out if f}


def identifiers() -> dict[str, str]:
    """search string → what it is (for the failure message)."""
    out: dict[str, str] = {}
    for i, p in enumerate((*PEOPLE, NOBODY)):
        n = p.id_number
        birth = n[6:14]
        pieces = {
            "ID number": n,
            "ID number, first 17": n[:17],
            "region and birth date": n[:14],
            "birth date": birth,
            "birth date (ISO)": f"{birth[:4]}-{birth[4:6]}-{birth[6:]}",
            "ID number, last 8": n[-8:],
        }
        if n.endswith("X"):
            pieces["ID number, lower-case x"] = n[:-1] + "x"
        for what, value in pieces.items():
            out[value] = f"{what} of person {i}"
        for form in _forms(p.name):
            out[form] = f"name of person {i}"
        given = [part for part in p.name[1:].split("·") if len(part) >= 2]
        for part in given:
            for form in _forms(part):
                out[form] = f"part of the name of person {i}"
        if i == 0:
            out[PINYIN] = "name of person 0, in pinyin"
        digits = "".join(c for c in p.phone if c.isdigit())
        for form in {*_forms(p.phone), digits}:
            out[form] = f"phone of person {i}"
    return out


def hits(text: str, needles: dict[str, str]) -> list[str]:
    return [f"{what} ({needle!r})" for needle, what in needles.items() if _found(needle, text)]


def _found(needle: str, text: str) -> bool:
    # An 8-digit needle (a birth date, an ID number's last 8) can turn up by chance inside the
    # long random decimals a response holds (timings in /metrics): an estimated one run in
    # 5,000.  Such a needle counts only as a number of its own.  Longer ones (an 11-digit
    # phone) would match by chance about once in 10⁹ runs, so they still match anywhere, e.g.
    # after a country code.
    if needle.isascii() and needle.isdigit() and len(needle) <= 8:
        return re.search(rf"(?<![0-9]){needle}(?![0-9])", text) is not None
    return needle in text


# -- the server --------------------------------------------------------------------------------


@pytest.fixture
def server(settings: Any, ctx: Any, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``celedger serve`` on the test's database, JSON logs at DEBUG into a file."""
    log = tmp_path / "server.log"
    server = Server(
        settings,
        log=log,
        CELEDGER_LOG_FORMAT="json",
        CELEDGER_LOG_LEVEL="DEBUG",
        CELEDGER_VERIFY_RATE_PER_MINUTE="100000",
        CELEDGER_PASSWORD_HASH_TIME_COST="1",
        CELEDGER_PASSWORD_HASH_MEMORY_KIB="64",
        CELEDGER_PASSWORD_HASH_PARALLELISM="1",
    )
    try:
        yield server.url, log
    finally:
        server.stop()


class Session:
    """An HTTP client that keeps every response given to a caller without valid credentials."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.public: list[httpx.Response] = []

    def call(
        self, method: str, path: str, *, auth: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {**kw.pop("headers", {}), **(auth or {})}
        r = self.http.request(method, path, headers=headers, **kw)
        assert r.status_code < 500, f"{method} {path}: {r.status_code} {r.text[:500]}"
        if auth is None:
            self.public.append(r)
        return r

    def ok(self, method: str, path: str, *, auth: dict[str, str] | None = None, **kw: Any) -> Any:
        r = self.call(method, path, auth=auth, **kw)
        assert 200 <= r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if "json" in r.headers.get("content-type", "") else r


def _public_text(r: httpx.Response) -> str:
    head = f"{r.status_code} {r.request.method} " + "\n".join(
        f"{k}: {v}" for k, v in r.headers.items()
    )
    return head + "\n" + r.content.decode("utf-8", "replace")


# -- the session -------------------------------------------------------------------------------


def drive(s: Session, keys: dict[str, dict[str, str]]) -> None:
    base1, city = keys["base:1"], keys["authority:CN-SC-PZH"]
    batches = "/api/v1/bases/1/batches"

    # Batches: JSON for six people, CSV for two.
    posted = s.ok(
        "POST",
        batches,
        auth=base1,
        json={"batch_key": "2026-05 材料班", "records": [_row(p) for p in PEOPLE[:6]]},
    )
    csv_body = as_csv([_row(p) for p in PEOPLE[6:]] + [_ethics(p) for p in PEOPLE[:2]])
    s.ok(
        "POST",
        batches,
        auth=base1,
        content=csv_body,
        headers={"Content-Type": "text/csv", "Idempotency-Key": "2026-ethics-csv"},
    )
    records = {p.id_number: r["record"] for p, r in zip(PEOPLE, posted["records"], strict=False)}

    # Bad batches: every one carries personal data where a careless message would echo it.
    bad_check = PEOPLE[0].id_number[:-1] + ("0" if PEOPLE[0].id_number[-1] != "0" else "1")
    bad_date = PEOPLE[1].id_number[:10] + "1399" + PEOPLE[1].id_number[14:]
    for rows in (
        [_row(PEOPLE[0], id_number=bad_check)],
        [_row(PEOPLE[1], id_number=bad_date)],
        [_row(PEOPLE[2], id_number=PEOPLE[2].id_number[:15])],  # the old 15-digit form
        [_row(PEOPLE[3], name=f"={PEOPLE[3].name}")],  # formula-looking cell
        [_row(PEOPLE[4], id_number=PEOPLE[4].phone)],  # the phone in the ID column
        [_row(PEOPLE[5], name=PEOPLE[6].name)],  # one ID number, two names (ledger)
        [_row(NOBODY), _row(NOBODY, name=PEOPLE[7].name)],  # … in the batch
        [_row(PEOPLE[0])],  # a duplicate of a posted record
        [_row(PEOPLE[1], phone=PEOPLE[1].phone)],  # an unknown field
        [_row(PEOPLE[2], name=PEOPLE[2].id_number)],  # the ID number as the name
        [_row(PEOPLE[3], employer=f"{PEOPLE[3].name} {PEOPLE[3].phone}", hours="999")],
    ):
        r = s.call("POST", batches, auth=base1, json={"batch_key": "bad", "records": rows})
        assert r.status_code in (400, 422), r.text
    with_phone = as_csv([_row(PEOPLE[4])]).decode("utf-8-sig").splitlines()
    with_phone[0] += ",手机号"
    with_phone[1] += f",{PEOPLE[4].phone}"
    r = s.call(
        "POST",
        batches,
        auth=base1,
        content="\r\n".join(with_phone).encode(),
        headers={"Content-Type": "text/csv", "Idempotency-Key": "phones"},
    )
    assert r.status_code in (400, 422), r.text
    # Without a key, or with someone's data in place of one: 401 before anything is read.
    s.call("POST", batches, json={"batch_key": "x", "records": [_row(PEOPLE[0])]})
    s.call("POST", batches, json={}, headers=bearer(PEOPLE[0].id_number))
    s.call(
        "GET",
        "/api/v1/registry/whoami",
        headers={"Authorization": f"Basic {PEOPLE[1].name}".encode()},
    )

    # Professionals: codes, activation, sign-in (right and wrong), their own pages.
    sessions = {}
    for p in PEOPLE[:3]:
        code = s.ok("POST", "/api/v1/activation-codes", auth=base1, json={"id_number": p.id_number})
        s.call(
            "POST",
            "/api/v1/me/activate",
            json={"id_number": p.id_number, "code": "ABCD-EFGH-JKMN-PQRS", "password": PASSWORD},
        )
        got = s.ok(
            "POST",
            "/api/v1/me/activate",
            json={"id_number": p.id_number, "code": code["code"], "password": PASSWORD},
        )
        sessions[p.id_number] = bearer(got["token"])
    s.call(
        "POST",
        "/api/v1/activation-codes",
        auth=keys["base:2"],
        json={"id_number": PEOPLE[0].id_number},
    )
    s.call("POST", "/api/v1/activation-codes", auth=base1, json={"id_number": bad_check})
    for body in (
        {"id_number": PEOPLE[0].id_number, "password": PASSWORD},
        {"id_number": PEOPLE[0].id_number, "password": "wrong password!"},
        {"id_number": NOBODY.id_number, "password": PASSWORD},
        {"id_number": bad_check, "password": PASSWORD},
        {"id_number": PEOPLE[1].id_number.lower(), "password": PASSWORD},
        {"id_number": int(PEOPLE[3].id_number), "password": PASSWORD},
        {"id_number": PEOPLE[4].phone, "password": PASSWORD},
        {"id_number": PEOPLE[5].id_number, "password": PASSWORD, "name": PEOPLE[5].name},
        {"id_number": PEOPLE[6].id_number},
        {"name": PEOPLE[7].name, "phone": PEOPLE[7].phone},
    ):
        s.call("POST", "/api/v1/me/sign-in", json=body)
    s.call(
        "POST",
        "/api/v1/me/sign-in",
        content=f'{{"id_number": "{PEOPLE[2].id_number}", "password": '.encode(),
        headers={"Content-Type": "application/json"},
    )
    # The same through the professional's pages (a form cookie and token, as a browser has).
    for path, form in (
        ("/me/sign-in", {"id_number": PEOPLE[0].id_number, "password": "wrong password!"}),
        ("/me/sign-in", {"id_number": NOBODY.id_number, "password": PASSWORD}),
        ("/me/sign-in", {"id_number": bad_check, "password": PASSWORD}),
        ("/me/sign-in", {"id_number": f"{PEOPLE[6].name} {PEOPLE[6].phone}", "password": "x"}),
        (
            "/me/activate",
            {
                "id_number": PEOPLE[3].id_number,
                "code": "ABCD-EFGH-JKMN-PQRS",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
        ),
        ("/me/activate", {"id_number": bad_date, "code": "x", "password": "p", "password2": "q"}),
    ):
        blank = s.call("GET", path)
        cookie = _FORM_COOKIE.search(blank.headers.get("set-cookie", ""))
        token = _CSRF.search(blank.text)
        assert cookie is not None and token is not None, blank.text[:300]
        s.call(
            "POST",
            path,
            data={**form, "csrf": token.group(1)},
            headers={"Cookie": f"celedger_form={cookie.group(1)}"},
        )
    holder = sessions[PEOPLE[0].id_number]
    s.ok("GET", "/api/v1/me", auth=holder)
    s.ok("GET", "/api/v1/me/records", auth=holder)
    s.ok("GET", "/api/v1/me/compliance", auth=holder)
    s.call("GET", "/api/v1/me")
    s.call("GET", "/api/v1/me", headers=bearer(f"ses_{PEOPLE[0].id_number}"))

    # Share links, opened by verifiers (the page, the JSON, both languages).
    share_urls = []
    for spec in (
        {"scope": "record", "record": records[PEOPLE[0].id_number], "days": 30},
        {"scope": "year", "year": DEMO_YEAR, "days": 7},
        {"scope": "transcript", "days": 180, "label": f"给{PEOPLE[0].name}单位"},
        {"scope": "title-check", "years": 3, "through": DEMO_YEAR, "days": 30},
    ):
        share = s.ok("POST", "/api/v1/me/shares", auth=holder, json=spec)
        share_urls.append(share["url"])
        s.ok("GET", f"/api/v1/me/shares/{share['id']}/qr", auth=holder)
    for url in share_urls:
        token = url.rsplit("/", 1)[1]
        s.ok("GET", f"/S/{token}")
        s.ok("GET", f"/s/{token.lower()}?lang=en")
        s.ok("GET", f"/api/v1/shares/{token}")
    s.ok("GET", f"/S/{PEOPLE[0].id_number}")
    s.ok("GET", f"/api/v1/shares/{PEOPLE[1].name}")

    # Certificates and transcripts, then public verification every way.
    verify_urls = []
    pdfs = []
    for p in PEOPLE[:4]:
        rid = records[p.id_number]
        issued = s.ok("POST", f"/api/v1/completions/{rid}/certificate?format=json", auth=base1)
        verify_urls.append(issued["verify_url"])
        pdfs.append(s.ok("POST", f"/api/v1/completions/{rid}/certificate", auth=base1).content)
    pdfs.append(
        s.ok(
            "POST", f"/api/v1/me/records/{records[PEOPLE[0].id_number]}/certificate", auth=holder
        ).content
    )
    pdfs.append(
        s.ok("POST", "/api/v1/me/transcript", auth=holder, json={"years": [DEMO_YEAR]}).content
    )
    pdfs.append(
        s.ok(
            "POST",
            "/api/v1/transcripts",
            auth=city,
            json={"id_number": PEOPLE[1].id_number, "years": [DEMO_YEAR]},
        ).content
    )
    s.call(
        "POST",
        "/api/v1/transcripts",
        auth=city,
        json={"id_number": NOBODY.id_number, "years": [DEMO_YEAR]},
    )
    s.call(
        "POST",
        "/api/v1/transcripts",
        auth=city,
        json={"id_number": bad_check, "years": [DEMO_YEAR]},
    )
    # A correction and a revocation, so that verification shows superseded and revoked.
    rid = records[PEOPLE[2].id_number]
    s.ok(
        "POST",
        f"/api/v1/completions/{rid}/corrections",
        auth=base1,
        json={"reason": f"{PEOPLE[2].name}学时有误", "changes": {"hours": "20"}},
    )
    rid = records[PEOPLE[3].id_number]
    s.ok(
        "POST",
        f"/api/v1/completions/{rid}/revocation",
        auth=city,
        json={"reason_code": "fraud", "reason": f"查实{PEOPLE[3].name}未参训"},
    )
    s.call(
        "POST",
        f"/api/v1/completions/{rid}/corrections",
        auth=base1,
        json={"reason": "x", "changes": {"name": PEOPLE[3].name, "id_number": PEOPLE[3].id_number}},
    )
    s.ok("GET", f"/api/v1/completions/{rid}", auth=base1)
    for url in verify_urls:
        token = url.rsplit("/", 1)[1]
        s.ok("GET", f"/api/v1/verify/{token}")
        s.ok("GET", f"/V/{token}")
        s.ok("GET", f"/v/{token}?lang=en")
        for p in (PEOPLE[0], PEOPLE[5], NOBODY):
            s.ok(
                "POST",
                f"/api/v1/verify/{token}/match",
                json={"name": p.name, "id_number": p.id_number},
            )
            s.ok("POST", f"/V/{token}", data={"name": p.name, "id_number": p.id_number})
        s.call("POST", f"/api/v1/verify/{token}/match", json={"id_number": bad_check})
        s.call(
            "POST",
            f"/api/v1/verify/{token}/match",
            json={"name": PEOPLE[0].name, "phone": PEOPLE[0].phone},
        )
        s.call("POST", f"/api/v1/verify/{token}/match", json={"name": PEOPLE[4].name * 20})
        s.call("POST", f"/V/{token}", data={"id_number": PEOPLE[7].phone * 5})
    for pdf in pdfs:
        s.ok("POST", "/api/v1/verify/pdf", content=pdf, headers={"Content-Type": "application/pdf"})
        s.ok("POST", "/verify?lang=en", files={"file": ("c.pdf", pdf, "application/pdf")})
    # Things people paste where a token goes, and personal data in places nobody expects it.
    for junk in (
        PEOPLE[0].id_number,
        PEOPLE[1].name,
        PEOPLE[2].phone,
        quote(PEOPLE[3].name),
        PINYIN,
    ):
        s.call("GET", f"/api/v1/verify/{junk}")
        s.call("GET", f"/V/{junk}")
        s.call("POST", f"/api/v1/verify/{junk}/match", json={"id_number": PEOPLE[0].id_number})
        s.call("GET", f"/api/v1/people/{junk}")
        s.call("GET", f"/api/v1/log/entries/{junk}")
        s.call("GET", f"/log/tile/0/{junk}")
        s.call("GET", f"/api/v1/completions/{junk}", auth=base1)
        s.call("GET", f"/api/v1/directory/bases/{junk}")
        s.call("GET", f"/api/v1/directory/jurisdictions/{junk}/policy")
    s.call("GET", f"/api/v1/log/proof/inclusion?index={PEOPLE[0].id_number}")
    s.call("GET", f"/api/v1/log/proof/inclusion?leaf_hash={PEOPLE[1].id_number}")
    s.call("GET", f"/api/v1/log/proof/consistency?old=1&new={PEOPLE[2].id_number}")
    s.call("GET", f"/api/v1/directory/bases?q={quote(PEOPLE[3].name)}&id={PEOPLE[3].id_number}")
    s.call("GET", f"/api/v1/directory/units?jurisdiction={PEOPLE[4].id_number}")
    s.call("GET", f"/api/v1/me/compliance?year={PEOPLE[5].id_number}", auth=holder)
    s.call(
        "POST",
        "/api/v1/verify/pdf",
        content=f"%PDF-1.7 {PEOPLE[6].name} {PEOPLE[6].id_number}".encode(),
    )
    s.call("POST", "/api/v1/verify/pdf", content=PEOPLE[7].id_number.encode())
    s.call(
        "POST", "/verify", files={"file": ("id.txt", PEOPLE[0].id_number.encode(), "text/plain")}
    )
    s.call("POST", "/witness/add-checkpoint", content=f"old {PEOPLE[1].id_number}\n\n".encode())
    s.call(
        "POST",
        "/witness/add-checkpoint",
        content=f"{PEOPLE[2].name}\n{PEOPLE[2].id_number}\n".encode(),
    )
    s.call("POST", f"/api/v1/completions/template?id={PEOPLE[3].id_number}")

    # Erasure: the person is gone, an old certificate still verifies (saying so).
    s.ok(
        "POST",
        "/api/v1/me/erasure",
        auth=sessions[PEOPLE[1].id_number],
        json={"password": PASSWORD, "confirm": True},
    )
    s.ok("GET", f"/api/v1/verify/{verify_urls[1].rsplit('/', 1)[1]}")
    s.call(
        "POST", "/api/v1/me/sign-in", json={"id_number": PEOPLE[1].id_number, "password": PASSWORD}
    )

    # Everything the log publishes: every entry, the checkpoint, the tiles, the directory.
    size = int(s.ok("GET", "/log/checkpoint").text.split("\n")[1])
    for i in range(size):
        s.ok("GET", f"/api/v1/log/entries/{i}")
    for n in range(size // 256):
        s.ok("GET", f"/log/tile/entries/{n:03d}")
    if size % 256:
        s.ok("GET", f"/log/tile/entries/{size // 256:03d}.p/{size % 256}")
    for path in ("/directory", "/directory/bases/1", "/api/v1/directory/bases", "/metrics", "/"):
        s.ok("GET", path)
    s.ok("GET", "/api/v1/bases/1/execution-summary?year=2026&format=csv", auth=base1)


#: Free text a person typed, stored as typed (never public, never in the ledger): the session
#: above puts names there on purpose, as clerks and professionals do.
FREE_TEXT: Final = frozenset(
    {
        "completions.correction_reason",
        "completion_revocations.reason",
        "share_links.label",
    }
)


def _stored_plaintext(ctx: Any, needles: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Every table, every column: personal data is sealed at rest (AES-GCM, keyed lookups), so
    no ID number, name or phone appears in plain text — but in the free text people typed."""
    tables = MetaData()
    tables.reflect(ctx.db.write_engine)
    with ctx.db.write_engine.connect() as c:
        for table in tables.sorted_tables:
            for row in c.execute(table.select()):
                for column, value in zip(table.columns, row, strict=True):
                    where = f"{table.name}.{column.name}"
                    if value is None or where in FREE_TEXT:
                        continue
                    if isinstance(value, bytes | memoryview):
                        text = bytes(value).decode("utf-8", "replace")
                    else:
                        text = str(value)
                    for hit in hits(text, needles):
                        yield where, hit


def test_nothing_personal_is_public_or_logged(
    settings: Any, ctx: Any, server: tuple[str, Path], db_url: str, figure: Any
) -> None:
    url, log = server
    keys = world(ctx)
    s = Session(url)
    drive(s, keys)
    needles = identifiers()
    found: list[str] = []
    for r in s.public:
        for hit in hits(_public_text(r), needles):
            found.append(f"public {r.request.method} {r.request.url.path}: {hit}")
    time.sleep(0.5)  # the last access-log lines
    lines = log.read_text("utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        for hit in hits(line, needles):
            found.append(f"log line {n}: {hit}: {line[:300]}")
    with ctx.db.reader() as db:
        stored = [bytes(b) for b in db.scalars(select(LogEntry.body))]
    for i, body in enumerate(stored):
        for hit in hits(body.decode("utf-8", "replace"), needles):
            found.append(f"log_entries[{i}]: {hit}")
    found += [f"table {where}: {hit}" for where, hit in _stored_plaintext(ctx, needles)]
    assert not found, f"{len(found)} hits:\n" + "\n".join(found[:200])
    assert len(lines) > 100 and len(s.public) > 100 and len(stored) > 20  # it really ran
    dialect = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    people = len(PEOPLE) + 1
    figure(
        f"privacy[{dialect}]: {len(lines)} log lines, {len(s.public)} public responses and "
        f"{len(stored)} ledger entries scanned for {people * 3} identifiers "
        f"({len(needles)} forms), 0 hits"
    )


def test_the_scan_finds_a_number_of_its_own_not_one_inside_random_digits() -> None:
    person = PEOPLE[0]
    needles = identifiers()
    birth, last8 = person.id_number[6:14], person.id_number[-8:]
    assert hits(f'{{"born":"{birth}"}}', needles) == [f"birth date of person 0 ({birth!r})"]
    assert hits(f"ref {last8}.", needles)
    assert hits(f"id={person.id_number}&x=1", needles)  # the long forms match anywhere
    assert hits(f"x7{person.id_number}9", needles)
    assert hits(f"tel 86{person.phone}", needles)  # a phone inside a longer number still counts
    timing = f"celedger_request_seconds_sum 0.0{birth}7\ncreated 1.7{birth}e+09"
    assert hits(timing, needles) == []
