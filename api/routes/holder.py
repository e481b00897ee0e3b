"""Professionals' own access: activation, sign-in, their records, downloads, share links, erasure.

* ``POST /api/v1/activation-codes`` (API key: a base for people it has records for, or an
  authority) — ``{"id_number"}`` → a one-time activation code, shown once.
* ``POST /api/v1/me/activate`` — ``{"id_number", "code", "password"}`` → a session (first
  sign-in, or a password reset: every old session ends).
* ``POST /api/v1/me/sign-in`` — ``{"id_number", "password"}`` → a session.
* With ``Authorization: Bearer ses_…`` (`provide_holder`): ``GET /api/v1/me``,
  ``/me/sessions``, ``POST /me/sign-out``, ``/me/sign-out-everywhere``, ``/me/password``;
  ``GET /me/records``, ``/me/records/{record}``, ``/me/compliance``;
  ``POST /me/records/{record}/certificate``, ``/me/transcript`` (PDF, or ``?format=json``);
  ``POST /me/shares``, ``GET /me/shares``, ``/me/shares/{id}`` (with its access log),
  ``/me/shares/{id}/qr`` (SVG or PNG), ``POST /me/shares/{id}/extend``, ``/close``;
  ``POST /me/erasure`` (password again).
* Public: ``GET /S/{token}`` (a page, no JavaScript; ``/s/`` too) and
  ``GET /api/v1/shares/{token}`` (JSON) — what a verifier opens from a share link.

ID numbers travel only in request bodies, never in a URL.  A record or link of another person
is answered exactly like one that does not exist (404).  Every answer that carries a secret is
``Cache-Control: no-store``.  Time comes from ``app.state["holder_clock"]`` when set (tests move
it; nothing sleeps), else the system clock.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeVar

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.auth import PRINCIPAL_DEPENDENCY
from api.context import Context
from api.problems import Problem
from api.routes.verify import _CSS, Lang
from api.settings import Settings
from ledger.accounts import records as holder_records
from ledger.accounts import services as accounts
from ledger.accounts import shares as holder_shares
from ledger.accounts.errors import SessionInvalid, Throttled
from ledger.accounts.models import Account
from ledger.accounts.passwords import HashParams, Passwords, passwords
from ledger.accounts.providers import PasswordProvider, sign_in
from ledger.accounts.rules import AccountRules
from ledger.accounts.throttle import client_tag
from ledger.completions.models import Person
from ledger.identity import IdentityError, mask_id, mask_name, validate_id_number
from ledger.registry.auth import Principal
from ledger.registry.errors import NotFound
from ledger.registry.services import aware

__all__ = [
    "HOLDER_DEPENDENCY",
    "ActivationCodeController",
    "HolderController",
    "ShareController",
    "account_rules",
    "erase_account",
    "provide_holder",
]

_NO_STORE: Final = CacheControlHeader(no_store=True)
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="celedger-holder"'}
_MAX_SHARE_TOKEN: Final = 64
T = TypeVar("T")


def account_rules(settings: Settings) -> AccountRules:
    return AccountRules(
        session_idle=timedelta(minutes=settings.session_idle_minutes),
        session_absolute=timedelta(hours=settings.session_absolute_hours),
        max_failures=settings.signin_max_failures,
        max_failures_per_client=settings.signin_max_failures_per_client,
        lock=timedelta(minutes=settings.signin_lock_minutes),
        activation_validity=timedelta(days=settings.activation_code_days),
    )


def _passwords(settings: Settings) -> Passwords:
    return passwords(
        HashParams(
            settings.password_hash_time_cost,
            settings.password_hash_memory_kib,
            settings.password_hash_parallelism,
        )
    )


def _now(request: Request[Any, Any, Any]) -> datetime:
    clock = request.app.state.get("holder_clock")
    return clock() if callable(clock) else datetime.now(UTC)


def _client(request: Request[Any, Any, Any]) -> str:
    # The direct peer: a forwarded-for header is the client's to forge.  Behind a proxy the
    # server is run with the proxy's trusted-forwarding option, which rewrites the peer.
    return request.client.host if request.client is not None else "unknown"


def erase_account(
    ctx: Context, holder: accounts.Holder, password: str, client: str, now: datetime
) -> accounts.ErasureReceipt:
    """The services' erasure with this server's password hashing and account rules: the JSON
    API's and the /me pages' (`api.routes.holder_web`)."""
    return accounts.erase(
        ctx.db,
        ctx.log,
        ctx.vault,
        _passwords(ctx.settings),
        account_rules(ctx.settings),
        holder,
        password,
        client,
        now=now,
    )


def _stamp(at: datetime) -> str:
    return aware(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def _guard(work: Callable[[], T]) -> T:
    """Run ``work``; a lock-out becomes 429 with ``Retry-After``."""
    try:
        return work()
    except Throttled as exc:
        raise TooManyRequestsException(
            detail=str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None


# --------------------------------------------------------------------------------------------
# The session dependency


def provide_holder(
    request: Request[Any, Any, Any], ctx: NamedDependency[Context]
) -> accounts.Holder:
    """The signed-in professional of ``Authorization: Bearer ses_…``; 401 otherwise."""
    header = request.headers.get("authorization")
    if header is None:
        raise NotAuthorizedException(
            detail="请先登录 / sign in first: send 'Authorization: Bearer ses_…'",
            headers=_CHALLENGE,
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise NotAuthorizedException(
            detail="Authorization: expected 'Bearer ses_…'", headers=_CHALLENGE
        )
    try:
        return accounts.authenticate_session(
            ctx.db, token.strip(), account_rules(ctx.settings), now=_now(request)
        )
    except SessionInvalid as exc:
        raise NotAuthorizedException(detail=str(exc), headers=_CHALLENGE) from None


HOLDER_DEPENDENCY: Final = Provide(provide_holder, sync_to_thread=True)


# --------------------------------------------------------------------------------------------
# Bodies


def _id_number(value: str) -> str:
    try:
        return validate_id_number(value)
    except IdentityError as exc:  # its message never repeats the number
        raise ValueError(str(exc)) from None


_Id = Annotated[
    str,
    Field(description="身份证号 (18 characters)", max_length=40),
    AfterValidator(_id_number),
]
_Password = Annotated[str, Field(min_length=1, max_length=256)]


class ActivationCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id_number: _Id


class ActivateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id_number: _Id
    code: Annotated[
        str, Field(max_length=40, description="the activation code, e.g. K7QM-2XHD-9RTA-PW3E")
    ]
    password: Annotated[
        str, Field(max_length=256, description="the new password (10–128 characters)")
    ]


class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id_number: _Id
    password: _Password


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    password: _Password
    new_password: Annotated[str, Field(max_length=256)]


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    password: _Password
    confirm: Annotated[
        Literal[True], Field(description="true: erase my personal data (cannot be undone)")
    ]


class YearsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    years: Annotated[
        list[Annotated[int, Field(ge=2000, le=2100)]], Field(min_length=1, max_length=10)
    ]


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Literal["record", "year", "transcript", "title-check"]
    days: Annotated[int, Field(description="validity in days (7–180)")]
    record: Annotated[str | None, Field(default=None, max_length=32)] = None
    year: Annotated[int | None, Field(default=None, ge=2000, le=2100)] = None
    years: Annotated[
        int | None, Field(default=None, description="title-check: how many years (1–10)")
    ] = None
    through: Annotated[
        int | None,
        Field(
            default=None,
            ge=2000,
            le=2100,
            description="title-check: the last year (default: last year)",
        ),
    ] = None
    label: Annotated[str | None, Field(default=None, max_length=100)] = None


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int


Format = Annotated[Literal["pdf", "json"], QueryParameter(name="format")]
QrFormat = Annotated[Literal["svg", "png"], QueryParameter(name="format")]


def _issued(issued: Any, fmt: str, filename: str) -> Response[Any]:
    if fmt == "json":
        return Response(
            {
                "certificate_number": issued.certificate_number,
                "verify_url": issued.verify_url,
                "kid": issued.kid,
                "credential": issued.credential,
            },
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )
    return Response(
        issued.pdf,
        status_code=201,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}-{issued.certificate_number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


# --------------------------------------------------------------------------------------------
# Activation codes (bases and authorities)


class ActivationCodeController(Controller):
    path = "/api/v1/activation-codes"
    tags = ("accounts",)
    dependencies = {"actor": PRINCIPAL_DEPENDENCY}  # noqa: RUF012 - Litestar reads it off the class

    @post("", sync_to_thread=True, cache_control=_NO_STORE)
    def issue(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        data: JSONBody[ActivationCodeIn],
    ) -> Response[dict[str, Any]]:
        """Issue a one-time activation code for a professional (ID number in the body): a base
        for people it has records for, an authority for people with records in its subtree.
        The code is shown once; an earlier unused code stops working."""
        rules = account_rules(ctx.settings)
        with ctx.db.writer() as s:
            issued = accounts.issue_activation_code(
                s, ctx.vault, actor, data.id_number, rules, now=_now(request)
            )
        return Response(
            {
                "code": issued.code,
                "expires_at": _stamp(issued.expires_at),
                "single_use": True,
                "activate": "/api/v1/me/activate",
            },
            status_code=201,
        )


# --------------------------------------------------------------------------------------------
# The professional's own routes


def _share_url(ctx: Context, token: str | None) -> str | None:
    # Upper case, like the verification URLs: the QR code can use alphanumeric mode.
    return None if token is None else f"{ctx.settings.public_url}/S/{token}".upper()


def _share_out(ctx: Context, s: Any, share: Any, now: datetime) -> dict[str, Any]:
    url = _share_url(ctx, holder_shares.share_token(ctx.vault, share))
    return holder_shares.share_json(s, share, url, now=now)


class HolderController(Controller):
    path = "/api/v1/me"
    tags = ("accounts",)
    dependencies = {"holder": HOLDER_DEPENDENCY}  # noqa: RUF012 - Litestar reads it off the class

    # -- signing in (no session yet) ----------------------------------------------------------

    @post("/activate", sync_to_thread=True, cache_control=_NO_STORE)
    def activate(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        data: JSONBody[ActivateIn],
    ) -> Response[dict[str, Any]]:
        """First sign-in with the activation code a base or authority gave you: sets your
        password and answers a session.  Also how a forgotten password is reset."""
        issued = _guard(
            lambda: accounts.activate(
                ctx.db,
                ctx.vault,
                _passwords(ctx.settings),
                account_rules(ctx.settings),
                data.id_number,
                data.code,
                data.password,
                _client(request),
                now=_now(request),
            )
        )
        return Response(issued.to_json(), status_code=201)

    @post("/sign-in", sync_to_thread=True, status_code=200, cache_control=_NO_STORE)
    def sign_in(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        data: JSONBody[SignInIn],
    ) -> dict[str, Any]:
        """Sign in with ID number and password; answers a session token (Bearer ses_…).
        Five failures for one ID number, or many from one address, lock it for 15 minutes."""
        rules = account_rules(ctx.settings)
        provider = PasswordProvider(ctx.vault, _passwords(ctx.settings), rules)
        issued = _guard(
            lambda: sign_in(
                ctx.db,
                provider,
                rules,
                {"id_number": data.id_number, "password": data.password},
                _client(request),
                now=_now(request),
            )
        )
        return issued.to_json()

    # -- the session ----------------------------------------------------------------------------

    @get("", sync_to_thread=True, cache_control=_NO_STORE)
    def me(
        self, ctx: NamedDependency[Context], holder: NamedDependency[accounts.Holder]
    ) -> dict[str, Any]:
        """Who is signed in: your name, your masked ID number, your account."""
        with ctx.db.reader() as s:
            person = s.get(Person, holder.person_id)
            account = s.get(Account, holder.account_id)
            assert person is not None and person.sealed is not None and account is not None
            data = ctx.vault.open(person.sealed, person.lookup)
            chains = holder_records.chains_of(s, holder.person_id)
        return {
            "name": data["name"],
            "id_number": mask_id(data["id_number"]),
            "provider": account.provider,
            "created_at": _stamp(account.created_at),
            "password_changed_at": _stamp(account.password_changed_at),
            "records": len(chains),
        }

    @get("/sessions", sync_to_thread=True, cache_control=_NO_STORE)
    def sessions(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
    ) -> list[dict[str, Any]]:
        """Your live sessions (the one you are using is marked ``current``)."""
        with ctx.db.reader() as s:
            return accounts.list_sessions(s, holder, account_rules(ctx.settings), now=_now(request))

    @post("/sign-out", sync_to_thread=True, status_code=204)
    def sign_out(
        self, ctx: NamedDependency[Context], holder: NamedDependency[accounts.Holder]
    ) -> None:
        """End this session."""
        with ctx.db.writer() as s:
            accounts.sign_out(s, holder)

    @post("/sign-out-everywhere", sync_to_thread=True, status_code=200)
    def sign_out_everywhere(
        self, ctx: NamedDependency[Context], holder: NamedDependency[accounts.Holder]
    ) -> dict[str, int]:
        """End every session of your account, this one included."""
        with ctx.db.writer() as s:
            return {"ended": accounts.sign_out_everywhere(s, holder)}

    @post("/password", sync_to_thread=True, status_code=204)
    def password(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        data: JSONBody[PasswordIn],
    ) -> None:
        """Change your password (the current one again); your other sessions end."""
        _guard(
            lambda: accounts.change_password(
                ctx.db,
                ctx.vault,
                _passwords(ctx.settings),
                account_rules(ctx.settings),
                holder,
                data.password,
                data.new_password,
                _client(request),
                now=_now(request),
            )
        )

    # -- records --------------------------------------------------------------------------------

    @get("/records", sync_to_thread=True, cache_control=_NO_STORE)
    def records(
        self, ctx: NamedDependency[Context], holder: NamedDependency[accounts.Holder]
    ) -> dict[str, Any]:
        """Every record of yours with its status and history (corrections, revocation), and
        your totals per year (or cycle) against your jurisdiction's policy."""
        with ctx.db.reader() as s:
            chains = holder_records.chains_of(s, holder.person_id)
            return {
                "records": holder_records.records_json(s, chains),
                "compliance": [
                    holder_records.compliance_json(r) for r in holder_records.compliance(s, chains)
                ],
            }

    @get("/records/{record:str}", sync_to_thread=True, cache_control=_NO_STORE)
    def record(
        self,
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        record: FromPath[str],
    ) -> dict[str, Any]:
        """One record of yours (any version's id) with its history; another person's is 404."""
        with ctx.db.reader() as s:
            chain = holder_records.find_chain(s, holder.person_id, record)
            return holder_records.records_json(s, [chain])[0]

    @get("/compliance", sync_to_thread=True, cache_control=_NO_STORE)
    def compliance(
        self,
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        years: Annotated[list[int] | None, QueryParameter(name="year")] = None,
        jurisdiction: Annotated[
            str | None, QueryParameter(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,8}){0,2}$")
        ] = None,
    ) -> list[dict[str, Any]]:
        """Per year (or cycle): your counted hours against the requirement, e.g.
        "2026年：84/90 学时 ✗（差 6）…".  ``?year=2025&year=2026`` (default: years with
        records); ``?jurisdiction=`` another register's policy (default: your latest base's)."""
        if years is not None and any(not 2000 <= y <= 2100 for y in years):
            raise Problem(400, "compliance.years", "year: expected years between 2000 and 2100")
        with ctx.db.reader() as s:
            chains = holder_records.chains_of(s, holder.person_id)
            return [
                holder_records.compliance_json(r)
                for r in holder_records.compliance(s, chains, years, jurisdiction=jurisdiction)
            ]

    @post("/records/{record:str}/certificate", sync_to_thread=True)
    def certificate(
        self,
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        record: FromPath[str],
        fmt: Format = "pdf",
    ) -> Response[Any]:
        """Your completion certificate (结业证明) of a current record: signed PDF with QR code
        and embedded credential, or (``?format=json``) the credential."""
        from certificates.issue import completion_certificate

        issuer = ctx.issuer()
        with ctx.db.writer() as s:
            holder_records.find_chain(s, holder.person_id, record)  # 404 unless yours
            issued = completion_certificate(s, issuer, "holder", record)
        return _issued(issued, fmt, "certificate")

    @post("/transcript", sync_to_thread=True)
    def transcript(
        self,
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        data: JSONBody[YearsIn],
        fmt: Format = "pdf",
    ) -> Response[Any]:
        """Your transcript for some years: every current record, totals per category and the
        verdict of your jurisdiction's policy (PDF, or ``?format=json``: the CLR credential)."""
        from certificates.issue import transcript

        issuer = ctx.issuer()
        with ctx.db.writer() as s:
            issued = transcript(s, issuer, "holder", holder.person_id, data.years)
        return _issued(issued, fmt, "transcript")

    # -- share links ----------------------------------------------------------------------------

    @post("/shares", sync_to_thread=True, cache_control=_NO_STORE)
    def create_share(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        data: JSONBody[ShareIn],
    ) -> Response[dict[str, Any]]:
        """A share link for one record, one year, the whole transcript or a title-application
        check of the last N years, valid 7–180 days; the link (and ``qr``) open a verification
        page for whoever you give it to."""
        now = _now(request)
        spec = holder_shares.ShareSpec(
            scope=data.scope,
            days=data.days,
            record=data.record,
            year=data.year,
            years=data.years,
            through=data.through,
            label=data.label,
        )
        with ctx.db.writer() as s:
            share, _ = holder_shares.create_share(
                s, ctx.vault, holder.person_id, spec, account_rules(ctx.settings), now=now
            )
            out = _share_out(ctx, s, share, now)
        out["qr"] = f"/api/v1/me/shares/{share.id}/qr"
        return Response(out, status_code=201)

    @get("/shares", sync_to_thread=True, cache_control=_NO_STORE)
    def list_shares(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
    ) -> list[dict[str, Any]]:
        """Your share links with their status and how often each was opened."""
        now = _now(request)
        with ctx.db.reader() as s:
            return [
                _share_out(ctx, s, share, now)
                for share in holder_shares.list_shares(s, holder.person_id)
            ]

    @get("/shares/{share:str}", sync_to_thread=True, cache_control=_NO_STORE)
    def share(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        share: FromPath[str],
    ) -> dict[str, Any]:
        """One link of yours with its access log: when it was opened, through the page or the
        API, what it answered, and a short code per verifier network (never an address)."""
        now = _now(request)
        with ctx.db.reader() as s:
            row = holder_shares.holder_share(s, holder.person_id, share)
            out = _share_out(ctx, s, row, now)
            out["access_log"] = holder_shares.access_log(s, row)
        return out

    @get("/shares/{share:str}/qr", sync_to_thread=True, cache_control=_NO_STORE)
    def share_qr(
        self,
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        share: FromPath[str],
        fmt: QrFormat = "svg",
    ) -> Response[bytes]:
        """The link as a QR code (SVG, or ``?format=png``) to print or show on a phone."""
        import qrcode
        import qrcode.image.svg

        with ctx.db.reader() as s:
            row = holder_shares.holder_share(s, holder.person_id, share)
            url = _share_url(ctx, holder_shares.share_token(ctx.vault, row))
        if url is None:
            raise NotFound("share.unknown", f"no share link {share!r}")
        # Error correction M and a 4-module quiet zone, as on the certificates; 8 px modules
        # for the PNG (a phone reads it off a screen or a print).
        code = qrcode.QRCode(
            error_correction=qrcode.constants.ERROR_CORRECT_M,
            border=4,
            box_size=10 if fmt == "svg" else 8,
        )
        code.add_data(url)
        code.make(fit=True)
        if fmt == "svg":
            svg = code.make_image(image_factory=qrcode.image.svg.SvgPathImage)
            return Response(svg.to_string(encoding="utf-8"), media_type="image/svg+xml")
        out = io.BytesIO()
        code.make_image().save(out)
        return Response(out.getvalue(), media_type="image/png")

    @post("/shares/{share:str}/extend", sync_to_thread=True, status_code=200)
    def extend_share(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        share: FromPath[str],
        data: JSONBody[ExtendIn],
    ) -> dict[str, Any]:
        """Add 7–180 days to a link (from its end, or from now if it expired); at most 180 days
        from now.  A closed link cannot be reopened."""
        now = _now(request)
        with ctx.db.writer() as s:
            row = holder_shares.extend_share(
                s, holder.person_id, share, data.days, account_rules(ctx.settings), now=now
            )
            return _share_out(ctx, s, row, now)

    @post("/shares/{share:str}/close", sync_to_thread=True, status_code=200)
    def close_share(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        share: FromPath[str],
    ) -> dict[str, Any]:
        """Close a link for good: it then verifies as closed and shows no records."""
        now = _now(request)
        with ctx.db.writer() as s:
            row = holder_shares.close_share(s, holder.person_id, share, now=now)
            return _share_out(ctx, s, row, now)

    # -- erasure ----------------------------------------------------------------------------

    @post("/erasure", sync_to_thread=True, status_code=200, cache_control=_NO_STORE)
    def erasure(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        holder: NamedDependency[accounts.Holder],
        data: JSONBody[ErasureIn],
    ) -> dict[str, Any]:
        """Erase your personal data (PIPL): your name and ID number, the salts that tie your
        records to you, your account, sessions and share links.  The records stay in the
        ledger, unlinkable to anyone; old certificates verify with "the holder's personal data
        was erased".  Needs your password again; cannot be undone."""
        receipt = _guard(
            lambda: erase_account(ctx, holder, data.password, _client(request), _now(request))
        )
        return receipt.to_json()


