"""Hostile and broken inputs through HTTP, on SQLite and PostgreSQL: each gets its exact answer.

``CASES`` is the table: what is sent, to which endpoint, and the status and problem code (or
verdict) that must come back.  Every case also checks that nothing was written (the log size
and the number of completion records are unchanged; batches that are fine are sent as
``?dry_run=true``) and that no answer is a 5xx.  ``docs/bad-inputs.md`` is this table for
people; ``test_the_document_lists_every_case`` fails when the two disagree.

Limits are lowered for the run (``CELEDGER_MAX_BATCH_BYTES`` 256 KiB, ``…_ROWS`` 50) so that
"too large" costs kilobytes, not megabytes; the refusal is the same code path at any size.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from ledger.completions.intake import COLUMNS
from tests.asgi_support import asgi_get
from tests.completions_support import (
    BATCHES,
    XLSX,
    as_csv,
    as_xlsx,
    batch,
    record,
    world,
    written,
)
from tests.paths import ROOT

MAX_BYTES = 256 * 1024
MAX_ROWS = 50
DOC = ROOT / "docs" / "bad-inputs.md"
PROBLEM = "application/problem+json"
DRY = BATCHES + "?dry_run=true"
SQLI = "' OR 1=1 --"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Any:
    from api.settings import Settings

    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        data_dir=tmp_path / "data",
        origin="test.celedger.example/log",
        public_url="http://testserver",
        max_batch_bytes=MAX_BYTES,
        max_batch_rows=MAX_ROWS,
        password_hash_time_cost=1,
        password_hash_memory_kib=64,
        password_hash_parallelism=1,
    )


@dataclass
class Env:
    """The seeded service a case talks to."""

    client: Any
    keys: dict[str, dict[str, str]]
    base_key: str  # base 1's raw API key
    record: str  # an existing completion record
    token: str  # a genuine QR token of that record


Send = Callable[[Env], Any]


@dataclass(frozen=True)
class Case:
    id: str
    input: str  # what is sent, for docs/bad-inputs.md
    endpoint: str
    status: int
    answer: str  # problem code, "verdict <v>", or what a 2xx carries
    send: Send
    #: A word the problem must contain: the field, column or rule it names.
    names: str | None = None

    def row(self) -> str:
        """This case as a line of docs/bad-inputs.md (``|`` escaped: it is a table)."""
        cells = (self.input, f"`{self.endpoint}`", f"{self.status} {self.answer}")
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


# --------------------------------------------------------------------------------------------
# How cases send


def _batch(body: bytes | Callable[[], bytes], content_type: str, *, key: str = "bad-input") -> Send:
    """A batch posted as a dry run: a good one answers 200 and writes nothing either way.
    ``body`` may be a function, so that costly files are built only when the case runs."""

    def send(env: Env) -> Any:
        return env.client.post(
            DRY,
            content=body() if callable(body) else body,
            headers={**env.keys["base:1"], "Content-Type": content_type, "Idempotency-Key": key},
        )

    return send


def _json_batch(*records: dict[str, Any]) -> Send:
    return _batch(json.dumps(batch("bad-input", *records)).encode(), "application/json")


def _post(
    path: str, body: bytes, *, role: str | None = "authority:CN-SC", ctype: str = "application/json"
) -> Send:
    def send(env: Env) -> Any:
        headers = {"Content-Type": ctype, **(env.keys[role] if role else {})}
        return env.client.post(path, content=body, headers=headers)

    return send


def _get(
    path: str | Callable[[Env], str],
    *,
    role: str | None = None,
    headers: dict[str, str] | None = None,
) -> Send:
    def send(env: Env) -> Any:
        url = path(env) if callable(path) else path
        return env.client.get(url, headers={**(env.keys[role] if role else {}), **(headers or {})})

    return send


def _raw_get(raw_path: bytes) -> Send:
    """A GET with the path exactly as given: HTTP clients resolve ``..`` before sending, an
    attacker's does not (and neither does uvicorn)."""

    def send(env: Env) -> Any:
        return _Raw(*anyio.run(asgi_get, env.client.app, raw_path))

    return send


@dataclass
class _Raw:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


def _with_auth(path: str, value: Callable[[Env], str], *, method: str = "GET") -> Send:
    def send(env: Env) -> Any:
        return env.client.request(method, path, headers={"Authorization": value(env)})

    return send


