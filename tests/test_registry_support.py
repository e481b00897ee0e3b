"""Helpers shared by the registry tests (no tests here).

``prove`` is how every test shows that a governance act is in the ledger: it fetches the
entry and its inclusion proof over HTTP and verifies the proof against the signed checkpoint.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.entries import decode_entry
from ledger.registry.demo import demo_uscc
from ledger.registry.services import bootstrap_authority_key, local_date
from ledger.storage.log import Log

API = "/api/v1/registry"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def this_year() -> int:
    return local_date(datetime.now(UTC)).year


def national_key(ctx: Any) -> str:
    with ctx.db.writer() as s:
        return bootstrap_authority_key(s, "CN", "test", log=ctx.log)


def log_size(ctx: Any) -> int:
    with ctx.db.reader() as s:
        return Log.size(s)


def prove(client: Any, ctx: Any, index: int, kind: str) -> dict[str, Any]:
    """Verify entry ``index`` is in the signed tree and is of ``kind``; return its payload."""
    r = client.get("/api/v1/log/proof/inclusion", params={"index": index})
    assert r.status_code == 200, r.text
    body = r.json()
    cp, _ = open_checkpoint(body["checkpoint"], ctx.settings.origin, [ctx.log_verifier])
    entry = client.get(f"/api/v1/log/entries/{index}")
    assert entry.status_code == 200
    leaf = merkle.leaf_hash(entry.content)
    assert base64.b64decode(body["leaf_hash"]) == leaf
    proof = [base64.b64decode(p) for p in body["proof"]]
    merkle.verify_inclusion(leaf, index, cp.size, proof, cp.root_hash)
    decoded = decode_entry(entry.content)
    assert decoded.kind == kind, (decoded.kind, kind)
    return dict(decoded.payload)


def problem(r: Any, status: int, rule: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem with ``status`` whose detail names ``rule``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"].startswith("https://")
    assert f"rule {rule}:" in body["detail"], body["detail"]
    return body


def contact(n: int) -> dict[str, str]:
    return {"address": f"示例路{n}号", "phone": f"0812-55{n:05d}", "email": f"office{n}@example.cn"}


def application(n: int, jurisdiction: str, unit: int) -> dict[str, Any]:
    return {
        "uscc": demo_uscc(1000 + n),
        "title": f"测试基地{n}",
        "construction_unit": f"测试学院{n}",
        "jurisdiction": jurisdiction,
        "management_unit": unit,
        "contact": contact(n),
        "reason": "审核同意，推荐认定",
    }


def plan_class(code: str, year: int, **over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "code": code,
        "title": "新技术研修班",
        "category": "专业",
        "mode": "面授",
        "hours": "12.5",
        "start": f"{year}-04-01",
        "end": f"{year}-04-03",
        "capacity": 80,
        "fee_yuan": "680.00",
    }
    c.update(over)
    return c
