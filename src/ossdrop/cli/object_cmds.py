"""Server-side operations against the configured store: ``bucket create|ls|rm``, ``put``, ``get``, ``ls``, ``rm``.

"The configured store" is the one ``ossdrop serve`` uses (see :mod:`ossdrop.cli.app_settings`): the endpoint,
bucket, region and key pair from ``OSSDROP_*`` variables or ``.env``, or, without ``OSSDROP_OSS_ENDPOINT``, the
embedded store of ``--data-dir`` on ``http://127.0.0.1:<--store-port>`` with the key pair kept in
``<data-dir>/store/credentials.json``. Every request goes through the official ``alibabacloud-oss-v2`` SDK;
transfers use its uploader (multipart, resumable through a checkpoint file in ``<data-dir>/checkpoints``) and
downloader. A failure prints one ``error: ...`` line on stderr and exits 1; usage errors exit 2.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import alibabacloud_oss_v2 as oss
import typer

from ossdrop.appserver.settings import SettingsError
from ossdrop.cli.app_cmds import DataDir, StorePort
from ossdrop.cli.app_settings import Place, read_env, resolve_settings
from ossdrop.cli.progress import Quiet, TransferBar, fail, format_size, parse_size, transfer_progress
from ossdrop.client.oss import is_local_endpoint
from ossdrop.core.errors import OSSError
from ossdrop.objectserver.runner import CREDENTIALS_FILE
from ossdrop.protocol.names import check_object_name, is_valid_bucket_name

CHECKPOINT_DIR = "checkpoints"
MIN_PART_SIZE = 100 * 1024  # OSS refuses smaller parts (but the last)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")

bucket_app = typer.Typer(
    no_args_is_help=True,
    help="Create, list and remove buckets of the configured store.\n\nExample: ossdrop bucket create photos",
)

Bucket = typer.Option(None, "--bucket", "-b", help="Bucket to use (default: OSSDROP_BUCKET, else 'ossdrop').")
PartSize = typer.Option("6MiB", "--part-size", help="Multipart part size, e.g. 256KiB, 8MiB (min 100KiB).")
Parallel = typer.Option(3, "--parallel", min=1, max=32, help="Parts transferred at once.")


class Acl(StrEnum):
    """Canned bucket ACLs."""

    private = "private"
    public_read = "public-read"
    public_read_write = "public-read-write"


class StorageClass(StrEnum):
    """Bucket storage classes."""

    Standard = "Standard"
    IA = "IA"
    Archive = "Archive"
    ColdArchive = "ColdArchive"
    DeepColdArchive = "DeepColdArchive"


@dataclass(frozen=True)
class Target:
    """An SDK client for the configured store, the bucket to work in and where checkpoints are kept."""

    client: oss.Client
    endpoint: str
    bucket: str
    checkpoint_dir: Path


def connect(data_dir: Path, store_port: int, bucket: str | None = None) -> Target:
    """The configured store, as ``ossdrop serve`` would use it; exits 2 on bad settings."""
    try:
        env = read_env()
        if not env.oss_endpoint and not (env.access_key_id and env.access_key_secret):
            creds = data_dir / "store" / CREDENTIALS_FILE
            if not creds.is_file():
                hint = "run `ossdrop serve` or `ossdrop store` there, or set OSSDROP_OSS_ENDPOINT"
                fail(f"no embedded store in {data_dir} ({creds} is missing): {hint}", 2)
        # The store needs no JWT secret: a placeholder keeps the app's check quiet and no secret file is made.
        store_only = env.model_copy(update={"jwt_secret": env.jwt_secret or "-" * 32})
        settings = resolve_settings(store_only, Place(data_dir, "127.0.0.1", 8000, store_port))
    except SettingsError as exc:
        fail(str(exc), 2)
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        settings.access_key_id, settings.access_key_secret
    )
    cfg.region = settings.region
    cfg.endpoint = settings.oss_endpoint
    if is_local_endpoint(settings.oss_endpoint):
        cfg.use_path_style = True
    name = bucket or settings.bucket
    check_bucket(name)
    return Target(oss.Client(cfg), settings.oss_endpoint, name, data_dir / CHECKPOINT_DIR)


def check_bucket(name: str) -> None:
    """Exit 2 with the naming rules unless ``name`` is a valid bucket name (no request is made)."""
    if not is_valid_bucket_name(name):
        rules = "3-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
        fail(f"invalid bucket name {name!r}: use {rules}", 2)


def check_key(key: str) -> None:
    """Exit 2 unless ``key`` is a valid object name."""
    try:
        check_object_name(key)
    except OSSError:
        fail(f"invalid object key {key!r}: use 1-1023 bytes of UTF-8 not starting with '/' or '\\'", 2)


def describe(exc: BaseException, endpoint: str) -> str:
    """One line for an SDK failure: ``Code: Message`` from the store, or why it could not be reached."""
    inner: BaseException = exc
    while isinstance(inner, oss.exceptions.BaseError) and hasattr(inner, "unwrap"):
        nested = inner.unwrap()
        if not isinstance(nested, BaseException) or nested is inner:
            break
        if isinstance(inner, oss.exceptions.RequestError):
            found = _ERRNO.search(str(nested))
            reason = found[1].strip().rstrip(".") if found else type(nested).__name__
            return f"cannot reach the store at {endpoint}: {reason}"
        inner = nested
    if isinstance(inner, oss.exceptions.ServiceError):
        return f"{inner.code}: {inner.message}"
    return str(inner) or type(inner).__name__


@contextmanager
def reporting(target: Target) -> Iterator[None]:
    """Turn SDK, file and interrupt failures into one ``error:`` line and exit 1 (130 on Ctrl-C)."""
    try:
        yield
    except oss.exceptions.BaseError as exc:
        fail(describe(exc, target.endpoint))
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume", 130)


def part_size_option(text: str) -> int:
    """``--part-size`` in bytes; exits 2 when it is not a size of at least 100 KiB."""
    try:
        size = parse_size(text)
    except ValueError as exc:
        fail(str(exc), 2)
    if size < MIN_PART_SIZE:
        fail(f"--part-size must be at least 100KiB, got {text}", 2)
    return size


def bucket_create(
    name: str = typer.Argument(..., help="Bucket name: 3-63 of a-z, 0-9, '-'."),
    acl: Acl | None = typer.Option(None, "--acl", help="Canned ACL of the bucket."),
    storage_class: StorageClass | None = typer.Option(None, "--storage-class", help="Default storage class."),
    data_dir: Path = DataDir,
    store_port: int = StorePort,
) -> None:
    """Create a bucket (its name is checked before any request).

    Example: ossdrop bucket create photos --acl private --storage-class Standard
    """
    check_bucket(name)
    target = connect(data_dir, store_port)
    config = oss.CreateBucketConfiguration(storage_class=storage_class.value) if storage_class else None
    request = oss.PutBucketRequest(bucket=name, acl=acl.value if acl else None, create_bucket_configuration=config)
    with reporting(target):
        target.client.put_bucket(request)
    typer.echo(f"created bucket {name}")


def bucket_ls(data_dir: Path = DataDir, store_port: int = StorePort) -> None:
    """List the account's buckets: name, region, storage class and creation time.

    Example: ossdrop bucket ls
    """
    target = connect(data_dir, store_port)
    with reporting(target):
        for page in target.client.list_buckets_paginator().iter_page(oss.ListBucketsRequest()):
            for b in page.buckets or []:
                created = b.creation_date.strftime("%Y-%m-%d %H:%M:%S") if b.creation_date else "-"
                region = b.region or b.location or "-"
                typer.echo(f"{created}  {region:<16} {b.storage_class or '-':<12} {b.name}")


def bucket_rm(
    name: str = typer.Argument(..., help="The (empty) bucket to remove."),
    data_dir: Path = DataDir,
    store_port: int = StorePort,
) -> None:
    """Remove an empty bucket.

    Example: ossdrop bucket rm photos
    """
    check_bucket(name)
    target = connect(data_dir, store_port)
    with reporting(target):
        target.client.delete_bucket(oss.DeleteBucketRequest(bucket=name))
    typer.echo(f"removed bucket {name}")


def put(
    local: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The file to upload."),
    key: str | None = typer.Argument(
        None, help="Object key (default: the file name; a key ending in / gets the file name appended)."
    ),
    bucket: str | None = Bucket,
    part_size: str = PartSize,
    parallel: int = Parallel,
    content_type: str | None = typer.Option(None, "--content-type", help="Content-Type (default: guessed)."),
    quiet: bool = Quiet,
    data_dir: Path = DataDir,
    store_port: int = StorePort,
) -> None:
    """Upload a file; files of at least --part-size go multipart and resume where an interrupted run stopped.

    Example: ossdrop put ./video.mp4 videos/ --part-size 8MiB
    """
    name = local.name if key is None else (key + local.name if key.endswith("/") else key)
    check_key(name)
    size_of_part = part_size_option(part_size)
    target = connect(data_dir, store_port, bucket)
    with reporting(target):
        target.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        uploader = target.client.uploader(
            part_size=size_of_part,
            parallel_num=parallel,
            enable_checkpoint=True,
            checkpoint_dir=str(target.checkpoint_dir) + os.sep,  # the SDK takes the dirname of this path
        )
        with transfer_progress(quiet) as progress:
            bar = TransferBar(progress, f"put {name}", total=local.stat().st_size)
            request = oss.PutObjectRequest(bucket=target.bucket, key=name, content_type=content_type, progress_fn=bar)
            uploader.upload_file(request, str(local))
    typer.echo(f"uploaded {local} -> oss://{target.bucket}/{name} ({_done(local.stat().st_size, bar)})")


def _done(size: int, bar: TransferBar) -> str:
    resumed = bar.resumed_at or 0
    return format_size(size) + (f", resumed at {format_size(resumed)}" if resumed else "")


def get(
    key: str = typer.Argument(..., help="The object to download."),
    local: Path | None = typer.Argument(None, help="Where to write it (default: its name here; - for stdout)."),
    bucket: str | None = Bucket,
    part_size: str = PartSize,
    parallel: int = Parallel,
    quiet: bool = Quiet,
    data_dir: Path = DataDir,
    store_port: int = StorePort,
) -> None:
    """Download an object to a file (written whole or not at all; an interrupted download resumes).

    Example: ossdrop get videos/video.mp4 ./copy.mp4
    """
    check_key(key)
    size_of_part = part_size_option(part_size)
    target = connect(data_dir, store_port, bucket)
    to_stdout = local is not None and str(local) == "-"
    dest = _destination(key, local)
    request = oss.GetObjectRequest(bucket=target.bucket, key=key)
    options: dict[str, Any] = {"part_size": size_of_part, "parallel_num": parallel}
    with reporting(target):
        if to_stdout:
            _to_stdout(target, request)
            return
        target.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        cp_dir = str(target.checkpoint_dir) + os.sep
        options.update(use_temp_file=True, enable_checkpoint=True, checkpoint_dir=cp_dir)
        downloader = target.client.downloader(**options)
        with transfer_progress(quiet) as progress:
            request.progress_fn = bar = TransferBar(progress, f"get {key}")
            result = downloader.download_file(request, str(dest))
    typer.echo(f"downloaded oss://{target.bucket}/{key} -> {dest} ({_done(int(result.written or 0), bar)})")


def _to_stdout(target: Target, request: oss.GetObjectRequest) -> None:
    """Stream the object to stdout (not through the SDK's downloader: it spins on a failing write)."""
    result = target.client.get_object(request)
    try:
        for chunk in result.body.iter_bytes(block_size=1 << 20):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    finally:
        result.body.close()


def _destination(key: str, local: Path | None) -> Path:
    base = key.rstrip("/").rsplit("/", 1)[-1] or "download"
    if local is None:
        return Path(base)
    return local / base if local.is_dir() else local


def ls(
    prefix: str = typer.Argument("", help="Only keys starting with this."),
    bucket: str | None = Bucket,
    data_dir: Path = DataDir,
    store_port: int = StorePort,
) -> None:
    """List objects: last-modified time, size in bytes and key, one per line, in key order.

    Example: ossdrop ls videos/
    """
    target = connect(data_dir, store_port, bucket)
    with reporting(target):
        pages = target.client.list_objects_v2_paginator().iter_page(
            oss.ListObjectsV2Request(bucket=target.bucket, prefix=prefix or None)
        )
        for page in pages:
            for item in page.contents or []:
                when = item.last_modified.strftime("%Y-%m-%d %H:%M:%S") if item.last_modified else "-"
                typer.echo(f"{when}  {int(item.size or 0):>12}  {item.key}")


def rm(
    keys: list[str] = typer.Argument(..., help="Objects to remove."),
    force: bool = typer.Option(False, "--force", "-f", help="Do not fail on a missing object."),
    bucket: str | None = Bucket,
    data_dir: Path = DataDir,
    store_port: int = StorePort,
) -> None:
    """Remove objects; a missing one is an error unless --force.

    Example: ossdrop rm videos/video.mp4
    """
    for key in keys:
        check_key(key)
    target = connect(data_dir, store_port, bucket)
    with reporting(target):
        for key in keys:
            if not force:
                target.client.head_object(oss.HeadObjectRequest(bucket=target.bucket, key=key))
            target.client.delete_object(oss.DeleteObjectRequest(bucket=target.bucket, key=key))
            typer.echo(f"removed oss://{target.bucket}/{key}")


def register(app: typer.Typer) -> None:
    """Add ``bucket``, ``put``, ``get``, ``ls`` and ``rm`` to the ``ossdrop`` command line."""
    bucket_app.command("create")(bucket_create)
    bucket_app.command("ls")(bucket_ls)
    bucket_app.command("rm")(bucket_rm)
    app.add_typer(bucket_app, name="bucket")
    for command in (put, get, ls, rm):
        app.command()(command)
