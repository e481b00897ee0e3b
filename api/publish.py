"""``celedger publish``: the log's checkpoint, tiles and entry bundles as static files.

The target — a directory, or S3-compatible object storage (``s3://BUCKET/PREFIX``) — receives
the c2sp.org/tlog-tiles layout the HTTP routes serve (``checkpoint``, ``tile/<L>/<N>[.p/<W>]``,
``tile/entries/<N>[.p/<W>]``), so any static web server, object store or CDN that serves it
is a read-only mirror of the log: clients, monitors and ``celedger audit --remote`` need
nothing else.  The rules below are written once, over the small ``Target`` interface;
``DirectoryTarget`` and ``S3Target`` only move bytes.

Rules:

1. Only what a signed checkpoint covers is published, and only after that checkpoint verifies
   with the log's key: the publisher never publishes a tree the log did not sign.
2. The new checkpoint must extend the one already published (read back from the target; a
   consistency proof from the database, checked against both signed roots); otherwise
   nothing is written — a restored or forked database never silently replaces a published
   tree.
3. Incremental: at each level only tiles at or right of the previously published right edge
   are looked at, and a tile (or bundle) already there is never rewritten: its path names its
   width, and the tree it came from is a prefix of this one.
4. Order: bundles and tiles first, the checkpoint last (atomically replaced), so a reader who
   fetches the new checkpoint finds every tile it needs.
5. A partial tile is removed once its full tile is published (c2sp.org/tlog-tiles lets
   clients fall back to the full tile), which keeps the target to O(tiles) files.

Objects in S3 carry the cache headers and content types the ``/log`` routes answer with
(full tiles immutable for a year, the checkpoint and partial tiles a few seconds), so a CDN
in front of the bucket behaves like one in front of the service.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from api.context import Context
from api.routes.log import IMMUTABLE, SHORT
from api.settings import Settings
from ledger import merkle, tiles
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import LedgerError, ProofError
from ledger.storage.log import Log
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

__all__ = [
    "DirectoryTarget",
    "PublishError",
    "PublishUsageError",
    "Published",
    "S3Target",
    "Target",
    "TargetError",
    "open_target",
    "publish",
]

CHECKPOINT = "checkpoint"
CHECKPOINT_TYPE = "text/plain; charset=utf-8"
TILE_TYPE = "application/octet-stream"
# S3's bucket naming rules (lower case, 3-63 characters, no leading or trailing dot or dash).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class PublishError(LedgerError):
    """Publishing was refused; nothing of the new tree was made visible."""


class PublishUsageError(LedgerError):
    """The target named cannot be used as given (a malformed URL, boto3 missing)."""


class TargetError(LedgerError):
    """The target could not be read or written (unreachable, no permission); a later pass may
    succeed, and what was written so far is never referenced by a published checkpoint."""


class Target(Protocol):
    """Where the tiles go; paths are relative, '/'-separated (``tile/0/001.p/5``)."""

    name: str

    def read(self, rel: str) -> bytes | None:
        """The object's bytes, or None if there is none."""
        ...

    def exists(self, rel: str) -> bool: ...

    def write(self, rel: str, data: bytes, *, cache_control: str, content_type: str) -> None:
        """Create or replace the object whole: a reader sees the old bytes or the new ones."""
        ...

    def remove_under(self, rel: str) -> int:
        """Remove every object under ``rel + '/'``; return how many there were."""
        ...


class DirectoryTarget:
    """A directory on disk; the static server in front of it sets the cache headers
    (deploy/nginx-tiles.conf), so ``write`` does not keep them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = str(root)

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def write(self, rel: str, data: bytes, *, cache_control: str, content_type: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def remove_under(self, rel: str) -> int:
        folder = self.root / rel
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.iterdir() if p.is_file())
        shutil.rmtree(folder)
        return count


def _missing(exc: ClientError) -> bool:
    # HEAD has no body, so its error code is the bare status.
    return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


class S3Target:
    """A bucket and key prefix of S3 or an S3-compatible store (MinIO, Ceph, OSS, COS …)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._s3 = client
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.name = f"s3://{bucket}/{self.prefix}"

    @contextmanager
    def _errors(self, what: str, rel: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as exc:
            # botocore's messages name the operation and the store's error code, never the
            # credentials.
            raise TargetError(f"{what} {self.name}{rel}: {exc}") from exc

    def read(self, rel: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._errors("GET", rel):
            try:
                answer = self._s3.get_object(Bucket=self.bucket, Key=self.prefix + rel)
            except ClientError as exc:
                if _missing(exc):
                    return None
                raise
            return answer["Body"].read()

    def exists(self, rel: str) -> bool:
        from botocore.exceptions import ClientError

        with self._errors("HEAD", rel):
            try:
                self._s3.head_object(Bucket=self.bucket, Key=self.prefix + rel)
            except ClientError as exc:
                if _missing(exc):
                    return False
                raise
            return True

    def write(self, rel: str, data: bytes, *, cache_control: str, content_type: str) -> None:
        with self._errors("PUT", rel):
            self._s3.put_object(
                Bucket=self.bucket,
                Key=self.prefix + rel,
                Body=data,
                CacheControl=cache_control,
                ContentType=content_type,
            )

    def remove_under(self, rel: str) -> int:
        removed = 0
        with self._errors("DELETE", rel + "/"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}{rel}/"
            )
            for page in pages:
                keys: list[ObjectIdentifierTypeDef] = [
                    {"Key": o["Key"]} for o in page.get("Contents", [])
                ]
                if not keys:
                    continue
                answer = self._s3.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                )
                failed = answer.get("Errors", [])
                if failed:
                    raise TargetError(
                        f"DELETE {self.name}{rel}/: expected every partial tile removed, "
                        f"found {len(failed)} refused (first: {failed[0].get('Key')}: "
                        f"{failed[0].get('Code')})"
                    )
                removed += len(keys)
        return removed


