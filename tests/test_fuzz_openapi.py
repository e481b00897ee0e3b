"""Fuzzing the served OpenAPI document with schemathesis, on SQLite and PostgreSQL.

Every operation of ``/schema/openapi.json`` is run twice: anonymously, and with a credential of
the role it is meant for (an authority, a management unit or a base key; a professional's
session, fresh for every example, so that signing out cannot starve the others).  Examples
come from the document (valid and invalid inputs alike) and, for operations with path
parameters, also with the parameters set to things that exist (base 1, its approved plan, a
record, its batch, a real QR token, a share link), so that handlers are reached beyond "404".

Every response must pass: no server error, the status code and the media type are declared,
and the body matches the declared schema (an error: an RFC 9457 problem).  A failure is a bug
in the handler or in the document (``api/apidoc.py``), never in this test.

The generation is derandomised (``derandomize=True``): CI fuzzes the same examples every run.
The batch intake gets a second, targeted strategy (``test_batch_intake_fuzz``): records close
to valid with one field replaced by something hostile, sent as JSON, CSV, XLSX or a multipart
upload — random bytes alone rarely get past the header row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from api.app import create_app
from ledger.accounts.models import Account
from ledger.accounts.services import start_session
from ledger.completions.intake import COLUMNS
from ledger.registry.models import Plan
from tests.completions_support import (
    BATCHES,
    XLSX,
    batch,
    id_number,
    record,
    world,
    written,
)
from tests.test_accounts_support import PASSWORD, settings  # noqa: F401 - cheap argon2
from tests.test_registry_support import bearer

pytestmark = pytest.mark.slow

#: Examples per operation and pass; the whole document on one database stays under ~3 min.
EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations that end or revoke what the others use run last.
_LAST = ("/revoke", "/reject", "/revocation", "/erasure", "/sign-out")


@dataclass
class World:
    """The seeded service: credentials per role and things that exist, by path parameter."""

    keys: dict[str, dict[str, str]]
    known: dict[str, Any]
    holder: Callable[[], dict[str, str]]


@dataclass
class Tally:
    examples: int = 0
    operations: int = 0
    failures: list[str] = field(default_factory=list)
    #: (operation, authenticated) → the statuses it answered.
    statuses: dict[tuple[str, bool], set[int]] = field(default_factory=dict)


def _db(ctx: Any) -> str:
    return "postgresql" if ctx.settings.database_url.startswith("postgresql") else "sqlite"


def _seed(client: TestClient[Any], ctx: Any) -> World:
    keys = world(ctx)
    r = client.post(BATCHES, json=batch("fuzz-seed", record(1), record(2)), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    receipt = r.json()
    record_id = receipt["records"][0]["record"]
    r = client.post(
        f"/api/v1/completions/{record_id}/certificate",
        params={"format": "json"},
        headers=keys["base:1"],
    )
    assert r.status_code == 201, r.text
    qr_token = r.json()["verify_url"].rsplit("/", 1)[1]
    r = client.post(
        "/api/v1/activation-codes", json={"id_number": id_number(1)}, headers=keys["base:1"]
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/me/activate",
        json={"id_number": id_number(1), "code": r.json()["code"], "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/me/shares",
        json={"scope": "record", "record": record_id, "days": 30},
        headers=bearer(r.json()["token"]),
    )
    assert r.status_code == 201, r.text
    share = r.json()
    with ctx.db.reader() as s:
        plan_id = s.scalar(select(Plan.id).where(Plan.base_id == 1).order_by(Plan.id.desc()))
        account_id = s.scalar(select(Account.id))
    assert plan_id is not None and account_id is not None

    def holder() -> dict[str, str]:
        # A session straight from the domain: the fuzzed sign-in and password routes may have
        # locked this ID number or this client out, which is theirs to do.
        from api.routes.holder import account_rules

        with ctx.db.writer() as s:
            issued = start_session(
                s, account_id, "password", account_rules(ctx.settings), datetime.now(UTC)
            )
        return bearer(issued.token)

    known = {
        "base": 1,
        "base_id": 1,
        "plan_id": plan_id,
        "record": record_id,
        "batch": receipt["batch"],
        "share": share["id"],
        "code": "CN-SC",
        "version": 1,
        "year": 2026,
        "index": 0,
        "qr": qr_token,
        "share_token": share["url"].rsplit("/", 1)[1],
    }
    return World(keys, known, holder)


def _role(path: str) -> str:
    if path.startswith("/api/v1/me"):
        return "holder"
    if path.startswith("/api/v1/registry/plans"):
        return "unit:1"  # base 1's management unit
    if path.startswith("/api/v1/registry"):
        return "authority:CN-SC"
    if path.endswith("/revocation") or path.startswith("/api/v1/transcripts"):
        return "authority:CN-SC-PZH"  # the authority over base 1
    return "base:1"  # base routes; on public routes an extra key must change nothing


def _known_paths(operation: Any, w: World) -> dict[str, Any]:
    names = [p.name for p in operation.path_parameters]
    found = {n: w.known[n] for n in names if n in w.known}
    if "token" in names:
        found["token"] = w.known["share_token" if "/shares/" in operation.path else "qr"]
    return found


def _order(operation: Any) -> tuple[bool, bool, str]:
    path = operation.path
    return (operation.method.upper() != "GET", any(x in path for x in _LAST), path)


def _fuzz_operation(operation: Any, w: World, tally: Tally) -> None:
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    known = _known_paths(operation, w)
    if known:
        strategies.append(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=known)
        )
    role = _role(operation.path)
    for authenticated in (False, True):
        _fuzz_pass(operation, st.one_of(strategies), role, authenticated, w, tally)


def _fuzz_pass(
    operation: Any, cases: Any, role: str, authenticated: bool, w: World, tally: Tally
) -> None:
    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases)
    def run(case: Any) -> None:
        tally.examples += 1
        headers: dict[str, str] = {}
        if authenticated:
            headers = w.holder() if role == "holder" else w.keys[role]
        response = case.call(headers=headers)
        tally.statuses.setdefault((operation.label, authenticated), set()).add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            who = "authenticated" if authenticated else "anonymous"
            for failure in group.exceptions:
                tally.failures.append(
                    f"{operation.label} ({who}) → {response.status_code}: "
                    f"{type(failure).__name__}: {str(failure)[:300]}\n"
                    f"    body={case.body!r:.300} path={case.path_parameters} "
                    f"query={case.query}"
                )

    run()


def test_openapi_document_fuzzed(settings: Any, ctx: Any, figure: Any) -> None:  # noqa: F811
    app = create_app(settings, context=ctx)
    # Seed, then let the client go: schemathesis runs the app's lifespan itself, and two at
    # once never shut down.
    with TestClient(app=app) as client:
        w = _seed(client, ctx)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
    tally = Tally()
    for operation in operations:
        tally.operations += 1
        _fuzz_operation(operation, w, tally)
    assert tally.operations >= 70, f"expected the whole API, found {tally.operations} operations"
    assert tally.examples >= tally.operations * 2
    assert not tally.failures, f"{len(tally.failures)} failures:\n" + "\n".join(tally.failures[:40])
    # The credentials must have been accepted, or the second pass fuzzed nothing but the 401.
    guarded = {op for (op, auth), seen in tally.statuses.items() if not auth and 401 in seen}
    refused = sorted(op for op in guarded if tally.statuses[(op, True)] <= {401})
    assert len(guarded) >= 40 and not refused, f"only 401 with a credential: {refused}"
    reached = {op for (op, auth), seen in tally.statuses.items() if min(seen) < 300}
    figure(
        f"fuzz[{_db(ctx)}]: {tally.operations} operations × {{anonymous, authenticated}}, "
        f"{tally.examples} examples ({len(reached)} operations answered 2xx), "
        f"0 server errors, 0 schema violations"
    )


# --------------------------------------------------------------------------------------------
# The batch intake, with a strategy that knows what a batch looks like

_HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "' OR 1=1 --",
            '=HYPERLINK("http://x")',
            "@SUM(A1)",
            "+1",
            "-1",
            "\x00",
            "９",
            "1e309",
            "NaN",
            "2026-02-30",
            "99999999",
            "\u202e",
            "𠀀" * 50,
        ]
    ),
    st.integers(min_value=-(2**63), max_value=2**63).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
_FIELDS = [c.key for c in COLUMNS]


@st.composite
def _batches(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    rows = []
    for n in range(draw(st.integers(min_value=1, max_value=3))):
        row: dict[str, Any] = record(10 + n)
        for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=3, unique=True)):
            row[name] = draw(st.one_of(st.none(), _HOSTILE))
        rows.append({k: v for k, v in row.items() if v is not None})
    return draw(st.sampled_from(["json", "csv", "xlsx", "multipart"])), rows


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([c.header for c in COLUMNS])
    for r in rows:
        w.writerow([r.get(c.key, "") for c in COLUMNS])
    return out.getvalue().encode("utf-8", "surrogatepass")


def _xlsx(rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.utils.exceptions import IllegalCharacterError

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append([c.header for c in COLUMNS])
    for r in rows:
        try:
            sheet.append([r.get(c.key) for c in COLUMNS])
        except IllegalCharacterError:  # a control character Excel itself cannot store
            sheet.append([str(r.get(c.key)).encode("unicode_escape").decode() for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_batch_intake_fuzz(client: Any, ctx: Any, figure: Any) -> None:
    keys = world(ctx)
    seen: dict[int, int] = {}

    @hypothesis_settings(
        max_examples=40,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(_batches(), st.integers(min_value=0, max_value=10**9))
    def run(sample: tuple[str, list[dict[str, Any]]], n: int) -> None:
        how, rows = sample
        before = written(ctx)
        headers = {**keys["base:1"], "Idempotency-Key": f"fuzz-{n}"}
        if how == "json":
            body = json.dumps(batch(f"fuzz-{n}", *rows), ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            )
            r = client.post(
                BATCHES, content=body, headers={**headers, "Content-Type": "application/json"}
            )
        elif how == "csv":
            r = client.post(
                BATCHES, content=_csv(rows), headers={**headers, "Content-Type": "text/csv"}
            )
        elif how == "xlsx":
            r = client.post(BATCHES, content=_xlsx(rows), headers={**headers, "Content-Type": XLSX})
        else:
            r = client.post(
                BATCHES,
                files={"file": ("batch.csv", _csv(rows), "text/csv")},
                data={"batch_key": f"fuzz-{n}"},
                headers=keys["base:1"],
            )
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code in (200, 201, 400, 409, 413, 415, 422), r.text
        if r.status_code in (200, 201):
            return
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        problem = r.json()
        assert problem["status"] == r.status_code and problem["detail"], problem
        if r.status_code == 422 and "errors" in problem:
            assert all({"row", "field", "rule", "message"} <= set(e) for e in problem["errors"])
        assert written(ctx) == before, "a refused batch wrote something"

    run()
    total = sum(seen.values())
    refused = total - seen.get(200, 0) - seen.get(201, 0)
    assert refused > 0 and total >= 40
    figure(
        f"fuzz-batches[{_db(ctx)}]: {total} hostile batches (JSON, CSV, XLSX, multipart), "
        f"{refused} refused with nothing written, 0 server errors"
    )