# --------------------------------------------------------------------------------------------
# Share links, as a verifier opens them


_HEADLINES: Final = {
    "valid": (
        "有效：以下为持有人分享的学时记录，已与账本实时核对",
        "Valid: the records the holder shared, checked against the ledger now",
    ),
    "expired": (
        "已过期：此分享链接已超过有效期，不再显示记录",
        "Expired: this share link is past its validity; no records are shown",
    ),
    "closed": (
        "已关闭：持有人已关闭此分享链接，不再显示记录",
        "Closed: the holder closed this share link; no records are shown",
    ),
    "erased": (
        "已关闭：持有人已申请删除个人信息",
        "Closed: the holder's personal data was erased",
    ),
    "unknown": ("未找到：没有此分享链接", "Unknown: there is no such share link"),
}


def share_report(ctx: Context, token: str, via: str, client: str, now: datetime) -> dict[str, Any]:
    """What a share link shows (the page renders the same): the link's verdict and, only when
    it is valid, the records in scope with their current status and the compliance."""
    with ctx.db.writer() as s:
        opened = holder_shares.open_share(
            s, token[:_MAX_SHARE_TOKEN], client_tag(ctx.vault, client), via, now=now
        )
    if opened is None:
        verdict = "unknown"
    elif opened.status == "active":
        verdict = "valid"
    elif opened.closed_reason == "erased":
        verdict = "erased"
    else:
        verdict = opened.status
    zh, en = _HEADLINES[verdict]
    out: dict[str, Any] = {
        "verdict": "closed" if verdict == "erased" else verdict,
        "valid": verdict == "valid",
        "headline": {"zh": zh, "en": en},
        "share": None if opened is None else opened.meta(),
        "holder": None,
        "records": [],
        "compliance": [],
        "notes": [],
    }
    if verdict == "erased":
        # The same words as on an old certificate's verification (certificates.verifier).
        out["notes"].append(
            {"zh": "持有人已申请删除个人信息", "en": "the holder's personal data was erased"}
        )
    if opened is None or verdict != "valid" or opened.person_id is None:
        return out
    with ctx.db.reader() as s:
        person = s.get(Person, opened.person_id)
        if person is not None and person.sealed is not None:
            data = ctx.vault.open(person.sealed, person.lookup)
            out["holder"] = {
                "name": mask_name(data["name"]),
                "id_number": mask_id(data["id_number"]),
            }
        chains, years = holder_shares.scope_chains(s, opened)
        verifier = ctx.verifier()
        for chain in chains:
            report = verifier.verify_records(s, [chain.latest])
            shown = dict(report.records[0])
            shown.pop("holder", None)
            shown |= {
                "status": chain.status,
                "versions": len(chain.versions),
                "verdict": report.verdict,
                "checks": [c.to_json() for c in report.checks],
            }
            out["records"].append(shown)
        if years:
            everything = holder_records.chains_of(s, opened.person_id)
            out["compliance"] = [
                holder_records.compliance_json(r)
                for r in holder_records.compliance(s, everything, years)
            ]
    return out


