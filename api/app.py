"""``create_app(settings)``: the Litestar application factory."""

from __future__ import annotations

import logging

from litestar import Litestar, get
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
        state=State({"ctx": ctx}),
        debug=False,
    )
    return app
