"""JSON request bodies: every way a body can be unreadable is the client's mistake (a 400).

Litestar decodes a JSON body with msgspec and answers 400 for a ``DecodeError``, but msgspec
raises two other errors that Litestar lets through as a 500: ``UnicodeDecodeError`` for bytes
that are not UTF-8, and ``RecursionError`` for nesting deeper than it decodes (both found by
tests/test_bad_inputs.py).  And a NUL character decodes fine, is stored by SQLite, and is
refused by PostgreSQL (which cannot hold it in text) — the same request would answer 201 on
one database and an error on the other.  :class:`JsonBodyRequest` turns all three into a
400 problem that says what is wrong and where.

Batches do not come through here: they are read from the raw body by ``ledger.completions``,
whose rules refuse control characters cell by cell.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException

__all__ = ["JsonBodyRequest", "nul_path"]


def nul_path(value: Any) -> str | None:
    """Where in a decoded JSON value a string (or key) holds a NUL, as ``a.b[2]``; or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:  # iterative: the value may be as deep as the decoder allowed
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path or "body"
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = f"{path}.{key}" if path else str(key)
                if "\x00" in str(key):
                    return name
                stack.append((name, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
    return None


class JsonBodyRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body errors all answer 400 naming the problem."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except UnicodeDecodeError as exc:
            raise SerializationException(
                f"the body is not UTF-8 text: expected UTF-8, found byte "
                f"0x{exc.object[exc.start]:02x} at position {exc.start}"
            ) from None
        except RecursionError:
            raise SerializationException(
                "the JSON body is nested deeper than this service reads"
            ) from None
        where = nul_path(value)
        if where is not None:
            raise SerializationException(
                f"{where}: contains a NUL character (U+0000), which no text here may hold"
            )
        return value