def _e(value: object) -> str:
    return html.escape(str(value))


_PAGE: Final = {
    "zh": {
        "title": "继续教育学时分享核验",
        "holder": "持有人",
        "scope": "分享范围",
        "valid_until": "有效期至",
        "compliance": "学时达标情况",
        "records": "学时记录",
        "class": "培训项目",
        "base": "培训基地",
        "hours": "学时",
        "dates": "培训日期",
        "status": "记录状态",
        "checks": "核验项目",
        "met": "达标",
        "not_met": "未达标",
        "other": "English",
        "scopes": {
            "record": "单条记录",
            "year": "年度记录",
            "transcript": "全部记录",
            "title-check": "职称评审周期验证",
        },
        "statuses": {"current": "现行有效", "revoked": "已撤销"},
        "none": "（此范围内没有记录）",
    },
    "en": {
        "title": "Continuing-education records shared by their holder",
        "holder": "Holder",
        "scope": "Scope",
        "valid_until": "Valid until",
        "compliance": "Requirement per year",
        "records": "Records",
        "class": "Class",
        "base": "Base",
        "hours": "Hours (学时)",
        "dates": "Dates",
        "status": "Status",
        "checks": "Checks",
        "met": "met",
        "not_met": "NOT met",
        "other": "中文",
        "scopes": {
            "record": "one record",
            "year": "one year",
            "transcript": "all records",
            "title-check": "title-application check",
        },
        "statuses": {"current": "current", "revoked": "revoked"},
        "none": "(no records in this scope)",
    },
}


