"""The authorisation matrix of the whole HTTP surface: every role × every route, on both DBs.

The routes are read from the app itself (``app.routes``), so a route added without a row in
``CASES`` fails ``test_every_route_has_a_row``: the matrix cannot silently stop covering
"every endpoint".  (OPTIONS, which Litestar answers for every path with the allowed methods and
nothing else, is the only method left out.)

Roles are every kind of caller the service knows: nobody, two signed-in professionals, the
clerks of a recognised base, of a base under rectification (整改, the nearest thing to
"suspended"), of a revoked base and of a base in another jurisdiction, two management units,
the city, province and national (人社部) authorities, an authority of an unrelated province, and
a revoked API key.  There is no witness *role*: ``/witness/add-checkpoint`` is authenticated by
the log signature inside its body (c2sp.org/tlog-witness), so every role may post a signed one.

Each call carries a valid request, against a target in a state where the act could succeed (a
fresh applied base to recognise, a fresh record to revoke, …), so an "allow" is really a 2xx and
a refusal is really the permission check, never a 409/422 in disguise.  Denied roles share one
fresh target per route; every allowed role gets its own.  A refused write must append nothing
to the ledger.  404 is expected where the product answers "not found" on purpose instead of
403, so as not to reveal that something exists: a professional asking for another's record or
share link, a base or an authority asking for an activation code for someone it has no records
of (the same answer as for an unknown ID number).  The professional's HTML pages (``/me``, a
cookie session and a form token on every POST) answer "no session" with a redirect to the
sign-in form; API keys mean nothing to them.  Routes that end the caller's own session or data
(sign-out, password, erasure) are called by each professional role with a throwaway
professional's fresh session, so that the two professionals stay signed in for the rest.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.keystore import write_secret
from ledger.note import NoteSigner
from ledger.registry.demo import DEMO_YEAR
from ledger.storage.log import Log
from ledger.witness import format_add_checkpoint
from ledger.witness_models import record_cosignature, witnessed_state
from tests.completions_support import BATCHES, batch, id_number, record, world
from tests.test_accounts_support import PASSWORD
from tests.test_registry_support import API, application, bearer, contact, log_size, plan_class

ORIGIN: Final = "test.celedger.example/log"

# -- roles -------------------------------------------------------------------------------------

ANON = "anonymous"
H1 = "holder"  # professional 1, signed in
H2 = "other-holder"  # professional 2, signed in
B1 = "base:1"  # 示例学院: recognised, Panzhihua, managed by unit 1
B2 = "base:2"  # 示例中心医院: under rectification, Panzhihua, unit 2
B3 = "base:3"  # revoked; a key issued to it still authenticates (whoami), nothing more
B5 = "base:5"  # a national base, managed by unit 3
U1 = "unit:1"  # manages bases 1, 3, 4
U2 = "unit:2"  # manages base 2
CITY = "authority:CN-SC-PZH"
PROV = "authority:CN-SC"
NAT = "authority:CN"
GD = "authority:CN-GD"  # an unrelated province
REVOKED = "revoked-key"  # a key of base 1, revoked

ROLES: Final = (ANON, H1, H2, B1, B2, B3, B5, U1, U2, CITY, PROV, NAT, GD, REVOKED)
KEYED: Final = (B1, B2, B3, B5, U1, U2, CITY, PROV, NAT, GD)
HOLDERS: Final = (H1, H2)
PZH_AUTHORITIES: Final = (CITY, PROV, NAT)
#: completion.read over base 1: the base, its management unit, authorities over Panzhihua.
READERS_OF_BASE1: Final = (B1, U1, *PZH_AUTHORITIES)

ALLOW: Final = "allow"
#: The professional's pages answer "no session" with a 303 to the sign-in form.
SIGN_IN: Final = "sign-in"
Outcome = str | int  # "allow" (2xx, or a redirect elsewhere than sign-in), "sign-in", a status


def public() -> dict[str, Outcome]:
    return dict.fromkeys(ROLES, ALLOW)


def keyed(*allowed: str, not_found: tuple[str, ...] = ()) -> dict[str, Outcome]:
    """An API-key route: the listed principals allowed, 404 for ``not_found``, 403 for every
    other valid key, 401 for no key, a session token or a revoked key."""
    out: dict[str, Outcome] = dict.fromkeys((ANON, *HOLDERS, REVOKED), 401)
    for r in KEYED:
        out[r] = ALLOW if r in allowed else 404 if r in not_found else 403
    return out


def session(*allowed: str, not_found: tuple[str, ...] = ()) -> dict[str, Outcome]:
    """A professional's route (``Bearer ses_…``): API keys and nobody get 401."""
    out: dict[str, Outcome] = dict.fromkeys(ROLES, 401)
    for r in HOLDERS:
        out[r] = ALLOW if r in allowed else 404 if r in not_found else 403
    return out


def page(*allowed: str, not_found: tuple[str, ...] = ()) -> dict[str, Outcome]:
    """A professional's page (cookie session): without one, a redirect to the sign-in form."""
    out: dict[str, Outcome] = dict.fromkeys(ROLES, SIGN_IN)
    for r in HOLDERS:
        out[r] = ALLOW if r in allowed else 404 if r in not_found else 403
    return out