def _token(mangle: Callable[[str], str], *, page: bool = False) -> Send:
    def send(env: Env) -> Any:
        token = mangle(env.token)
        return env.client.get(("/V/" if page else "/api/v1/verify/") + token)

    return send


def _flip(text: str, at: int) -> str:
    """One character changed (A↔B): a bit flipped in transit or by a forger."""
    swapped = "B" if text[at] == "A" else "A"
    return text[:at] + swapped + text[at + 1 :]


def _csv_rows(rows: list[list[str]], encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


HEADERS = [c.header for c in COLUMNS]


def _cells(n: int, **over: Any) -> list[str]:
    values = record(n, **over)
    return [str(values.get(c.key, "")) for c in COLUMNS]


def _xlsx_with(cell: str, value: str) -> bytes:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(as_xlsx([record(1)])))
    sheet = book.active
    assert sheet is not None
    sheet[cell] = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def _xlsx_bomb() -> bytes:
    """A real workbook whose sheet inflates to 100 MiB (blank padding before the rows): about
    a hundred kilobytes on the wire."""
    good = zipfile.ZipFile(io.BytesIO(as_xlsx([record(1)])))
    files = {n: good.read(n) for n in good.namelist()}
    sheet = next(n for n in files if n.startswith("xl/worksheets/"))
    files[sheet] = files[sheet].replace(b"<sheetData>", b"<sheetData>" + b" " * (100 << 20))
    return _zip_of(files)


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def _multipart_without_file(env: Env) -> Any:
    return env.client.post(
        DRY,
        data={"batch_key": "bad-input"},
        files={"other": ("x.txt", b"x")},
        headers=env.keys["base:1"],
    )


def _signature(value: bytes) -> Send:
    def send(env: Env) -> Any:
        return env.client.post(
            DRY,
            json=batch("bad-input", record(1)),
            headers={**env.keys["base:1"], "Batch-Signature": value},
        )

    return send


# --------------------------------------------------------------------------------------------
# The table

BATCH = "POST /api/v1/bases/{base}/batches"
UNITS = "POST /api/v1/registry/units"
TEXT_FIELDS = ("name", "id_number", "employer", "category", "class_code", "mode", "result")

