"""A GET straight on an ASGI app (no tests here): for what the test clients cannot do — send a
path exactly as given (they resolve ``..``), come from a chosen client address, or have many
requests in flight at once (they send one at a time)."""

from __future__ import annotations

from typing import Any


async def asgi_get(
    app: Any, raw_path: bytes | str, client: str = "127.0.0.1"
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of ``GET raw_path`` (a query after ``?``) from ``client``."""
    raw = raw_path.encode("latin-1") if isinstance(raw_path, str) else raw_path
    path, _, query = raw.partition(b"?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path.decode("latin-1"), "raw_path": path,
        "query_string": query, "root_path": "", "headers": [(b"host", b"testserver")],
        "client": (client, 50000), "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def collect(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, collect)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body