# -- requests ----------------------------------------------------------------------------------


@dataclass
class Req:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    data: dict[str, str] | None = None
    files: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Replaces the role's own credentials (a page's cookie, a throwaway professional's session).
    auth: dict[str, str] | None = None


@dataclass
class World:
    client: Any
    ctx: Any
    auth: dict[str, dict[str, str]]
    record: str  # professional 1's materials record at base 1
    batch: str  # the batch that posted it
    share: str  # professional 1's share link id
    share_token: str
    verify_token: str
    pdf: bytes  # a completion certificate of ``record``
    _n: itertools.count[int] = field(default_factory=lambda: itertools.count(300))
    _years: itertools.count[int] = field(default_factory=lambda: itertools.count(DEMO_YEAR + 1))

    def n(self) -> int:
        return next(self._n)

    def ok(self, method: str, path: str, who: str, **kw: Any) -> Any:
        r = self.client.request(method, path, headers=self.auth[who], **kw)
        assert 200 <= r.status_code < 300, f"setup {method} {path} as {who}: {r.text}"
        return r.json() if "json" in r.headers.get("content-type", "") else r

    # Fresh targets, each in the state in which the act under test can succeed.

    def fresh_record(self) -> str:
        n = self.n()
        body = batch(f"fresh-{n}", record(n, id_number=id_number(n, birth="19900101")))
        return str(self.ok("POST", BATCHES, B1, json=body)["records"][0]["record"])

    def applied_base(self) -> int:
        return int(
            self.ok("POST", f"{API}/bases", U1, json=application(self.n(), "CN-SC-PZH", 1))["base"]
        )

    def recognised_base(self) -> int:
        b = self.applied_base()
        self.ok("POST", f"{API}/bases/{b}/recognise", CITY, json={"reason": "评审通过"})
        return b

    def rectifying_base(self) -> int:
        b = self.recognised_base()
        self.ok("POST", f"{API}/bases/{b}/rectification", CITY, json={"reason": "限期整改"})
        return b

    def submitted_plan(self) -> int:
        year = next(self._years)
        body = {"year": year, "classes": [plan_class("M-01", year)]}
        return int(self.ok("POST", f"{API}/bases/1/plans", B1, json=body)["plan"])

    def approved_plan(self) -> int:
        plan = self.submitted_plan()
        self.ok("POST", f"{API}/plans/{plan}/approve", U1, json={})
        return plan

    def spare_key(self) -> str:
        body = {"principal": B1, "label": f"spare {self.n()}"}
        return str(self.ok("POST", f"{API}/keys", NAT, json=body)["key_id"])

    def policy(self) -> bytes:
        current = self.ok("GET", "/api/v1/directory/jurisdictions/CN-SC-PZH/policy", ANON)
        doc = json.loads(resources.files("ledger.policies").joinpath("panzhihua.json").read_bytes())
        doc["version"] = max(v["version"] for v in current["versions"]) + 1
        return json.dumps(doc, ensure_ascii=False).encode()

    def own_share(self) -> str:
        body = {"scope": "record", "record": self.record, "days": 30}
        return str(self.ok("POST", "/api/v1/me/shares", H1, json=body)["id"])

    def activation(self) -> dict[str, str]:
        # Professional 3 is activated again and again: each call resets only that account.
        code = self.ok("POST", "/api/v1/activation-codes", B1, json={"id_number": id_number(3)})
        return {"id_number": id_number(3), "code": code["code"], "password": PASSWORD}

    def throwaway_holder(self) -> dict[str, str]:
        """A fresh professional with a record, activated and signed in: for the routes that end
        the caller's own sessions or data (the role is "a signed-in professional")."""
        n = self.n()
        number = id_number(n, birth="19910202")
        body = batch(f"throwaway-{n}", record(n, id_number=number))
        self.ok("POST", BATCHES, B1, json=body)
        code = self.ok("POST", "/api/v1/activation-codes", B1, json={"id_number": number})
        r = self.client.post(
            "/api/v1/me/activate",
            json={"id_number": number, "code": code["code"], "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        return bearer(r.json()["token"])

    def cookie(self, role: str, token: str | None = None) -> dict[str, str]:
        """What a browser sends to the pages: a professional's session cookie (the same
        ``ses_…`` token); anyone else sends only what they have, which the pages ignore."""
        if token is None and role not in HOLDERS:
            return self.auth[role]
        token = token or self.auth[role]["Authorization"].removeprefix("Bearer ")
        return {"Cookie": f"celedger_session={token}"}

    def csrf(self, cookie: dict[str, str]) -> str:
        """The form token of a signed-in page (an HMAC of the session)."""
        if "Cookie" not in cookie:
            return ""  # refused before any form is read
        r = self.client.get("/me", headers=cookie)
        assert r.status_code == 200, r.text
        found = _CSRF.search(r.text)
        assert found is not None, "no form token on /me"
        return found.group(1)

    def page_post(
        self, role: str, path: str, form: dict[str, Any], *, throwaway: bool = False
    ) -> Req:
        """A form as a signed-in browser posts it; ``throwaway``: a professional role posts it
        with a throwaway professional's session (the page ends the caller's session)."""
        token = self.throwaway_token() if throwaway and role in HOLDERS else None
        cookie = self.cookie(role, token)
        return Req("POST", path, data={**form, "csrf": self.csrf(cookie)}, auth=cookie)

    def pre_session_form(self, path: str, form: dict[str, Any]) -> Req:
        """A sign-in or activation form as a fresh browser posts it: the form cookie it was
        given with the form, and the token that goes with it (double submit)."""
        r = self.client.get(path)
        cookie = _FORM_COOKIE.search(r.headers.get("set-cookie", ""))
        found = _CSRF.search(r.text)
        assert r.status_code == 200 and cookie and found, f"no form cookie and token on {path}"
        return Req(
            "POST",
            path,
            data={**form, "csrf": found.group(1)},
            headers={"Cookie": f"celedger_form={cookie.group(1)}"},
        )

    def throwaway_token(self) -> str:
        return self.throwaway_holder()["Authorization"].removeprefix("Bearer ")

    def witness_body(self) -> bytes:
        """An add-checkpoint request for this log's latest checkpoint, extending whatever the
        witness (this same service: it witnesses its own log here) cosigned last."""
        with self.ctx.db.reader() as s:
            cp = Log.latest_checkpoint(s)
            assert cp is not None
            state = witnessed_state(s, ORIGIN)
            old = 0 if state is None else state.size
            proof = self.ctx.log.consistency_proof(s, old, cp.size) if old else []
            return format_add_checkpoint(old, proof, cp.note)


_CSRF: Final = re.compile(r'name="csrf" value="([^"]*)"')
_FORM_COOKIE: Final = re.compile(r"celedger_form=([^;]+)")

Build = Callable[[World, str, Any], Req]
Fresh = Callable[[World], Any]


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # as the app reports it (``route.path_format``)
    expect: dict[str, Outcome]
    build: Build
    #: A fresh target: one shared by the refused roles, one more for each allowed role.
    fresh: Fresh | None = None
    #: Holder roles present a throwaway professional's session (self-destroying routes).
    throwaway: bool = False
    #: A page that ends the session: success, like "no session", is a redirect to sign-in,
    #: told apart by the cleared cookie and by the session being over.
    signs_out: bool = False


def get(path: str | Callable[[World], str]) -> Build:
    return lambda w, role, t: Req("GET", path(w) if callable(path) else path)


def post_json(path: Callable[[World, Any], str], body: Callable[[World, Any], Any]) -> Build:
    return lambda w, role, t: Req("POST", path(w, t), json=body(w, t))


def _tile(w: World) -> str:
    size = w.ok("GET", "/api/v1/log/proof/consistency?old=1", ANON)["new"]
    return "/log/tile/0/000" if size >= 256 else f"/log/tile/0/000.p/{size}"


def _ed25519_public() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _form_pdf(w: World, role: str, t: Any) -> Req:
    return Req("POST", "/verify", files={"file": ("c.pdf", w.pdf, "application/pdf")})


def _raw_pdf(w: World, role: str, t: Any) -> Req:
    return Req(
        "POST", "/api/v1/verify/pdf", content=w.pdf, headers={"Content-Type": "application/pdf"}
    )


def _policy(w: World, role: str, t: Any) -> Req:
    return Req("POST", f"{API}/policies", content=t, headers={"Content-Type": "application/json"})


def _witness(w: World, role: str, t: Any) -> Req:
    return Req("POST", "/witness/add-checkpoint", content=w.witness_body())


REASON = {"reason": "经审核"}
YEAR = f"{DEMO_YEAR}"

CASES: Final[tuple[Case, ...]] = (
    # -- public: the log, the directory, templates, keys, verification, share links, ops ------
    Case("GET", "/", public(), get("/")),
    Case("GET", "/healthz", public(), get("/healthz")),
    Case("GET", "/readyz", public(), get("/readyz")),
    Case("GET", "/metrics", public(), get("/metrics")),
    Case("GET", "/schema", public(), get("/schema")),
    Case("GET", "/schema/openapi.json", public(), get("/schema/openapi.json")),
    Case("GET", "/schema/swagger", public(), get("/schema/swagger")),
    Case("GET", "/schema/oauth2-redirect.html", public(), get("/schema/oauth2-redirect.html")),
    # Litestar's not-found page for unknown files under /schema: 404 for everyone.
    Case("GET", "/schema/{path}", dict.fromkeys(ROLES, 404), get("/schema/nothing-here")),
    Case("GET", "/log/checkpoint", public(), get("/log/checkpoint")),
    Case("GET", "/log/cosigned-checkpoint", public(), get("/log/cosigned-checkpoint")),
    Case("GET", "/log/tile/{path}", public(), get(_tile)),
    Case(
        "GET", "/api/v1/log/proof/inclusion", public(), get("/api/v1/log/proof/inclusion?index=0")
    ),
    Case(
        "GET", "/api/v1/log/proof/consistency", public(), get("/api/v1/log/proof/consistency?old=1")
    ),
    Case("GET", "/api/v1/log/entries/{index}", public(), get("/api/v1/log/entries/0")),
    Case("POST", "/witness/add-checkpoint", public(), _witness),
    Case(
        "GET", "/api/v1/directory/jurisdictions", public(), get("/api/v1/directory/jurisdictions")
    ),
    Case(
        "GET",
        "/api/v1/directory/jurisdictions/{code}/policy",
        public(),
        get("/api/v1/directory/jurisdictions/CN-SC-PZH/policy"),
    ),
    Case(
        "GET",
        "/api/v1/directory/jurisdictions/{code}/policy/{version}",
        public(),
        get("/api/v1/directory/jurisdictions/CN-SC-PZH/policy/1"),
    ),
    Case("GET", "/api/v1/directory/units", public(), get("/api/v1/directory/units")),
    Case("GET", "/api/v1/directory/bases", public(), get("/api/v1/directory/bases")),
    Case("GET", "/api/v1/directory/bases/{base_id}", public(), get("/api/v1/directory/bases/1")),
    Case(
        "GET",
        "/api/v1/directory/bases/{base_id}/plans/{year}",
        public(),
        get(f"/api/v1/directory/bases/1/plans/{YEAR}"),
    ),
    Case("GET", "/directory", public(), get("/directory")),
    Case("GET", "/directory/bases/{base_id}", public(), get("/directory/bases/1")),
    Case("GET", "/api/v1/completions/template", public(), get("/api/v1/completions/template")),
    Case(
        "GET", "/api/v1/completions/template/csv", public(), get("/api/v1/completions/template/csv")
    ),
    Case(
        "GET",
        "/api/v1/completions/template/xlsx",
        public(),
        get("/api/v1/completions/template/xlsx"),
    ),
    Case("GET", "/.well-known/did.json", public(), get("/.well-known/did.json")),
    Case("GET", "/api/v1/keys/issuing", public(), get("/api/v1/keys/issuing")),
    Case("GET", "/api/v1/verify/bundle", public(), get("/api/v1/verify/bundle")),
    Case(
        "GET", "/api/v1/verify/{token}", public(), get(lambda w: f"/api/v1/verify/{w.verify_token}")
    ),
    Case(
        "POST",
        "/api/v1/verify/{token}/match",
        public(),
        lambda w, role, t: Req(
            "POST", f"/api/v1/verify/{w.verify_token}/match", json={"name": "张二甲"}
        ),
    ),
    Case("GET", "/V/{token}", public(), get(lambda w: f"/V/{w.verify_token}")),
    Case("GET", "/v/{token}", public(), get(lambda w: f"/v/{w.verify_token}")),
    Case(
        "POST",
        "/V/{token}",
        public(),
        lambda w, role, t: Req("POST", f"/V/{w.verify_token}", data={"name": "张二甲"}),
    ),
    Case(
        "POST",
        "/v/{token}",
        public(),
        lambda w, role, t: Req("POST", f"/v/{w.verify_token}", data={"id_number": id_number(1)}),
    ),
    Case("GET", "/verify", public(), get("/verify")),
    Case("POST", "/verify", public(), _form_pdf),
    Case("POST", "/api/v1/verify/pdf", public(), _raw_pdf),
    Case(
        "GET", "/api/v1/shares/{token}", public(), get(lambda w: f"/api/v1/shares/{w.share_token}")
    ),
    Case("GET", "/S/{token}", public(), get(lambda w: f"/S/{w.share_token}")),
    Case("GET", "/s/{token}", public(), get(lambda w: f"/s/{w.share_token}")),
    # -- the registry: who may govern what (ledger.registry.auth.RULES) ------------------------
    Case("GET", f"{API}/whoami", keyed(*KEYED), get(f"{API}/whoami")),
    Case(
        "POST",
        f"{API}/jurisdictions",
        keyed(PROV, NAT),  # an authority of an ancestor: the city is not one of Sichuan
        post_json(lambda w, t: f"{API}/jurisdictions", lambda w, t: {"code": t, "title": "新市"}),
        fresh=lambda w: f"CN-SC-T{w.n()}",
    ),
    Case("POST", f"{API}/policies", keyed(*PZH_AUTHORITIES), _policy, fresh=World.policy),
    Case(
        "POST",
        f"{API}/units",
        keyed(*PZH_AUTHORITIES),
        post_json(
            lambda w, t: f"{API}/units",
            lambda w, t: {"jurisdiction": "CN-SC-PZH", "title": f"新单位{t}"},
        ),
        fresh=World.n,
    ),
    Case(
        "POST",
        f"{API}/bases",
        keyed(*PZH_AUTHORITIES, U1),
        post_json(lambda w, t: f"{API}/bases", lambda w, t: application(t, "CN-SC-PZH", 1)),
        fresh=World.n,
    ),
    Case(
        "POST",
        f"{API}/bases/{{base_id}}/recognise",
        keyed(*PZH_AUTHORITIES),
        post_json(lambda w, t: f"{API}/bases/{t}/recognise", lambda w, t: REASON),
        fresh=World.applied_base,
    ),
    Case(
        "POST",
        f"{API}/bases/{{base_id}}/reject",
        keyed(*PZH_AUTHORITIES),
        post_json(lambda w, t: f"{API}/bases/{t}/reject", lambda w, t: REASON),
        fresh=World.applied_base,
    ),
    Case(
        "POST",
        f"{API}/bases/{{base_id}}/rectification",
        keyed(*PZH_AUTHORITIES),
        post_json(lambda w, t: f"{API}/bases/{t}/rectification", lambda w, t: REASON),
        fresh=World.recognised_base,
    ),
    Case(
        "POST",
        f"{API}/bases/{{base_id}}/reinstate",
        keyed(*PZH_AUTHORITIES),
        post_json(lambda w, t: f"{API}/bases/{t}/reinstate", lambda w, t: REASON),
        fresh=World.rectifying_base,
    ),
    Case(
        "POST",
        f"{API}/bases/{{base_id}}/revoke",
        keyed(*PZH_AUTHORITIES),
        post_json(lambda w, t: f"{API}/bases/{t}/revoke", lambda w, t: REASON),
        fresh=World.recognised_base,
    ),
    Case(
        "POST",
        f"{API}/bases/{{base_id}}/changes",
        keyed(*PZH_AUTHORITIES, U1, B1),
        post_json(
            lambda w, t: f"{API}/bases/1/changes",
            lambda w, t: {"reason": "联系方式变更", "contact": contact(t)},
        ),
        fresh=World.n,
    ),
    Case(
        "POST",
        f"{API}/bases/{{base_id}}/plans",
        keyed(B1),
        post_json(
            lambda w, t: f"{API}/bases/1/plans",
            lambda w, t: {"year": t, "classes": [plan_class("N-01", t)]},
        ),
        fresh=lambda w: next(w._years),
    ),
    Case(
        "POST",
        f"{API}/plans/{{plan_id}}/approve",
        keyed(U1),  # only the base's own management unit
        post_json(lambda w, t: f"{API}/plans/{t}/approve", lambda w, t: {}),
        fresh=World.submitted_plan,
    ),
    Case(
        "POST",
        f"{API}/plans/{{plan_id}}/return",
        keyed(U1),
        post_json(lambda w, t: f"{API}/plans/{t}/return", lambda w, t: REASON),
        fresh=World.submitted_plan,
    ),
    Case(
        "POST",
        f"{API}/plans/{{plan_id}}/file",
        keyed(B1, U1),
        lambda w, role, t: Req("POST", f"{API}/plans/{t}/file"),
        fresh=World.approved_plan,
    ),
    Case(
        "POST",
        f"{API}/bases/{{base_id}}/inspections",
        keyed(*PZH_AUTHORITIES, U1),
        post_json(
            lambda w, t: f"{API}/bases/1/inspections",
            lambda w, t: {"year": DEMO_YEAR, "result": "合格"},
        ),
    ),
    Case(
        "POST",
        f"{API}/keys",
        keyed(*PZH_AUTHORITIES),
        post_json(lambda w, t: f"{API}/keys", lambda w, t: {"principal": B1, "label": "k"}),
    ),
    Case(
        "POST",
        f"{API}/keys/{{key_id}}/revoke",
        keyed(*PZH_AUTHORITIES),
        lambda w, role, t: Req("POST", f"{API}/keys/{t}/revoke"),
        fresh=World.spare_key,
    ),
    # -- completions, certificates, transcripts, activation codes ------------------------------
    Case(
        "POST",
        "/api/v1/bases/{base}/batches",
        keyed(B1),  # a base posts for itself only
        post_json(
            lambda w, t: BATCHES,
            lambda w, t: batch(f"matrix-{t}", record(t, id_number=id_number(t, birth="19920303"))),
        ),
        fresh=World.n,
    ),
    Case(
        "GET",
        "/api/v1/bases/{base}/batches/{batch}",
        keyed(*READERS_OF_BASE1),
        get(lambda w: f"/api/v1/bases/1/batches/{w.batch}"),
    ),
    Case(
        "GET",
        "/api/v1/completions/{record}",
        keyed(*READERS_OF_BASE1),
        get(lambda w: f"/api/v1/completions/{w.record}"),
    ),
    Case(
        "POST",
        "/api/v1/completions/{record}/corrections",
        keyed(B1),
        post_json(
            lambda w, t: f"/api/v1/completions/{t}/corrections",
            lambda w, t: {"reason": "学时有误", "changes": {"hours": "20"}},
        ),
        fresh=World.fresh_record,
    ),
    Case(
        "POST",
        "/api/v1/completions/{record}/revocation",
        keyed(*PZH_AUTHORITIES),
        post_json(
            lambda w, t: f"/api/v1/completions/{t}/revocation",
            lambda w, t: {"reason_code": "error", "reason": "重复登记"},
        ),
        fresh=World.fresh_record,
    ),
    Case(
        "POST",
        "/api/v1/bases/{base}/signing-keys",
        keyed(B1),
        post_json(lambda w, t: "/api/v1/bases/1/signing-keys", lambda w, t: {"public_key": t}),
        fresh=lambda w: _ed25519_public(),
    ),
    Case(
        "GET",
        "/api/v1/bases/{base}/execution-summary",
        keyed(*READERS_OF_BASE1),
        get(f"/api/v1/bases/1/execution-summary?year={YEAR}"),
    ),
    Case(
        "POST",
        "/api/v1/completions/{record}/certificate",
        keyed(*READERS_OF_BASE1),
        lambda w, role, t: Req("POST", f"/api/v1/completions/{w.record}/certificate?format=json"),
    ),
    Case(
        "POST",
        "/api/v1/transcripts",
        # Any authority, for its own register: a transcript covers every base of the country
        # (RULES["transcript.issue"]), so the Guangdong authority may extract one too.
        keyed(*PZH_AUTHORITIES, GD),
        lambda w, role, t: Req(
            "POST",
            "/api/v1/transcripts?format=json",
            json={"id_number": id_number(1), "years": [DEMO_YEAR]},
        ),
    ),
    Case(
        "POST",
        "/api/v1/activation-codes",
        # Bases and authorities without records of the person: the same 404 as an unknown ID
        # number.  Management units may not issue codes at all.
        keyed(B1, *PZH_AUTHORITIES, not_found=(B2, B3, B5, GD)),
        post_json(
            lambda w, t: "/api/v1/activation-codes", lambda w, t: {"id_number": id_number(4)}
        ),
    ),
    # -- professionals: sign-in, own records, downloads, share links, erasure -----------------
    Case(
        "POST",
        "/api/v1/me/activate",
        public(),
        lambda w, role, t: Req("POST", "/api/v1/me/activate", json=w.activation()),
    ),
    Case(
        "POST",
        "/api/v1/me/sign-in",
        public(),
        post_json(
            lambda w, t: "/api/v1/me/sign-in",
            lambda w, t: {"id_number": id_number(1), "password": PASSWORD},
        ),
    ),
    Case("GET", "/api/v1/me", session(*HOLDERS), get("/api/v1/me")),
    Case("GET", "/api/v1/me/sessions", session(*HOLDERS), get("/api/v1/me/sessions")),
    Case("GET", "/api/v1/me/records", session(*HOLDERS), get("/api/v1/me/records")),
    Case("GET", "/api/v1/me/compliance", session(*HOLDERS), get("/api/v1/me/compliance")),
    Case(
        "GET",
        "/api/v1/me/records/{record}",
        session(H1, not_found=(H2,)),
        get(lambda w: f"/api/v1/me/records/{w.record}"),
    ),
    Case(
        "POST",
        "/api/v1/me/records/{record}/certificate",
        session(H1, not_found=(H2,)),
        lambda w, role, t: Req("POST", f"/api/v1/me/records/{w.record}/certificate?format=json"),
    ),
    Case(
        "POST",
        "/api/v1/me/transcript",
        session(*HOLDERS),
        lambda w, role, t: Req(
            "POST", "/api/v1/me/transcript?format=json", json={"years": [DEMO_YEAR]}
        ),
    ),
    Case(
        "POST",
        "/api/v1/me/shares",
        session(H1, not_found=(H2,)),  # a share of professional 1's record
        post_json(
            lambda w, t: "/api/v1/me/shares",
            lambda w, t: {"scope": "record", "record": w.record, "days": 30},
        ),
    ),
    Case("GET", "/api/v1/me/shares", session(*HOLDERS), get("/api/v1/me/shares")),
    Case(
        "GET",
        "/api/v1/me/shares/{share}",
        session(H1, not_found=(H2,)),
        get(lambda w: f"/api/v1/me/shares/{w.share}"),
    ),
    Case(
        "GET",
        "/api/v1/me/shares/{share}/qr",
        session(H1, not_found=(H2,)),
        get(lambda w: f"/api/v1/me/shares/{w.share}/qr"),
    ),
    Case(
        "POST",
        "/api/v1/me/shares/{share}/extend",
        session(H1, not_found=(H2,)),
        post_json(lambda w, t: f"/api/v1/me/shares/{t}/extend", lambda w, t: {"days": 7}),
        fresh=World.own_share,
    ),
    Case(
        "POST",
        "/api/v1/me/shares/{share}/close",
        session(H1, not_found=(H2,)),
        lambda w, role, t: Req("POST", f"/api/v1/me/shares/{t}/close"),
        fresh=World.own_share,
    ),
    Case(
        "POST",
        "/api/v1/me/sign-out",
        session(*HOLDERS),
        lambda w, role, t: Req("POST", "/api/v1/me/sign-out"),
        throwaway=True,
    ),
    Case(
        "POST",
        "/api/v1/me/sign-out-everywhere",
        session(*HOLDERS),
        lambda w, role, t: Req("POST", "/api/v1/me/sign-out-everywhere"),
        throwaway=True,
    ),
    Case(
        "POST",
        "/api/v1/me/password",
        session(*HOLDERS),
        post_json(
            lambda w, t: "/api/v1/me/password",
            lambda w, t: {"password": PASSWORD, "new_password": "another good passphrase"},
        ),
        throwaway=True,
    ),
    Case(
        "POST",
        "/api/v1/me/erasure",
        session(*HOLDERS),
        post_json(
            lambda w, t: "/api/v1/me/erasure", lambda w, t: {"password": PASSWORD, "confirm": True}
        ),
        throwaway=True,
    ),
    # -- the professional's pages (cookie session, a form token on every POST) ----------------
    Case("GET", "/me/sign-in", public(), get("/me/sign-in")),
    Case("GET", "/me/activate", public(), get("/me/activate")),
    Case(
        "POST",
        "/me/sign-in",
        public(),
        lambda w, role, t: w.pre_session_form(
            "/me/sign-in", {"id_number": id_number(1), "password": PASSWORD}
        ),
    ),
    Case(
        "POST",
        "/me/activate",
        public(),
        lambda w, role, t: w.pre_session_form(
            "/me/activate", {**w.activation(), "password2": PASSWORD}
        ),
    ),
    Case("GET", "/me", page(*HOLDERS), lambda w, role, t: Req("GET", "/me", auth=w.cookie(role))),
    Case(
        "GET",
        "/me/shares",
        page(*HOLDERS),
        lambda w, role, t: Req("GET", "/me/shares", auth=w.cookie(role)),
    ),
    Case(
        "GET",
        "/me/shares/{share}",
        page(H1, not_found=(H2,)),
        lambda w, role, t: Req("GET", f"/me/shares/{w.share}", auth=w.cookie(role)),
    ),
    Case(
        "GET",
        "/me/erase",
        page(*HOLDERS),
        lambda w, role, t: Req("GET", "/me/erase", auth=w.cookie(role)),
    ),
    Case(
        "POST",
        "/me/records/{record}/certificate",
        page(H1, not_found=(H2,)),
        lambda w, role, t: w.page_post(
            role, f"/me/records/{w.record}/certificate", {"format": "json"}
        ),
    ),
    Case(
        "POST",
        "/me/transcript",
        page(*HOLDERS),
        lambda w, role, t: w.page_post(
            role, "/me/transcript", {"format": "json", "year": str(DEMO_YEAR)}
        ),
    ),
    Case(
        "POST",
        "/me/shares",
        page(H1, not_found=(H2,)),
        lambda w, role, t: w.page_post(
            role, "/me/shares", {"scope": "record", "record": w.record, "days": "30"}
        ),
    ),
    Case(
        "POST",
        "/me/shares/{share}/extend",
        page(H1, not_found=(H2,)),
        lambda w, role, t: w.page_post(role, f"/me/shares/{t}/extend", {"days": "7"}),
        fresh=World.own_share,
    ),
    Case(
        "POST",
        "/me/shares/{share}/close",
        page(H1, not_found=(H2,)),
        lambda w, role, t: w.page_post(role, f"/me/shares/{t}/close", {}),
        fresh=World.own_share,
    ),
    Case(
        "POST",
        "/me/sign-out",
        page(*HOLDERS),
        lambda w, role, t: w.page_post(role, "/me/sign-out", {}, throwaway=True),
        signs_out=True,
    ),
    Case(
        "POST",
        "/me/sign-out-everywhere",
        page(*HOLDERS),
        lambda w, role, t: w.page_post(role, "/me/sign-out-everywhere", {}, throwaway=True),
        signs_out=True,
    ),
    Case(
        "POST",
        "/me/erase",
        page(*HOLDERS),
        lambda w, role, t: w.page_post(
            role,
            "/me/erase",
            {"password": PASSWORD, "confirm": "yes"},
            throwaway=True,
        ),
    ),
)


# -- fixtures and the world ----------------------------------------------------------------------


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Any:
    """Cheap password hashing, no verification rate limit in the way (the matrix calls those
    routes once per role), and the service witnessing its own log, so that the witness route
    has a log whose signed checkpoints it accepts."""
    from api.settings import Settings

    data = tmp_path / "data"
    signer = NoteSigner.generate(ORIGIN)
    write_secret(data / "keys" / "log.key", signer.to_skey())
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        data_dir=data,
        origin=ORIGIN,
        public_url="http://testserver",
        password_hash_time_cost=1,
        password_hash_memory_kib=64,
        password_hash_parallelism=1,
        verify_rate_per_minute=100_000,
        witness_logs=[signer.verifier().to_vkey()],
    )


def build_world(client: Any, ctx: Any) -> World:
    keys = world(ctx)
    auth: dict[str, dict[str, str]] = {ANON: {}, **keys}

    def ok(method: str, path: str, who: str, **kw: Any) -> Any:
        r = client.request(method, path, headers=auth[who], **kw)
        assert 200 <= r.status_code < 300, f"setup {method} {path} as {who}: {r.text}"
        return r.json()

    ok("POST", f"{API}/jurisdictions", NAT, json={"code": "CN-GD", "title": "广东省"})
    auth[GD] = bearer(ok("POST", f"{API}/keys", NAT, json={"principal": GD, "label": "x"})["key"])
    auth[B3] = bearer(ok("POST", f"{API}/keys", NAT, json={"principal": B3, "label": "x"})["key"])
    spare = ok("POST", f"{API}/keys", NAT, json={"principal": B1, "label": "to revoke"})
    ok("POST", f"{API}/keys/{spare['key_id']}/revoke", NAT)
    auth[REVOKED] = bearer(spare["key"])

    # Professionals 1–4 at base 1: 1 and 2 sign in, 3 is activated by the matrix, 4 gets codes.
    posted = ok("POST", BATCHES, B1, json=batch("matrix", *(record(n) for n in (1, 2, 3, 4))))
    rec = str(posted["records"][0]["record"])
    for role, n in ((H1, 1), (H2, 2)):
        code = ok("POST", "/api/v1/activation-codes", B1, json={"id_number": id_number(n)})
        r = ok(
            "POST",
            "/api/v1/me/activate",
            ANON,
            json={"id_number": id_number(n), "code": code["code"], "password": PASSWORD},
        )
        auth[role] = bearer(r["token"])
    share = ok("POST", "/api/v1/me/shares", H1, json={"scope": "record", "record": rec, "days": 30})
    issued = ok("POST", f"/api/v1/completions/{rec}/certificate?format=json", B1)
    pdf = client.post(f"/api/v1/completions/{rec}/certificate", headers=auth[B1])
    assert pdf.status_code == 201, pdf.text
    w = World(
        client=client,
        ctx=ctx,
        auth=auth,
        record=rec,
        batch=str(posted["batch"]),
        share=str(share["id"]),
        share_token=share["url"].rsplit("/", 1)[1],
        verify_token=issued["verify_url"].rsplit("/", 1)[1],
        pdf=pdf.content,
    )
    # The witness cosigns once, and the log keeps that cosignature: /log/cosigned-checkpoint.
    body = w.witness_body()
    r = client.post("/witness/add-checkpoint", content=body)
    assert r.status_code == 200, r.text
    with ctx.db.writer() as s:
        cp = Log.latest_checkpoint(s)
        assert cp is not None
        record_cosignature(s, cp.size, "self", 0, r.text, datetime.now(UTC))
    return w


# -- the tests -----------------------------------------------------------------------------------


def _routes(app: Any) -> set[tuple[str, str]]:
    return {
        (method, route.path_format)
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method != "OPTIONS"
    }


def test_every_route_has_a_row(tmp_path: Path) -> None:
    from api.app import create_app
    from api.settings import Settings

    # The routes are the app's whatever its database: building it opens none.
    app = create_app(
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite:///{tmp_path / 'unused.db'}",
            data_dir=tmp_path / "data",
            origin=ORIGIN,
        )
    )
    rows = [(c.method, c.route) for c in CASES]
    assert len(rows) == len(set(rows)), "a route is in the matrix twice"
    served = _routes(app)
    missing = sorted(served - set(rows))
    assert not missing, f"routes without a row in the authorisation matrix: {missing}"
    stale = sorted(set(rows) - served)
    assert not stale, f"matrix rows for routes the app does not have: {stale}"
    for c in CASES:
        assert set(c.expect) == set(ROLES), f"{c.method} {c.route}: not every role has an outcome"