# One case per line: this is a table (docs/bad-inputs.md is generated from the same rows).
# fmt: off
CASES: list[Case] = [
    # The control: a good batch (dry run) is accepted, so the refusals below are about the input.
    Case("good-batch", "a valid JSON batch (dry run, the control)", BATCH, 200, "the digest to sign", _json_batch(record(1))),
    # Malformed JSON
    Case("json-truncated", "JSON cut off mid-array", BATCH, 400, "`batch.malformed`: not valid JSON", _batch(b'{"batch_key": "k", "records": [{"name": ', "application/json"), names="JSON"),
    Case("json-trailing", "JSON followed by garbage", BATCH, 400, "`batch.malformed`: not valid JSON", _batch(json.dumps(batch("k", record(1))).encode() + b" xyz", "application/json"), names="JSON"),
    Case("json-records-string", "`records` is a string", BATCH, 400, "`batch.malformed`: records must be an array", _batch(b'{"batch_key": "k", "records": "all"}', "application/json"), names="records"),
    Case("json-record-array", "a record that is an array", BATCH, 400, "`batch.malformed`: each record must be an object", _batch(b'{"batch_key": "k", "records": [[1, 2]]}', "application/json"), names="records[0]"),
    Case("json-wrong-types", "`hours` an object, `year` a list", BATCH, 422, "`rule-violation` `batch.invalid`: one error per cell (`field.type`)", _json_batch(record(1, hours={"h": 1}, year=[2026])), names="hours"),
    Case("json-duplicate-keys", "the same key twice in an object", BATCH, 400, "`batch.malformed`: parsers disagree on which key wins", _batch(b'{"batch_key": "k", "batch_key": "k2", "records": []}', "application/json"), names="unique"),
    Case("json-nan", "`NaN` as a number", BATCH, 400, "`batch.malformed`: not a JSON number", _batch(b'{"batch_key": "k", "records": [{"hours": NaN}]}', "application/json"), names="NaN"),
    Case("json-unknown-member", "an unknown top-level member", BATCH, 400, "`batch.malformed`: a batch has `batch_key` and `records` only", _batch(b'{"batch_key": "k", "records": [], "admin": true}', "application/json"), names="admin"),
    Case("registry-truncated", "JSON cut off", UNITS, 400, "`bad-request`: not valid JSON", _post("/api/v1/registry/units", b'{"jurisdiction": "CN-SC", "ti')),
    Case("registry-wrong-types", "`title` a list, `jurisdiction` a number", UNITS, 400, "`bad-request`: names the field and the expected type", _post("/api/v1/registry/units", b'{"jurisdiction": 5, "title": ["x"]}'), names="jurisdiction"),
    Case("empty-body", "an empty body", BATCH, 400, "`batch.empty`: nothing to read", _batch(b"", "application/json")),
    Case("no-content-type", "a body with no Content-Type", BATCH, 415, "`batch.content-type`: JSON, CSV, XLSX or multipart only", _batch(b"hello", ""), names="Content-Type"),
    # CSV
    Case("csv-wrong-header", "CSV whose header row is not the template's", BATCH, 400, "`batch.unknown-columns`: names the unknown columns and the template's", _batch(_csv_rows([["who", "when", "hours"], ["张三", "x", "1"]]), "text/csv"), names="who"),
    Case("csv-semicolons", "CSV separated by `;`", BATCH, 400, "`batch.unknown-columns`: one unknown column: the whole header line", _batch(_csv_rows([HEADERS, _cells(1)], delimiter=";"), "text/csv")),
    Case("csv-gbk-as-utf8", "GBK bytes labelled `charset=utf-8`", BATCH, 200, "read as GBK (dry run)", _batch(as_csv([record(1)], encoding="gbk"), "text/csv; charset=utf-8")),
    Case("csv-bom", "UTF-8 with a BOM", BATCH, 200, "read (dry run)", _batch(as_csv([record(1)], encoding="utf-8-sig"), "text/csv")),
    Case("csv-utf16", "UTF-16 with tabs (Excel's \u201cUnicode text\u201d)", BATCH, 200, "read (dry run)", _batch(b"\xff\xfe" + "\r\n".join("\t".join(r) for r in [HEADERS, _cells(1)]).encode("utf-16-le"), "text/csv")),
    Case("csv-ragged-long", "a row with more cells than headers", BATCH, 422, "`rule-violation` `batch.invalid`: `row.extra-cells`", _batch(_csv_rows([HEADERS, [*_cells(1), "surplus"]]), "text/csv"), names="column"),
    Case("csv-ragged-short", "a row with fewer cells than headers", BATCH, 422, "`rule-violation` `batch.invalid`: `field.required` per missing cell", _batch(_csv_rows([HEADERS, _cells(1)[:3]]), "text/csv"), names="required"),
    Case("csv-not-text", "bytes valid in neither UTF-8 nor GB18030", BATCH, 400, "`batch.encoding`: expected UTF-8 or GBK", _batch(b"\x80\x80\x80\xff\xfe\xfd", "text/csv")),
    Case("csv-nul", "CSV with a NUL byte", BATCH, 400, "`batch.malformed`: not a text file", _batch(_csv_rows([HEADERS, _cells(1, name="张\x00三")]), "text/csv"), names="NUL"),
    Case("csv-unclosed-quote", "an unclosed quote", BATCH, 400, "`batch.malformed`: names the line", _batch(_csv_rows([HEADERS]) + b'"abc,def\r\n', "text/csv"), names="line"),
    # XLSX
    Case("xlsx-not-zip", "\u201cXLSX\u201d that is not a zip", BATCH, 400, "`batch.malformed`: cannot read the XLSX file", _batch(b"this is not a workbook", XLSX), names="XLSX"),
    Case("xlsx-zip-not-workbook", "a zip with no workbook inside", BATCH, 400, "`batch.malformed`: cannot read the XLSX file", _batch(_zip_of({"hello.txt": b"hi"}), XLSX)),
    Case("xlsx-legacy", "a legacy `.xls` (OLE2) file", BATCH, 415, "`batch.format`: save it as .xlsx", _batch(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, XLSX), names=".xlsx"),
    Case("xlsx-bomb", "a workbook inflating to 100 MiB", BATCH, 413, "`batch.too-large`: refused before inflating", _batch(_xlsx_bomb, XLSX), names="uncompressed"),
    Case("xlsx-too-many-rows", f"a workbook of {MAX_ROWS + 1} rows", BATCH, 413, "`batch.too-many-rows`: split the batch", _batch(lambda: as_xlsx([record(n) for n in range(MAX_ROWS + 1)]), XLSX)),
    Case("xlsx-hyperlink", "a cell `=HYPERLINK(\"http://evil\",\"x\")`", BATCH, 422, "`rule-violation` `batch.invalid`: `cell.formula`", _batch(lambda: _xlsx_with("A2", '=HYPERLINK("http://evil","x")'), XLSX), names="cell.formula"),
    Case("xlsx-at-sum", "a cell `@SUM(1+1)*cmd|' /C calc'!A0`", BATCH, 422, "`rule-violation` `batch.invalid`: `cell.formula`", _batch(lambda: _xlsx_with("C2", "@SUM(1+1)*cmd|' /C calc'!A0"), XLSX), names="cell.formula"),
    # Huge bodies
    Case("huge-batch", f"a batch body of {MAX_BYTES + 1} bytes", BATCH, 413, "`too-large`: over `CELEDGER_MAX_BATCH_BYTES`", _batch(b" " * (MAX_BYTES + 1), "application/json")),
    Case("huge-registry", f"a JSON body of {MAX_BYTES + 1} bytes", UNITS, 413, "`too-large`: over the request body limit", _post("/api/v1/registry/units", b" " * (MAX_BYTES + 1))),
    Case("too-many-records", f"{MAX_ROWS + 1} JSON records", BATCH, 413, "`batch.too-many-rows`: over `CELEDGER_MAX_BATCH_ROWS`", _json_batch(*[record(n) for n in range(MAX_ROWS + 1)])),
    # Deep nesting
    Case("deep-batch", "10,000 levels of `[`", BATCH, 400, "`batch.malformed`: nesting deeper than the parser supports", _batch(_deep(10_000), "application/json"), names="deeper"),
    Case("deep-registry", "10,000 levels of `[`", UNITS, 400, "`bad-request`: nesting deeper than the parser supports", _post("/api/v1/registry/units", _deep(10_000)), names="deeper"),
    Case("deep-policy", "10,000 levels of `[`", "POST /api/v1/registry/policies", 400, "`malformed`: nesting deeper than the parser supports", _post("/api/v1/registry/policies", _deep(10_000)), names="deeper"),
    Case("deep-match", "10,000 levels of `{\"a\":`", "POST /api/v1/verify/{token}/match", 400, "`bad-request`: nesting deeper than the parser supports", lambda env: env.client.post(f"/api/v1/verify/{env.token}/match", content=b'{"a":' * 10_000 + b"1" + b"}" * 10_000, headers={"Content-Type": "application/json"}), names="deeper"),
    # Invalid UTF-8 and NUL
    Case("utf8-batch", "JSON with invalid UTF-8 bytes", BATCH, 400, "`batch.malformed`: not valid JSON", _batch(b'{"batch_key": "k", "records": [{"name": "\xff\xfe"}]}', "application/json"), names="JSON"),
    Case("utf8-registry", "JSON with invalid UTF-8 bytes", UNITS, 400, "`bad-request`: the body is not UTF-8", _post("/api/v1/registry/units", b'{"jurisdiction": "CN-SC", "title": "\xff\xfe"}'), names="UTF-8"),
    Case("utf8-path", "`%FF%FE` in a path parameter", "GET /api/v1/completions/{record}", 404, "`not-found` `record.unknown`: no such record", _get("/api/v1/completions/%FF%FE", role="base:1")),
    Case("nul-batch-name", "a NUL inside a name", BATCH, 422, "`rule-violation` `batch.invalid`: `field.control`", _json_batch(record(1, name="张\u0000三")), names="name"),
    Case("nul-registry", "a NUL inside a unit title", UNITS, 400, "`bad-request`: `title` holds a NUL", _post("/api/v1/registry/units", json.dumps({"jurisdiction": "CN-SC", "title": "单位\u0000"}).encode()), names="title"),
    # SQL injection
    Case("sqli-batch-fields", f"`{SQLI}` in every text field of a record", BATCH, 422, "`rule-violation` `batch.invalid`: one error per field", _json_batch(record(1, **dict.fromkeys(TEXT_FIELDS, SQLI))), names="id_number"),
    Case("sqli-path", f"`{SQLI}` as a record id", "GET /api/v1/completions/{record}", 404, "`not-found` `record.unknown`: no such record", _get(f"/api/v1/completions/{SQLI}", role="base:1")),
    Case("sqli-query", f"`{SQLI}` as `?jurisdiction=`", "GET /api/v1/directory/bases", 200, "no bases", _get(f"/api/v1/directory/bases?jurisdiction={SQLI}")),
    Case("sqli-policy-code", f"`{SQLI}` as a jurisdiction code", "GET /api/v1/directory/jurisdictions/{code}/policy", 404, "`not-found` `jurisdiction.exists`: not a jurisdiction code", _get(f"/api/v1/directory/jurisdictions/{SQLI}/policy")),
    Case("sqli-registry", f"`{SQLI}` as a jurisdiction code", "POST /api/v1/registry/jurisdictions", 400, "`bad-request`: `code` does not match the pattern", _post("/api/v1/registry/jurisdictions", json.dumps({"code": SQLI}).encode()), names="code"),
    Case("sqli-sign-in", f"`{SQLI}` as an ID number and password", "POST /api/v1/me/sign-in", 400, "`bad-request`: `id_number` is not an ID number", _post("/api/v1/me/sign-in", json.dumps({"id_number": SQLI, "password": SQLI}).encode(), role=None), names="id_number"),
    Case("sqli-token", f"`{SQLI}` as a QR token", "GET /api/v1/verify/{token}", 200, "verdict `unknown`", _token(lambda t: SQLI)),
    # Formula injection (what is stored is exported inert: test_csv_export_neutralises_formulas)
    Case("formula-name", "a name `=HYPERLINK(\"http://evil\")`", BATCH, 422, "`rule-violation` `batch.invalid`: `cell.formula`", _json_batch(record(1, name='=HYPERLINK("http://evil")')), names="cell.formula"),
    Case("formula-employer", "an employer `@SUM(A1)`", BATCH, 422, "`rule-violation` `batch.invalid`: `cell.formula`", _json_batch(record(1, employer="@SUM(A1)")), names="cell.formula"),
    Case("formula-plus", "an employer `+cmd|' /C calc'!A0`", BATCH, 422, "`rule-violation` `batch.invalid`: `cell.formula`", _json_batch(record(1, employer="+cmd|' /C calc'!A0")), names="cell.formula"),
    Case("formula-tab", "an employer `\\t=1+1`", BATCH, 422, "`rule-violation` `batch.invalid`: the employer cell", _json_batch(record(1, employer="\t=1+1")), names="employer"),
    # Path traversal in tile paths
    Case("tile-dotdot", "`/log/tile/../../etc/passwd` (sent raw)", "GET /log/tile/{path}", 404, "`no-such-tile`: not a tile path", _raw_get(b"/log/tile/../../etc/passwd")),
    Case("tile-encoded", "`/log/tile/%2e%2e/%2e%2e/etc/passwd`", "GET /log/tile/{path}", 404, "`no-such-tile`: not a tile path", _get("/log/tile/%2e%2e/%2e%2e/etc/passwd")),
    Case("tile-encoded-slash", "`/log/tile/0/..%2F..%2Fetc%2Fpasswd`", "GET /log/tile/{path}", 404, "`no-such-tile`: not a tile path", _get("/log/tile/0/..%2F..%2Fetc%2Fpasswd")),
    Case("tile-absolute", "`/log/tile//etc/passwd`", "GET /log/tile/{path}", 404, "`no-such-tile`: not a tile path", _get("/log/tile//etc/passwd")),
    Case("tile-entries-dotdot", "`/log/tile/entries/../../../app.py` (sent raw)", "GET /log/tile/{path}", 404, "`no-such-tile`: not a tile path", _raw_get(b"/log/tile/entries/../../../app.py")),
    # QR tokens
    Case("token-bitflip", "a genuine token with one character changed", "GET /api/v1/verify/{token}", 200, "verdict `forged`", _token(lambda t: _flip(t, 40))),
    Case("token-truncated", "a genuine token missing its last 8 characters", "GET /api/v1/verify/{token}", 200, "verdict `unknown`", _token(lambda t: t[:-8])),
    Case("token-forged", "a well-formed token signed by nobody", "GET /api/v1/verify/{token}", 200, "verdict `forged`", _token(lambda t: t[:100] + "A" * (len(t) - 100))),
    Case("token-overlong", "a genuine token repeated to 10,000 characters", "GET /api/v1/verify/{token}", 200, "verdict `unknown`", _token(lambda t: (t * 70)[:10_000])),
    Case("token-page-bitflip", "a genuine token with one character changed", "GET /V/{token}", 200, "page, verdict `forged`", _token(lambda t: _flip(t, 40), page=True)),
    Case("token-page-truncated", "a genuine token missing its last 8 characters", "GET /V/{token}", 200, "page, verdict `unknown`", _token(lambda t: t[:-8], page=True)),
    # Forged credentials and oversized headers
    Case("key-forged", "`Bearer cek_` + 43 random characters", "GET /api/v1/registry/whoami", 401, "`unauthenticated`: unknown key", _with_auth("/api/v1/registry/whoami", lambda env: "Bearer cek_" + "x" * 43), names="unknown"),
    Case("key-truncated", "base 1's key minus its last character", "GET /api/v1/registry/whoami", 401, "`unauthenticated`: unknown key", _with_auth("/api/v1/registry/whoami", lambda env: "Bearer " + env.base_key[:-1])),
    Case("key-bitflip", "base 1's key with one character changed", "GET /api/v1/registry/whoami", 401, "`unauthenticated`: unknown key", _with_auth("/api/v1/registry/whoami", lambda env: "Bearer " + _flip(env.base_key, 10))),
    Case("key-basic", "`Basic` credentials", "GET /api/v1/registry/whoami", 401, "`unauthenticated`: expected `Bearer cek_…`", _with_auth("/api/v1/registry/whoami", lambda env: "Basic " + base64.b64encode(b"admin:admin").decode()), names="Bearer"),
    Case("key-as-session", "an API key where a session is expected", "GET /api/v1/me", 401, "`unauthenticated`: not a session", _with_auth("/api/v1/me", lambda env: "Bearer " + env.base_key)),
    Case("session-forged", "`Bearer ses_` + 43 random characters", "GET /api/v1/me", 401, "`unauthenticated`: not a session", _with_auth("/api/v1/me", lambda env: "Bearer ses_" + "x" * 43), names="session"),
    Case("header-huge-auth", "a 64 KiB `Authorization` header", "GET /api/v1/registry/whoami", 401, "`unauthenticated`: refused before hashing", _with_auth("/api/v1/registry/whoami", lambda env: "Bearer cek_" + "x" * 65536)),
    Case("header-huge-key", "a 64 KiB `Idempotency-Key`", BATCH, 400, "`batch.key`: expected 1–128 printable characters", lambda env: env.client.post(DRY, json={"records": [record(1)]}, headers={**env.keys["base:1"], "Idempotency-Key": "k" * 65536}), names="printable"),
    Case("header-signature-latin1", "`Batch-Signature` with non-ASCII bytes", BATCH, 400, "`batch.signature-header`: `sig` is not base64", _signature("kid=bk_1; sig=\u00e9\u00e9\u00e9\u00e9".encode("latin-1")), names="base64"),
    Case("multipart-no-file", "a multipart upload without a `file` part", BATCH, 400, "`batch.malformed`: expected a `file` part", _multipart_without_file, names="file"),
]
# fmt: on


