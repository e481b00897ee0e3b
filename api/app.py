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

from api.context import Context
from api.problems import EXCEPTION_HANDLERS
from api.routes.certificates import CertificateController, KeysController
from api.routes.completions import CompletionController, TemplateController
from api.routes.directory import DirectoryController
from api.routes.log import LogController
from api.routes.registry import RegistryController
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
            home,
            healthz,
        ],
        # Batches are the largest bodies the service takes; anything larger is a 413.
        request_max_body_size=settings.max_batch_bytes,
        dependencies={"ctx": Provide(provide_ctx, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="CE Ledger",
            version="1",
            path="/schema",
            render_plugins=[JsonRenderPlugin(), SwaggerRenderPlugin()],
        ),
        on_shutdown=[_shutdown],
        after_response=_after_write,
        state=State({"ctx": ctx}),
        debug=False,
    )
    return app
