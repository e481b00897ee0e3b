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
from api.routes.log import LogController
from api.settings import Settings


def create_app(settings: Settings, context: Context | None = None) -> Litestar:
    ctx = context or Context.from_settings(settings)

    def provide_ctx() -> Context:
        return ctx

    @get("/healthz", sync_to_thread=False, include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def _after_write(request: Request[Any, Any, Any]) -> None:
        # The leaf-hash lookup index is kept off the append transaction (see
        # ledger.storage.models.LogLeafIndex); catch it up once a write has answered.
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                await anyio.to_thread.run_sync(ctx.index_leaves)
            except Exception:  # noqa: BLE001 - lookups scan the tail, so this may wait
                logging.getLogger("celedger.api").exception("leaf indexing failed")

    def _shutdown(app: Litestar) -> None:
        if context is None:
            ctx.close()

    logging.getLogger("celedger").setLevel(settings.log_level)
    app = Litestar(
        route_handlers=[LogController, healthz],
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