def _problem_ok(r: Any) -> dict[str, Any]:
    assert r.headers["content-type"].startswith(PROBLEM), r.text
    body: dict[str, Any] = r.json()
    assert (
        body["status"] == r.status_code and body["detail"] and body["type"].endswith(body["code"])
    ), body
    return body


def _check_answer(case: Case, r: Any) -> None:
    assert r.status_code == case.status, (
        f"{case.id}: expected {case.status}, found {r.status_code}: {r.text[:500]}"
    )
    if case.status >= 400:
        body = _problem_ok(r)
        code, *more = case.answer.split("`")[1::2]
        assert body["code"] == code, (
            f"{case.id}: expected problem {code}, found {body['code']}: {body}"
        )
        if "rule" in body:  # a domain refusal: the rule that refused it is named second
            assert more and body["rule"] == more[0], f"{case.id}: rule {body['rule']}: {body}"
        if case.names is not None:
            assert case.names in json.dumps(body, ensure_ascii=False), (
                f"{case.id}: the problem does not name {case.names!r}: {body}"
            )
    elif "verdict" in case.answer:
        verdict = case.answer.split("`")[1]
        if "page" in case.answer:
            found = r.text.partition('data-verdict="')[2].partition('"')[0]
        else:
            found = r.json()["verdict"]
        assert found == verdict, f"{case.id}: expected verdict {verdict}, found {found}"
    elif "dry run" in case.input or "dry run" in case.answer:
        receipt = r.json()
        assert receipt["dry_run"] is True and receipt["valid"] is True, receipt
        assert receipt["count"] == 1 and len(receipt["digest"]) == 64, receipt
    else:  # the one query: an injected filter matches nothing
        assert r.json() == {"bases": []}, f"{case.id}: {r.json()}"