def _send(w: World, role: str, req: Req) -> Any:
    headers = {**(w.auth[role] if req.auth is None else req.auth), **req.headers}
    w.client.cookies.clear()  # only what the role presents, nothing a previous answer set
    return w.client.request(
        req.method,
        req.path,
        headers=headers,
        json=req.json,
        content=req.content,
        data=req.data,
        files=req.files,
        follow_redirects=False,
    )


def _outcome(r: Any) -> Outcome:
    if 300 <= r.status_code < 400:
        return SIGN_IN if r.headers.get("location", "").startswith("/me/sign-in") else ALLOW
    return ALLOW if 200 <= r.status_code < 300 else int(r.status_code)


def test_every_role_on_every_route(client: Any, ctx: Any, db_url: str, figure: Any) -> None:
    w = build_world(client, ctx)
    dialect = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    wrong: list[str] = []
    unexpected_allows = checks = 0
    for case in CASES:
        # Refused roles first, all on one target; then each allowed role on its own.
        order = sorted(ROLES, key=lambda r: case.expect[r] == ALLOW)
        target = None if case.fresh is None else case.fresh(w)
        used = False
        for role in order:
            want = case.expect[role]
            if want == ALLOW:
                if used and case.fresh is not None:
                    target = case.fresh(w)
                used = True
            req = case.build(w, role, target)
            if case.throwaway and role in HOLDERS:
                req.auth = w.throwaway_holder()
            before = log_size(ctx) if req.method != "GET" and want != ALLOW else None
            r = _send(w, role, req)
            checks += 1
            got = _outcome(r)
            if (
                case.signs_out
                and got == SIGN_IN
                and "celedger_session=" in r.headers.get("set-cookie", "")
            ):
                after = w.client.get("/me", headers=req.auth, follow_redirects=False)
                assert _outcome(after) == SIGN_IN, f"{role} {case.route}: the session lives on"
                got = ALLOW
            where = f"{role} {case.method} {case.route} ({req.path})"
            if got != want:
                wrong.append(f"{where}: expected {want}, got {r.status_code} {r.text[:300]}")
                if got == ALLOW:
                    unexpected_allows += 1
                continue
            api = not case.route.startswith(("/me", "/schema/"))
            if want != ALLOW and api:
                assert r.headers["content-type"].startswith("application/problem+json"), where
            if want == 401:
                assert r.headers.get("www-authenticate", "").startswith("Bearer"), where
            if before is not None:
                assert log_size(ctx) == before, f"{where}: a refused request appended to the log"
    assert not wrong, f"{len(wrong)} of {checks} checks differ:\n" + "\n".join(wrong)
    figure(
        f"authz[{dialect}]: {len(ROLES)} roles × {len(CASES)} endpoints = {checks} checks, "
        f"{unexpected_allows} unexpected allows"
    )