def open_target(to: str, settings: Settings) -> Target:
    """``DIR`` or ``s3://BUCKET[/PREFIX]`` (endpoint and region from the settings, credentials
    wherever boto3 finds them: ``AWS_*`` variables, ``~/.aws``, an instance role)."""
    if not to.startswith("s3://"):
        return DirectoryTarget(Path(to))
    bucket, _, prefix = to.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise PublishUsageError(
            f"--to {to}: expected s3://BUCKET[/PREFIX] with a bucket name of 3-63 lower-case "
            f"letters, digits, '.' or '-', found {bucket!r}"
        )
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise PublishUsageError(
            "publishing to s3:// needs boto3: pip install 'celedger[s3]'"
        ) from None
    # A custom endpoint is usually one host serving every bucket (MinIO, Ceph): virtual-host
    # addressing would need a DNS name per bucket there.  Retries are boto3's
    # (AWS_RETRY_MODE, AWS_MAX_ATTEMPTS); the periodic publisher also retries each pass.
    config = Config(s3={"addressing_style": "path"} if settings.s3_endpoint_url else {})
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=config,
    )
    return S3Target(client, bucket, prefix)


@dataclass(frozen=True)
class Published:
    size: int
    root: bytes
    previous_size: int
    written: int  # tiles and bundles written
    skipped: int  # full tiles and bundles already there
    pruned: int  # partial tiles removed
    checkpoint_changed: bool


def _published(target: Target, note: bytes, ctx: Context) -> Checkpoint:
    try:
        cp, _ = open_checkpoint(note, ctx.settings.origin, [ctx.log_verifier])
    except LedgerError as exc:
        raise PublishError(
            f"{target.name.rstrip('/')}/{CHECKPOINT}: expected a checkpoint of "
            f"{ctx.settings.origin} signed by this log's key, found one that does not verify "
            f"({exc}); publish into an empty directory or prefix"
        ) from exc
    return cp


def _level_count(size: int, level: int | None) -> int:
    return size if level is None else size >> (TILE_HEIGHT * level)


def publish(ctx: Context, target: Target | Path) -> Published:
    """Bring ``target`` up to the log's latest signed checkpoint (see the module's rules)."""
    from ledger.witness_models import with_cosignatures

    if isinstance(target, Path):
        target = DirectoryTarget(target)
    old_note = target.read(CHECKPOINT)
    old = None if old_note is None else _published(target, old_note, ctx)
    old_size = 0 if old is None else old.size
    written = skipped = pruned = 0
    with ctx.db.reader() as s:
        latest = Log.latest_checkpoint(s)
        if latest is None:
            return Published(0, merkle.EMPTY_ROOT, 0, 0, 0, 0, False)
        size = int(latest.size)
        # Witness cosignatures gathered so far travel with the checkpoint, as on /log/checkpoint.
        note = with_cosignatures(s, size, latest.note)
        cp, _ = open_checkpoint(note, ctx.settings.origin, [ctx.log_verifier])
        if old is not None:
            if old.size > size:
                raise PublishError(
                    f"published tree has {old.size} entries but the database's latest "
                    f"checkpoint has {size}: expected the database to be at or ahead of what "
                    "was published (was an older backup restored?)"
                )
            proof = ctx.log.consistency_proof(s, old.size, size)
            try:
                merkle.verify_consistency(old.size, size, proof, old.root_hash, cp.root_hash)
            except ProofError as exc:
                raise PublishError(
                    f"the database's tree of size {size} does not extend the published tree of "
                    f"size {old.size}: {exc}"
                ) from exc
        levels: list[int | None] = [None]
        level = 0
        while _level_count(size, level) > 0:
            levels.append(level)
            level += 1
        for lv in levels:
            count = _level_count(size, lv)
            first = _level_count(old_size, lv) // TILE_WIDTH
            for index in range(first, (count + TILE_WIDTH - 1) // TILE_WIDTH):
                width = min(TILE_WIDTH, count - index * TILE_WIDTH)
                rel = (
                    tiles.entries_path(index, width)
                    if lv is None
                    else tiles.tile_path(lv, index, width)
                )
                # A tile's path names its width, so an existing object of a tree this one
                # extends (checked above) already has these bytes; without a published
                # checkpoint only full tiles are trusted as they are.
                if (width == TILE_WIDTH or old is not None) and target.exists(rel):
                    skipped += 1
                    continue
                if lv is None:
                    data = tiles.encode_entry_bundle(ctx.log.entry_bundle(s, index, width, size))
                else:
                    data = ctx.log.tile_hashes(s, lv, index, width, size)
                cache = IMMUTABLE if width == TILE_WIDTH else SHORT
                target.write(rel, data, cache_control=cache, content_type=TILE_TYPE)
                written += 1
    changed = old_note != note.encode()
    if changed:
        target.write(CHECKPOINT, note.encode(), cache_control=SHORT, content_type=CHECKPOINT_TYPE)
    for lv in levels:
        count = _level_count(size, lv)
        first = _level_count(old_size, lv) // TILE_WIDTH
        for index in range(first, count // TILE_WIDTH):
            full = tiles.entries_path(index) if lv is None else tiles.tile_path(lv, index)
            pruned += target.remove_under(full + ".p")
    return Published(size, cp.root_hash, old_size, written, skipped, pruned, changed)
