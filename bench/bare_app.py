"""The baseline of ``bench/bench_verify.py``: a bare Litestar app with one route, at the same path
shape as the verification API, returning a constant.

Served by the same uvicorn command line (same workers, same options) as the real service, so
the ratio verify / bare is what the verification itself costs on top of the HTTP server and
the framework.

    python -m uvicorn bench.bare_app:app_factory --factory ...
"""

from __future__ import annotations

from typing import Final

from litestar import Litestar, get

_CONSTANT: Final = {"verdict": "valid", "valid": True}


@get("/api/v1/verify/{token:str}", sync_to_thread=False)
def verify(token: str) -> dict[str, object]:
    """A constant, whatever the token."""
    return _CONSTANT


def app_factory() -> Litestar:
    return Litestar(route_handlers=[verify], openapi_config=None, debug=False)
