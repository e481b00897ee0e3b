"""`celedger publish --to s3://BUCKET/PREFIX`: against moto's real S3 HTTP server, in process.

The objects are byte for byte what the directory publisher writes, with the cache headers the
`/log` routes answer with; a second pass puts only the new right edge and deletes the partial
tiles its full tiles supersede; a database that does not extend what the bucket holds is
refused with nothing written; and what the bucket serves verifies (a checkpoint signature,
inclusion proofs from its tiles, and `celedger audit --remote` over plain HTTP).
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from api.cli import main
from api.context import Context
from ledger import merkle, tiles
from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError, ProofError
from ledger.note import NoteSigner
from ledger.tiles import TileHashReader
from tests.completions_support import world
from tests.test_ops_publish import _files

PREFIX = "log/"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=5"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    # Werkzeug logs every request at INFO; the test output stays readable without it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class S3:
    """The test's own view of the bucket, and every call the publisher's client made."""

    def __init__(self, endpoint: str, bucket: str) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, region_name="us-east-1"
        )
        self.calls: list[tuple[str, str]] = []

    def hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "DeleteObjects":
            self.calls += [("DeleteObject", o["Key"]) for o in params["Delete"]["Objects"]]
        else:
            self.calls.append((model.name, params.get("Key", "")))

    def made(self, operation: str) -> set[str]:
        return {key.removeprefix(PREFIX) for op, key in self.calls if op == operation}

    def listing(self) -> dict[str, dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=PREFIX
        )
        return {
            o["Key"].removeprefix(PREFIX): {"etag": o["ETag"], "modified": o["LastModified"]}
            for page in pages
            for o in page.get("Contents", [])
        }

    def get(self, rel: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=PREFIX + rel)["Body"].read()
        return body

    def head(self, rel: str) -> dict[str, Any]:
        return dict(self.client.head_object(Bucket=self.bucket, Key=PREFIX + rel))


@pytest.fixture
def s3(
    endpoint: str, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[S3]:
    """A fresh, public-read bucket; the CLI configured for it and for the test's database."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("CELEDGER_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("CELEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CELEDGER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CELEDGER_ORIGIN", settings.origin)
    monkeypatch.chdir(tmp_path)
    bucket = S3(endpoint, f"celedger-{secrets.token_hex(6)}")
    bucket.client.create_bucket(Bucket=bucket.bucket)
    # A CDN origin: anyone may read the log's objects, as `audit --remote` does below.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket.bucket}/{PREFIX}*",
            }
        ],
    }
    bucket.client.put_bucket_policy(Bucket=bucket.bucket, Policy=json.dumps(policy))
    # The publisher's client comes from boto3's default session: count what it sends.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build.s3", bucket.hook)
    yield bucket


def _append(ctx: Any, n: int, kind: str = "ops.test") -> None:
    with ctx.db.writer() as s:
        ctx.log.append(
            s, [(kind, b'{"kind":"%s","n":%d,"v":1}' % (kind.encode(), i)) for i in range(n)]
        )


def _size(ctx: Any) -> int:
    with ctx.db.reader() as s:
        from ledger.storage.log import Log

        return int(Log.size(s))


def _same_as_directory(s3: S3, out: Path) -> int:
    files = _files(out)
    listed = s3.listing()
    assert set(listed) == set(files), set(listed) ^ set(files)
    for rel, path in files.items():
        assert s3.get(rel) == path.read_bytes(), rel
    return len(files)


