"""Per-client rate limit on the public verification routes: O(1) per request.

Litestar's ``RateLimitMiddleware`` keeps every request's timestamp per client and decodes and
re-encodes that list on every request: at the default 600 requests a minute a client's list
holds up to 600 entries, and the limit cost ~0.5 ms per request (``bench/bench_verify.py``,
"rate limit cost") — more than answering a verification that was answered before.  This one
keeps two counters per client (this minute, the last) and estimates the sliding minute from
them, the approximation nginx's and Cloudflare's limiters use: exact at window boundaries,
within one window's worth in between, and never below the true count of the current window.

The limit is per process (in memory); behind several replicas the front proxy's own limit
is the global one.  Clients are told ``RateLimit-Limit`` / ``RateLimit-Remaining`` /
``RateLimit-Reset`` and, when refused, ``Retry-After`` (429, a problem document).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["client_rate_limit"]

WINDOW: Final = 60.0
# Clients not seen for two windows are forgotten once the table holds this many.
_SWEEP_AT: Final = 100_000


def client_rate_limit(
    limit: int, applies: Callable[[str], bool], clock: Callable[[], float] = time.monotonic
) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware: at most ``limit`` requests per client per minute on paths ``applies``."""
    # client → [window number, count in that window, count in the window before]
    counts: dict[str, list[int]] = {}

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or not applies(scope["path"]):
                await app(scope, receive, send)
                return
            now = clock()
            window, into = divmod(now, WINDOW)
            w = int(window)
            peer = scope.get("client")
            client = peer[0] if peer else "unknown"
            entry = counts.get(client)
            if entry is None:
                if len(counts) >= _SWEEP_AT:
                    for key in [k for k, v in counts.items() if v[0] < w - 1]:
                        del counts[key]
                entry = counts[client] = [w, 0, 0]
            elif entry[0] != w:
                entry[2] = entry[1] if entry[0] == w - 1 else 0
                entry[0], entry[1] = w, 0
            # The last window's count weighted by how much of it the sliding minute still
            # covers, plus this window's.
            used = entry[2] * (1.0 - into / WINDOW) + entry[1]
            reset = int(WINDOW - into) + 1
            if used >= limit:
                raise TooManyRequestsException(
                    detail=f"more than {limit} verification requests a minute from this client",
                    headers={
                        "Retry-After": str(reset),
                        "RateLimit-Limit": str(limit),
                        "RateLimit-Remaining": "0",
                        "RateLimit-Reset": str(reset),
                    },
                )
            entry[1] += 1
            remaining = str(max(0, int(limit - used - 1)))

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableScopeHeaders.from_message(message)
                    headers["RateLimit-Limit"] = str(limit)
                    headers["RateLimit-Remaining"] = remaining
                    headers["RateLimit-Reset"] = str(reset)
                await send(message)

            await app(scope, receive, send_wrapper)

        return middleware

    return factory