def render_share_page(report: dict[str, Any], lang: str, switch: str) -> str:
    """The verifier's page of a share link: no JavaScript, masked holder data."""
    t: dict[str, Any] = _PAGE[lang]
    verdict = report["verdict"]
    cls = "ok" if report["valid"] else ("warn" if verdict == "expired" else "bad")
    body = [
        f'<div class="verdict {cls}" id="verdict" data-verdict="{_e(verdict)}">'
        f"{_e(report['headline'][lang])}</div>"
    ]
    share = report["share"]
    if report["valid"] and share is not None:
        holder = report["holder"] or {"name": "—", "id_number": "—"}
        years = share["years"]
        scope = t["scopes"].get(share["scope"], share["scope"])
        if years:
            scope += f" {years[0]}–{years[-1]}" if len(years) > 1 else f" {years[0]}"
        body.append(
            "<table>"
            f"<tr><th>{t['holder']}</th><td>{_e(holder['name'])} · {_e(holder['id_number'])}</td></tr>"
            f"<tr><th>{t['scope']}</th><td>{_e(scope)}</td></tr>"
            f"<tr><th>{t['valid_until']}</th><td>{_e(share['expires_at'])}</td></tr>"
            "</table>"
        )
        if report["compliance"]:
            rows = "".join(
                f"<tr><th>{_e('–'.join(str(y) for y in sorted({c['years'][0], c['years'][-1]})))}</th>"
                f'<td><b class="{"y" if c["met"] else "n"}">'
                f"{t['met'] if c['met'] else t['not_met']}</b> "
                f"{_e(c['summary'][lang])}</td></tr>"
                for c in report["compliance"]
            )
            body.append(f"<h2>{t['compliance']}</h2><table>{rows}</table>")
        body.append(f"<h2>{t['records']}</h2>")
        if not report["records"]:
            body.append(f"<p>{t['none']}</p>")
        for r in report["records"]:
            checks = "".join(
                f'<li><span class="{"y" if c["ok"] else ("q" if c["ok"] is None else "n")}">'
                f"{'✓' if c['ok'] else ('–' if c['ok'] is None else '✗')}</span> "
                f"{_e(c['reason'][lang])}</li>"
                for c in r["checks"]
            )
            status = t["statuses"].get(r["status"], r["status"])
            body.append(
                f'<table class="record" data-record="{_e(r["record"])}" data-status="{_e(r["status"])}">'
                f"<tr><th>{t['class']}</th><td>{_e(r['class_title'])} ({_e(r['class_code'])})</td></tr>"
                f"<tr><th>{t['base']}</th><td>{_e(r['base'])}</td></tr>"
                f"<tr><th>{t['hours']}</th><td>{_e(r['hours'])} · {_e(r['category'])} · {_e(r['mode'])}</td></tr>"
                f"<tr><th>{t['dates']}</th><td>{_e(r['start'])} – {_e(r['end'])}</td></tr>"
                f'<tr><th>{t["status"]}</th><td><b class="{"y" if r["status"] == "current" else "n"}">'
                f"{_e(status)}</b> <small>#{_e(r['ledger_index'])} {_e(r['record'])}</small></td></tr>"
                f"<tr><th>{t['checks']}</th><td><ul>{checks}</ul></td></tr>"
                "</table>"
            )
    for note in report["notes"]:
        body.append(f"<p>{_e(note[lang])}</p>")
    return (
        f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{t['title']}</title><style>{_CSS}</style></head><body>"
        f"<h1>{t['title']}</h1>{''.join(body)}"
        f'<p><small><a href="{_e(switch)}">{t["other"]}</a></small></p>'
        "</body></html>"
    )