def test_s3_objects_are_the_directory_publishers_with_the_routes_headers_and_verify(
    ctx: Any, client: Any, s3: S3, tmp_path: Path, capsys: Any, figure: Any
) -> None:
    world(ctx)
    _append(ctx, 300)  # past one full level-0 tile
    out = tmp_path / "pub"
    assert main(["publish", "--to", str(out)]) == 0
    assert main(["publish", "--to", f"s3://{s3.bucket}/log"]) == 0
    assert "published size" in capsys.readouterr().out
    count = _same_as_directory(s3, out)
    size = _size(ctx)
    assert f"tile/0/001.p/{size - 256}" in s3.listing() and "tile/0/000" in s3.listing()

    # Cache headers and content types: what the /log routes answer for the same path.
    kinds = {"full": 0, "partial": 0}
    for rel in s3.listing():
        head = s3.head(rel)
        served = client.get("/log/checkpoint" if rel == "checkpoint" else f"/log/{rel}")
        assert head["CacheControl"] == served.headers["cache-control"], rel
        assert head["ContentType"] == served.headers["content-type"], rel
        if rel == "checkpoint":
            assert head["CacheControl"] == SHORT
            assert head["ContentType"] == "text/plain; charset=utf-8"
            continue
        partial = tiles.parse_tile_path(rel).is_partial
        kinds["partial" if partial else "full"] += 1
        assert head["CacheControl"] == (SHORT if partial else IMMUTABLE), rel
        assert head["ContentType"] == "application/octet-stream", rel
    assert kinds["full"] >= 2 and kinds["partial"] >= 2, kinds

    # What the bucket serves verifies on its own: the checkpoint's signature, then inclusion
    # proofs built from its tiles for leaves read from its bundles.
    note = s3.get("checkpoint")
    cp, _ = open_checkpoint(note, ctx.settings.origin, [ctx.log_verifier])
    assert cp.size == size
    stranger = NoteSigner.generate(ctx.settings.origin).verifier()
    with pytest.raises(LedgerError):
        open_checkpoint(note, ctx.settings.origin, [stranger])
    reader = TileHashReader(
        size, lambda level, index, width: s3.get(tiles.tile_path(level, index, width))
    )
    bundles: dict[int, list[bytes]] = {}

    def entry(i: int) -> bytes:
        t = i // 256
        if t not in bundles:
            data = s3.get(tiles.entries_path(t, min(256, size - t * 256)))
            bundles[t] = tiles.decode_entry_bundle(data)
        return bundles[t][i % 256]

    checked = [0, 1, 255, 256, size // 2, size - 2, size - 1]
    for i in checked:
        proof = merkle.inclusion_proof(i, size, reader.read)
        merkle.verify_inclusion(merkle.leaf_hash(entry(i)), i, size, proof, cp.root_hash)
        # The same proof does not carry a neighbour's entry to the signed root.
        with pytest.raises(ProofError):
            merkle.verify_inclusion(
                merkle.leaf_hash(entry(i - 1 if i else 1)), i, size, proof, cp.root_hash
            )
    # And anyone can audit the bucket over plain HTTP, as a CDN would serve it.
    vkey = ctx.log.signer.verifier().to_vkey()
    remote = f"{s3.endpoint}/{s3.bucket}/{PREFIX}"
    code = main(["audit", "--remote", remote, "--origin", ctx.settings.origin, "--vkey", vkey])
    report = capsys.readouterr().out
    assert code == 0 and "audit clean" in report, report
    assert f"audited {size} entries" in report
    figure(
        f"publish-s3[{ctx.db.dialect}]: {count} objects = directory byte for byte, "
        f"{len(checked)} inclusion proofs from S3 tiles, audit --remote clean at size {size}"
    )


def test_s3_publish_is_incremental_and_removes_superseded_partials(
    ctx: Any, s3: S3, tmp_path: Path, capsys: Any, figure: Any
) -> None:
    world(ctx)
    _append(ctx, 300)
    to = f"s3://{s3.bucket}/log/"
    assert main(["publish", "--to", to]) == 0
    old = _size(ctx)
    first = s3.listing()
    assert s3.made("PutObject") == set(first)
    old_partials = {f"tile/0/001.p/{old - 256}", f"tile/entries/001.p/{old - 256}"}
    assert old_partials <= set(first)

    _append(ctx, 250)
    new = _size(ctx)
    assert 512 < new < 768, new  # the expectations below are for this shape
    s3.calls.clear()
    assert main(["publish", "--to", to]) == 0
    assert "checkpoint unchanged" not in capsys.readouterr().out
    # Exactly the new right edge and the checkpoint, each once; tile 0 and bundle 0 untouched.
    puts = [key for op, key in s3.calls if op == "PutObject"]
    assert len(puts) == len(set(puts))
    assert s3.made("PutObject") == {
        "tile/0/001",
        f"tile/0/002.p/{new - 512}",
        "tile/entries/001",
        f"tile/entries/002.p/{new - 512}",
        f"tile/1/000.p/{new // 256}",
        "checkpoint",
    }
    # Order: tiles and bundles, then the checkpoint, then the superseded partials go.
    writes = [(op, key) for op, key in s3.calls if op in ("PutObject", "DeleteObject")]
    at = writes.index(("PutObject", PREFIX + "checkpoint"))
    assert {op for op, _ in writes[:at]} == {"PutObject"}, writes
    assert {op for op, _ in writes[at + 1 :]} == {"DeleteObject"}, writes
    assert s3.made("DeleteObject") == old_partials
    after = s3.listing()
    assert not old_partials & set(after)
    for rel in ("tile/0/000", "tile/entries/000"):
        assert after[rel] == first[rel], rel
    out = tmp_path / "pub"
    assert main(["publish", "--to", str(out)]) == 0
    # The directory publisher, run fresh, prunes nothing it never wrote: compare without the
    # level-1 partial the bucket keeps from the first pass (no full tile supersedes it yet).
    (out / "tile/1/000.p" / str(old // 256)).write_bytes(s3.get(f"tile/1/000.p/{old // 256}"))
    _same_as_directory(s3, out)

    # Nothing new: reads only, the checkpoint left alone.
    s3.calls.clear()
    assert main(["publish", "--to", to]) == 0
    assert "checkpoint unchanged" in capsys.readouterr().out
    assert not s3.made("PutObject") and not s3.made("DeleteObject")
    figure(
        f"publish-s3[{ctx.db.dialect}]: incremental pass {old}→{new}: {len(puts)} PUTs, "
        f"{len(old_partials)} partials deleted, 0 PUTs when nothing is new"
    )


def test_s3_publish_refuses_a_database_that_does_not_extend_the_bucket(
    ctx: Any, s3: S3, settings: Any, sqlite_template: Path, tmp_path: Path, capsys: Any
) -> None:
    _append(ctx, 40)
    # A fork: another database signed with the same log key, longer and different.
    fork_db = tmp_path / "fork.db"
    shutil.copyfile(sqlite_template, fork_db)
    fork_url = f"sqlite:///{fork_db}"
    fork = Context.from_settings(settings.model_copy(update={"database_url": fork_url}))
    try:
        _append(fork, 300, kind="ops.fork")
    finally:
        fork.close()
    to = f"s3://{s3.bucket}/log"

    def refused(database_url: str, expected: str) -> None:
        before = s3.listing()
        s3.calls.clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CELEDGER_DATABASE_URL", database_url)
            assert main(["publish", "--to", to]) == 1
        err = capsys.readouterr().err
        assert "publish refused" in err and expected in err, err
        assert s3.listing() == before
        assert not s3.made("PutObject") and not s3.made("DeleteObject"), s3.calls

    # The bucket holds the fork's longer tree: this database looks rolled back under it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CELEDGER_DATABASE_URL", fork_url)
        assert main(["publish", "--to", to]) == 0
    refused(settings.database_url, "at or ahead of what was published")

    # The bucket holds this database's tree; the fork is longer but does not extend it.
    s3.client.delete_objects(
        Bucket=s3.bucket, Delete={"Objects": [{"Key": PREFIX + k} for k in s3.listing()]}
    )
    assert main(["publish", "--to", to]) == 0
    refused(fork_url, "does not extend the published tree")
    # The database itself still publishes there after more appends.
    _append(ctx, 5)
    assert main(["publish", "--to", to]) == 0
    assert int(s3.get("checkpoint").split(b"\n")[1]) == _size(ctx)


def test_s3_target_usage_and_unreachable_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CELEDGER_DATA_DIR", str(tmp_path / "data"))
    assert main(["publish", "--to", "s3://Not_A_Bucket/log"]) == 2
    assert "expected s3://BUCKET[/PREFIX]" in capsys.readouterr().err
    # boto3 absent (the service runs without it): a usage error naming the extra.
    with monkeypatch.context() as mp:
        mp.setitem(sys.modules, "boto3", None)
        assert main(["publish", "--to", "s3://celedger-tiles/log"]) == 2
    assert "pip install 'celedger[s3]'" in capsys.readouterr().err
    # Nothing listens there: exit 3, one line, no traceback, no secret.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "moto-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "moto-test-secret-never-printed")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("CELEDGER_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CELEDGER_S3_REGION", "us-east-1")
    assert main(["publish", "--to", "s3://celedger-tiles/log"]) == 3
    err = capsys.readouterr().err
    assert "cannot write s3://celedger-tiles/log/" in err and "Traceback" not in err, err
    assert "never-printed" not in err
