"""The public log routes through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64

import pytest

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.tiles import decode_entry_bundle


def _append(ctx, n: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    with ctx.db.writer() as s:
        ctx.log.append(
            s, [("policy", b'{"kind":"policy","n":%d,"v":1}' % i) for i in range(start, start + n)]
        )


def test_empty_log_has_no_checkpoint(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/log/checkpoint")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_checkpoint_tiles_and_proofs(client, ctx) -> None:  # type: ignore[no-untyped-def]
    _append(ctx, 300)
    _append(ctx, 5, 300)
    r = client.get("/log/checkpoint")
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    cp, _ = open_checkpoint(r.text, ctx.settings.origin, [ctx.log_verifier])
    assert cp.size == 305

    full = client.get("/log/tile/0/000")
    assert full.status_code == 200 and len(full.content) == 8192
    assert "immutable" in full.headers["cache-control"]
    part = client.get("/log/tile/0/001.p/49")
    assert part.status_code == 200 and len(part.content) == 49 * 32
    bundle = client.get("/log/tile/entries/001.p/49")
    entries = decode_entry_bundle(bundle.content)
    assert len(entries) == 49 and merkle.leaf_hash(entries[0]) == part.content[:32]

    r = client.get("/api/v1/log/proof/inclusion", params={"index": 7})
    body = r.json()
    proof = [base64.b64decode(p) for p in body["proof"]]
    merkle.verify_inclusion(base64.b64decode(body["leaf_hash"]), 7, 305, proof, cp.root_hash)
    by_hash = client.get("/api/v1/log/proof/inclusion", params={"leaf_hash": body["leaf_hash"]})
    assert by_hash.json()["index"] == 7
    by_hex = client.get(
        "/api/v1/log/proof/inclusion",
        params={"leaf_hash": base64.b64decode(body["leaf_hash"]).hex(), "size": 300},
    )
    assert (
        by_hex.json()["tree_size"] == 300 and by_hex.json()["checkpoint"].splitlines()[1] == "300"
    )

    c = client.get("/api/v1/log/proof/consistency", params={"old": 300, "new": 305}).json()
    old_root = open_checkpoint(
        by_hex.json()["checkpoint"], ctx.settings.origin, [ctx.log_verifier]
    )[0].root_hash
    merkle.verify_consistency(
        300, 305, [base64.b64decode(p) for p in c["proof"]], old_root, cp.root_hash
    )
    e = client.get("/api/v1/log/entries/3")
    assert e.status_code == 200 and e.content == b'{"kind":"policy","n":3,"v":1}'


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/log/proof/inclusion", {"index": 10}),
        ("/api/v1/log/proof/inclusion", {"index": -1}),
        ("/api/v1/log/proof/inclusion", {"index": "abc"}),
        ("/api/v1/log/proof/inclusion", {"index": "9" * 40}),
        ("/api/v1/log/proof/inclusion", {"index": 1, "size": 11}),
        ("/api/v1/log/proof/inclusion", {"index": 1, "leaf_hash": "00" * 32}),
        ("/api/v1/log/proof/inclusion", {}),
        ("/api/v1/log/proof/inclusion", {"leaf_hash": "zz"}),
        ("/api/v1/log/proof/consistency", {"old": 5, "new": 4}),
        ("/api/v1/log/proof/consistency", {"old": -2}),
        ("/api/v1/log/proof/consistency", {"old": 1, "new": 99}),
        ("/api/v1/log/proof/consistency", {"old": "1e3"}),
        ("/api/v1/log/proof/consistency", {}),
    ],
)
def test_bad_proof_requests_are_400(client, ctx, path: str, params: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    _append(ctx, 10)
    r = client.get(path, params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/log/tile/0/1234",
        "/log/tile/0/x1/234",
        "/log/tile/0/000.p/0",
        "/log/tile/0/000.p/256",
        "/log/tile/64/000",
        "/log/tile/../../etc/passwd",
        "/log/tile/0/001",
        "/log/tile/0/000.p/9",
        "/log/tile/entries/001",
        "/log/tile/entries/000.p/11",
        "/log/tile/1/000",
        "/log/tile/%2e%2e/x",
        "/api/v1/log/entries/10",
        "/api/v1/log/leaf_hash=unknown",
    ],
)
def test_bad_tile_paths_are_404(client, ctx, path: str) -> None:  # type: ignore[no-untyped-def]
    _append(ctx, 10)
    r = client.get(path)
    assert r.status_code in (400, 404), r.text
    assert r.status_code != 500


def test_openapi_served(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "/api/v1/log/proof/inclusion" in r.json()["paths"]