@pytest.fixture
def env(client: Any, ctx: Any) -> Env:
    keys = world(ctx)
    r = client.post(BATCHES, json=batch("seed", record(1)), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    rid = r.json()["records"][0]["record"]
    r = client.post(
        f"/api/v1/completions/{rid}/certificate", params={"format": "json"}, headers=keys["base:1"]
    )
    assert r.status_code == 201, r.text
    token = r.json()["verify_url"].rsplit("/", 1)[1]
    base_key = keys["base:1"]["Authorization"].removeprefix("Bearer ")
    return Env(client, keys, base_key, rid, token)


def test_bad_inputs(env: Env, ctx: Any, figure: Any) -> None:
    failures = []
    for case in CASES:
        before = written(ctx)
        try:
            r = case.send(env)
            assert r.status_code < 500, f"{case.id}: server error {r.status_code}: {r.text[:300]}"
            _check_answer(case, r)
            assert written(ctx) == before, f"{case.id}: something was written"
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0][:400])
    assert not failures, "\n".join(failures)
    db = "postgresql" if ctx.settings.database_url.startswith("postgresql") else "sqlite"
    figure(f"bad-inputs[{db}]: {len(CASES)} cases, 0 server errors, 0 writes")


def test_cases_are_distinct() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({(c.input, c.endpoint) for c in CASES}) == len(CASES)