class ShareController(Controller):
    """What a verifier opens: every visit is logged for the holder (time, door, outcome and a
    keyed hash of the network — never an address)."""

    tags = ("accounts",)

    @get(
        ["/S/{token:str}", "/s/{token:str}"],
        cache_control=_NO_STORE,
        media_type="text/html; charset=utf-8",
        # The HTML page stays out of the API reference (as the /V/ pages do); its JSON twin is
        # /api/v1/shares/{token}.
        include_in_schema=False,
    )
    async def page(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        token: FromPath[str],
        lang: Lang = "zh",
    ) -> Response[str]:
        """A share link's page (what the QR code opens): verdict, and when valid the records
        with their current status and the per-year requirement."""
        now, client = _now(request), _client(request)
        report = await anyio.to_thread.run_sync(share_report, ctx, token, "page", client, now)
        other = "en" if lang == "zh" else "zh"
        return Response(
            # Relative ("?lang=en"), as on /V/: the page never repeats the path it was given.
            render_share_page(report, lang, f"?lang={other}"),
            media_type="text/html; charset=utf-8",
        )

    @get("/api/v1/shares/{token:str}", sync_to_thread=True, cache_control=_NO_STORE)
    def api(
        self, request: Request[Any, Any, Any], ctx: NamedDependency[Context], token: FromPath[str]
    ) -> dict[str, Any]:
        """A share link as JSON: ``verdict`` (valid, expired, closed, unknown); when valid,
        ``records`` (each with ``status``, ``verdict`` and named ``checks``) and
        ``compliance`` per year or cycle."""
        return share_report(ctx, token, "api", _client(request), _now(request))
