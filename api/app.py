"""``create_app(settings)``: the Litestar application factory."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.types import Message, Scope

from api.apidoc import complete_openapi
from api.bodies import JsonBodyRequest
from api.context import Context
from api.ops import metrics, metrics_middleware, readyz
from api.problems import EXCEPTION_HANDLERS
from api.ratelimit import client_rate_limit
from api.routes.certificates import CertificateController, KeysController
from api.routes.completions import CompletionController, TemplateController
from api.routes.directory import DirectoryController
from api.routes.holder import ActivationCodeController, HolderController, ShareController
from api.routes.holder_web import HolderPagesController
from api.routes.log import LogController
from api.routes.registry import RegistryController
from api.routes.verify import UploadController, VerifyController
from api.routes.witness import WitnessController
from api.settings import Settings

HOME_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>CE Ledger 继续教育学时账本</title>
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.6}</style>
</head><body><h1>CE Ledger · 专业技术人员继续教育学时账本</h1>
<p>A verifiable, append-only record of continuing-education credits.</p><ul>
<li><a href="/directory">继续教育基地名录 / Directory of CE bases</a></li>
<li><a href="/schema">API reference (OpenAPI)</a></li>
<li><a href="/log/checkpoint">Latest signed checkpoint</a> · tiles under <code>/log/tile/</code></li>
</ul></body></html>"""


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    # A token URL must never travel to another site in a Referer header.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


def _is_public_verification(path: str) -> bool:
    # Share links (/S/<token>, /api/v1/shares/<token>) are public verification too.
    return path.startswith(
        ("/V/", "/v/", "/api/v1/verify", "/verify", "/S/", "/s/", "/api/v1/shares/")
    )


async def _security_headers(message: Message, scope: Scope) -> None:
    if message["type"] == "http.response.start":
        path = scope.get("path", "")
        if path.startswith("/schema"):
            return  # the API browser loads its own scripts and styles
        headers = list(message.get("headers", []))
        names = {k.lower() for k, _ in headers}
        headers += [(k, v) for k, v in _SECURITY_HEADERS if k not in names]
        message["headers"] = headers


def create_app(settings: Settings, context: Context | None = None) -> Litestar:
    ctx = context or Context.from_settings(settings)

    def provide_ctx() -> Context:
        return ctx

    @get("/", sync_to_thread=False, include_in_schema=False, media_type="text/html; charset=utf-8")
    def home() -> str:
        return HOME_PAGE

    @get("/healthz", sync_to_thread=False, include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def _after_write(request: Request[Any, Any, Any]) -> None:
        # The leaf-hash lookup index is kept off the append transaction (see
        # ledger.storage.models.LogLeafIndex); catch it up once a write has answered.
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                await anyio.to_thread.run_sync(ctx.index_leaves)
            except Exception:
                logging.getLogger("celedger.api").exception("leaf indexing failed")

    def _shutdown(app: Litestar) -> None:
        if context is None:
            ctx.close()

    # Public verification is the most exposed surface: one client may not hammer it (see
    # api/ratelimit.py for why it is not Litestar's RateLimitMiddleware).
    limited = (
        [client_rate_limit(settings.verify_rate_per_minute, _is_public_verification)]
        if settings.verify_rate_per_minute
        else []
    )

    logging.getLogger("celedger").setLevel(settings.log_level)
    app = Litestar(
        route_handlers=[
            LogController,
            RegistryController,
            DirectoryController,
            CompletionController,
            TemplateController,
            CertificateController,
            KeysController,
            VerifyController,
            UploadController,
            ActivationCodeController,
            HolderController,
            ShareController,
            HolderPagesController,
            WitnessController,
            home,
            healthz,
            readyz,
            metrics,
        ],
        # Batches are the largest bodies the service takes; anything larger is a 413.
        request_max_body_size=settings.max_batch_bytes,
        dependencies={"ctx": Provide(provide_ctx, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        # Unreadable JSON bodies (not UTF-8, too deep, a NUL) are 400s, never 500s.
        request_class=JsonBodyRequest,
        openapi_config=OpenAPIConfig(
            title="CE Ledger",
            version="1",
            path="/schema",
            render_plugins=[JsonRenderPlugin(), SwaggerRenderPlugin()],
        ),
        on_shutdown=[_shutdown],
        # Metrics first, so that their latency includes what the rate limiter answers.
        middleware=[metrics_middleware, *limited],
        before_send=[_security_headers],
        after_response=_after_write,
        state=State({"ctx": ctx}),
        debug=False,
        # Logging is the process's (``celedger serve`` configures it: JSON or text, redacted);
        # Litestar's default would replace the root handler in every worker.
        logging_config=None,
    )
    # The document states every answer and body Litestar cannot infer (tests/test_fuzz_openapi.py).
    complete_openapi(app, _is_public_verification)
    return app