def test_the_document_lists_every_case() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [row for row in [c.row() for c in CASES] + EXPORT_ROWS if row not in text]
    assert not missing, "docs/bad-inputs.md lacks (or disagrees on) these rows:\n" + "\n".join(
        missing
    )
    rows = [
        line for line in text.splitlines() if line.startswith("| ") and "`" in line.split("|")[2]
    ]
    assert len(rows) == len(CASES) + len(EXPORT_ROWS), (
        "docs/bad-inputs.md lists rows no case checks"
    )


# --------------------------------------------------------------------------------------------
# What is stored is exported inert


EXPORT_ROWS = [
    '| a base name `=HYPERLINK("http://evil","x")` | `GET /api/v1/bases/{base}/execution-summary?format=csv` | 200, the cell starts with `\'` (text, not a formula) |',
]


def test_csv_export_neutralises_formulas(env: Env, ctx: Any) -> None:
    name = '=HYPERLINK("http://evil","x")'
    r = env.client.post(
        "/api/v1/registry/bases/1/changes",
        json={"reason": "名称变更", "title": name},
        headers=env.keys["base:1"],
    )
    assert r.status_code == 201, r.text
    directory = env.client.get("/api/v1/directory/bases/1").json()
    assert directory["title"] == name  # stored as given: it is data
    r = env.client.get(
        "/api/v1/bases/1/execution-summary?year=2026&format=csv", headers=env.keys["base:1"]
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf") and not r.content.startswith(b"\xef\xbb\xbf" * 2)
    cells = [c for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig"))) for c in row]
    assert any(name in c for c in cells), cells
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert not dangerous, f"cells a spreadsheet would run as formulas: {dangerous}"
    assert f"'{name} (base:1)" in cells
