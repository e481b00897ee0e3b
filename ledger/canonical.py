"""Canonical JSON: RFC 8785, the JSON Canonicalization Scheme (JCS).

Anything the ledger hashes or signs as JSON goes through :func:`canonicalize` first, so that two
parties holding the same JSON *value* derive the same bytes, whatever key order, whitespace or
number spelling their serializer used.  The serialization itself is the ``rfc8785`` package's;
this module only fixes the policy around it and the error family.

Rules and invariants
--------------------
* Input is the JSON data model as Python builds it: ``dict`` with ``str`` keys, ``list`` or
  ``tuple``, ``str``, ``int``, ``float``, ``bool`` and ``None``.  Nothing is converted
  implicitly: ``Decimal``, ``datetime``, ``bytes``, sets, enums that are not ``str`` subclasses
  and non-``str`` keys are refused, so that no value is signed in a form its producer did not
  choose on purpose.
* Numbers are IEEE 754 doubles in JCS (RFC 8785 §3.2.2.3).  An ``int`` is accepted only within
  ±(2**53 − 1), the I-JSON safe range (RFC 7493 §2.2) that RFC 8785 requires: beyond it a
  JavaScript or Go verifier would silently round the value and hash different bytes than we
  did, so such input raises :class:`~ledger.errors.FormatError` rather than being rounded here.
  Send large quantities as strings.
* The same bound applies to a ``float`` whose canonical form would be an integer literal, that
  is 2**53 − 1 < |x| < 10**21 (JCS writes ``1e20`` as ``100000000000000000000``).  Reading
  that canonical text back gives an ``int`` the rule above refuses, so accepting it would break
  the invariant below.  From 10**21 up JCS uses exponent form (``1e+30``), which reads back as
  a ``float`` and is accepted.
* Invariant: for every accepted ``x``,
  ``canonicalize(json.loads(canonicalize(x))) == canonicalize(x)``; canonical bytes are always
  acceptable input again.
* ``NaN`` and ±infinity are not JSON at all: :class:`~ledger.errors.FormatError`.
* Strings (keys and values) must be encodable as UTF-8; a lone surrogate such as ``"\\ud800"``
  (which Python's ``json`` module produces from such escapes without complaint) raises
  :class:`~ledger.errors.FormatError`.
* Numbers canonicalize by value, not by Python type: ``56``, ``56.0`` and ``5.6e1`` all become
  ``56``, and ``-0.0`` becomes ``0`` (ECMAScript ``Number.prototype.toString``).
* Nesting deeper than the interpreter's recursion limit raises
  :class:`~ledger.errors.FormatError` instead of crashing the caller with ``RecursionError``.
* Every refusal names the JSON path of the first offending value (``$['a'][2]['b']``) and
  says what was expected and what was found.

:func:`parse_json` is the matching strict reader for JSON received from outside: it refuses
duplicate object keys (parsers disagree on which one wins, so a signature could be checked over
one value while an application reads the other) and the non-JSON literals ``NaN``/``Infinity``.

This module is pure (no I/O), so the ``verification`` package may build on it.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, cast

import rfc8785

from ledger.errors import FormatError

__all__ = ["MAX_SAFE_INTEGER", "canonicalize", "digest", "parse_json"]

#: Largest integer magnitude JCS (via I-JSON) represents exactly: 2**53 − 1.
MAX_SAFE_INTEGER = 2**53 - 1
# From this magnitude up, ECMAScript (hence JCS) writes numbers in exponent form.
_EXPONENT_FORM_FROM = 1e21


def canonicalize(obj: object) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of the JSON value ``obj``.

    Raises :class:`~ledger.errors.FormatError` for values JCS cannot represent (see the module
    docstring for the policy), naming the first offending path.
    """
    fast = _plain_json(obj)
    if fast is not None:
        return fast
    # Our own walk first: it enforces the policy rfc8785 does not (floats with integer
    # canonical forms beyond the safe range) and locates every problem by JSON path.
    if not _acceptable(obj):
        raise FormatError(f"cannot canonicalize JSON (RFC 8785): {_locate_problem(obj)}")
    try:
        # rfc8785's annotations describe its JSON union; we accept `object` and let it refuse.
        return rfc8785.dumps(cast("Any", obj))
    except RecursionError as exc:
        raise FormatError(
            "cannot canonicalize JSON (RFC 8785): expected a JSON value of bounded depth, "
            "found nesting beyond the recursion limit"
        ) from exc
    except (rfc8785.CanonicalizationError, UnicodeError) as exc:
        # Not expected after the walk; kept so a library refusal still arrives as FormatError.
        raise FormatError(f"cannot canonicalize JSON (RFC 8785): {exc}") from exc


