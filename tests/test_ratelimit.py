"""The per-client limit on public verification (api/ratelimit.py), on a fake clock."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient

from api.problems import EXCEPTION_HANDLERS
from api.ratelimit import client_rate_limit
from tests.asgi_support import asgi_get


@get("/V/{token:str}")
async def page(token: FromPath[str]) -> str:
    return token


@get("/healthz")
async def healthz() -> str:
    return "ok"


def _app(now: list[float], limit: int = 5) -> Litestar:
    return Litestar(
        [page, healthz],
        middleware=[client_rate_limit(limit, lambda p: p.startswith("/V/"), clock=lambda: now[0])],
        exception_handlers=EXCEPTION_HANDLERS,
    )


def test_limit_per_client_per_minute_with_headers() -> None:
    now = [6000.0]  # a window boundary
    with TestClient(_app(now)) as client:
        answers = [client.get(f"/V/t{i}") for i in range(5)]
        assert [r.status_code for r in answers] == [200] * 5
        assert [r.headers["ratelimit-remaining"] for r in answers] == ["4", "3", "2", "1", "0"]
        assert answers[0].headers["ratelimit-limit"] == "5"
        refused = client.get("/V/t5")
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["code"] == "rate-limited"
        assert (
            refused.headers["retry-after"] == "61" and refused.headers["ratelimit-remaining"] == "0"
        )
        # Other routes are not limited by the verification budget, nor other clients.
        assert client.get("/healthz").status_code == 200
        assert _status_from(client.app, "/V/x", "10.0.0.2") == 200


def _status_from(app: Any, path: str, host: str) -> int:
    return anyio.run(asgi_get, app, path, host)[0]


def test_the_minute_slides() -> None:
    now = [6000.0]
    with TestClient(_app(now)) as client:
        assert all(client.get(f"/V/t{i}").status_code == 200 for i in range(5))
        # Half-way into the next window half of the last one still counts: 2.5 used → 2 more.
        now[0] = 6090.0
        codes = [client.get(f"/V/u{i}").status_code for i in range(4)]
        assert codes == [200, 200, 200, 429], codes
        # Two windows later nothing of it is left.
        now[0] = 6240.0
        assert all(client.get(f"/V/w{i}").status_code == 200 for i in range(5))
        assert client.get("/V/w5").status_code == 429