_PLAIN_SCALARS = (str, bool, type(None))


def _plain_json(obj: object) -> bytes | None:
    """The canonical bytes of a *plain* value, or None to take the general path.

    Plain: objects with ASCII keys, arrays, strings, booleans, null and safe integers — no
    floats.  For such values the standard library's serialisation with sorted keys, no
    whitespace and no ASCII escaping is byte for byte JCS: ASCII keys sort the same by code
    point as by UTF-16 code unit, integers print alike, and both escape exactly the quote,
    the backslash and C0 controls (short forms for b, t, n, f, r; lower-case u00xx escapes for
    the rest).  A lone surrogate fails the UTF-8 encoding and falls back too.  This path is
    what keeps 10,000-entry batches cheap; ``tests/test_canonical.py`` checks it against
    rfc8785 on generated values.
    """
    stack: list[object] = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            for key, item in value.items():  # type: ignore[attr-defined]
                if type(key) is not str or not key.isascii():
                    return None
                stack.append(item)
        elif kind is list:
            stack.extend(value)  # type: ignore[arg-type]
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
                return None
        elif kind not in _PLAIN_SCALARS:
            return None
    try:
        text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return text.encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return None


def digest(obj: object) -> bytes:
    """Return SHA-256 over :func:`canonicalize` of ``obj`` (32 bytes)."""
    return hashlib.sha256(canonicalize(obj)).digest()


def parse_json(data: str | bytes) -> Any:
    """Parse JSON text strictly: duplicate keys and ``NaN``/``Infinity`` raise ``FormatError``.

    Numbers keep Python's usual mapping (integers to ``int``, the rest to ``float``), so an
    integer beyond the safe range parses but is refused later by :func:`canonicalize`.
    """

    def reject_constant(name: str) -> Any:
        raise FormatError(f"invalid JSON: expected a number, found the non-JSON literal {name}")

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                raise FormatError(f"invalid JSON: expected unique object keys, found {key!r} twice")
            obj[key] = value
        return obj

    try:
        return json.loads(data, object_pairs_hook=unique_keys, parse_constant=reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise FormatError("invalid JSON: nesting is deeper than this parser supports") from exc


def _acceptable(obj: object) -> bool:
    """Whether the policy accepts every value under ``obj`` (the fast path: no paths built)."""
    # Iterative, so that checking an over-deep value cannot itself overflow the stack.
    stack: list[object] = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str) or not _utf8_ok(key):
                    return False
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif _problem(value) is not None:
            return False
    return True


def _locate_problem(obj: object) -> str:
    """Describe the first value under ``obj`` that the policy refuses, with its JSON path."""
    # The slow path, run only after _acceptable said no: it builds a path for every node.
    stack: list[tuple[str, object]] = [("$", obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            items = list(value.items())
            for key, _ in items:
                if not isinstance(key, str):
                    kind = type(key).__name__
                    return f"at {path}: expected string object keys, found {kind} key {key!r}"
                if not _utf8_ok(key):
                    return (
                        f"at {path}: expected a UTF-8 encodable key, found {key!r} (lone surrogate)"
                    )
            stack.extend((f"{path}[{key!r}]", child) for key, child in reversed(items))
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(value))))
        else:
            problem = _problem(value)
            if problem is not None:
                return f"at {path}: {problem}"
    return "no offending value found"  # unreachable when _acceptable(obj) is False


def _problem(value: object) -> str | None:
    """Why JCS refuses this scalar, or ``None`` if it is fine (containers are walked by caller)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return None
        return (
            f"expected an integer within ±(2**53 − 1) = ±{MAX_SAFE_INTEGER}, found {value}; "
            "send larger quantities as strings"
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"expected a finite number, found {value!r} (NaN and infinities are not JSON)"
        if MAX_SAFE_INTEGER < abs(value) < _EXPONENT_FORM_FROM:
            canonical = rfc8785.dumps(value).decode()
            return (
                f"expected a number within ±(2**53 − 1) or of magnitude >= 1e21, found "
                f"{value!r}, whose canonical form {canonical} reads back as an integer beyond "
                "the safe range; send such quantities as strings"
            )
        return None
    if isinstance(value, str):
        if _utf8_ok(value):
            return None
        return f"expected UTF-8 encodable text, found {value!r} (lone surrogate)"
    return (
        f"expected a JSON value (dict, list, str, int, float, bool, None), "
        f"found {type(value).__name__}"
    )


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
