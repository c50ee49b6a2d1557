"""CLI commands of the app server: ``serve``, ``db upgrade``, ``reconcile`` and ``sweep``."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import typer

from ossdrop.appserver.settings import AppSettings, SettingsError
from ossdrop.cli.app_settings import Place, read_env, resolve_settings, store_endpoint
from ossdrop.cli.loop import run as run_loop

db_app = typer.Typer(
    no_args_is_help=True, help="Database maintenance.\n\nExample: ossdrop db upgrade --data-dir .ossdrop"
)
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

DataDir = typer.Option(Path(".ossdrop"), "--data-dir", help="Where the database, store and secrets live.")
Host = typer.Option("127.0.0.1", "--host", help="Address to listen on.")
Port = typer.Option(8000, "--port", help="App server port (0 picks a free one).")
StorePort = typer.Option(9000, "--store-port", help="Embedded store port (0 picks a free one).")


def _settings(data_dir: Path, host: str, port: int, store_port: int) -> AppSettings:
    try:
        return resolve_settings(read_env(), Place(data_dir, host, port, store_port))
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def serve(data_dir: Path = DataDir, host: str = Host, port: int = Port, store_port: int = StorePort) -> None:
    """Run the app server (and, unless OSSDROP_OSS_ENDPOINT is set, the embedded store).

    Example: ossdrop serve --data-dir .ossdrop --port 8000 --store-port 9000
    """
    from ossdrop.appserver.runner import serve_all
    from ossdrop.core.settings import StoreConfig
    from ossdrop.objectserver.runner import bind_socket, build_store

    embedded = not read_env().oss_endpoint
    app_sock = bind_socket(host, port)
    store_sock = bind_socket(host, store_port) if embedded else None
    place = Place(data_dir, host, app_sock.getsockname()[1], store_sock.getsockname()[1] if store_sock else 0)
    settings = _settings(data_dir, place.host, place.port, place.store_port)
    store = None
    if store_sock is not None:
        creds = {settings.access_key_id: settings.access_key_secret}
        config = StoreConfig(root=str(data_dir / "store"), endpoint=store_endpoint(place), credentials=creds)
        store = (build_store(config)[0], store_sock)

    def ready() -> None:
        if settings.dev_mode:
            typer.echo('dev mode: POST /api/dev/login {"user_id": N} gives a token')
        typer.echo(f"ossdrop store: {settings.oss_endpoint} (bucket {settings.bucket})")
        typer.echo(f"ossdrop app listening on {settings.public_url}")

    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve_all(settings, app_sock, ready, store=store))


@db_app.command("upgrade")
def db_upgrade(data_dir: Path = DataDir) -> None:
    """Apply the database migrations (OSSDROP_DATABASE_URL, default sqlite in the data dir).

    Example: OSSDROP_DATABASE_URL=mysql://root@127.0.0.1/ossdrop ossdrop db upgrade
    """
    from ossdrop.db.migrate import upgrade

    settings = _settings(data_dir, "127.0.0.1", 8000, 9000)
    upgrade(settings.database_url)
    typer.echo("database is at the newest revision")


def reconcile(data_dir: Path = DataDir, store_port: int = StorePort, host: str = Host) -> None:
    """Record uploads whose callback never came and expire the rest (talks to the store `serve` runs).

    Example: ossdrop reconcile --data-dir .ossdrop --store-port 9000
    """
    from ossdrop.appserver.app import reconcile_once
    from ossdrop.appserver.deps import build_deps

    deps = build_deps(_settings(data_dir, host, 8000, store_port))
    try:
        report = reconcile_once(deps)
    finally:
        deps.close()
    typer.echo(json.dumps({"recorded": report.recorded, "expired": report.expired, "failed": report.failed}))


def sweep(
    older_than: str = typer.Option("24h", "--older-than", help="Grace period, e.g. 30m, 24h, 7d."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    data_dir: Path = DataDir,
    store_port: int = StorePort,
    host: str = Host,
) -> None:
    """Remove objects under the upload dir that no record or pending upload explains.

    Example: ossdrop sweep --older-than 24h --dry-run
    """
    from ossdrop.appserver.deps import build_deps
    from ossdrop.services.reconcile import sweep as run_sweep

    match = _DURATION.fullmatch(older_than.strip())
    if match is None:
        raise typer.BadParameter("use a number with s, m, h or d, e.g. 24h", param_hint="--older-than")
    seconds = int(match[1]) * _UNITS[match[2]]
    deps = build_deps(_settings(data_dir, host, 8000, store_port))
    try:
        with deps.sessions() as session:
            report = run_sweep(deps.uploads, session, older_than=seconds, dry_run=dry_run)
    finally:
        deps.close()
    for key in report.removed:
        typer.echo(("would remove " if dry_run else "removed ") + key)
    typer.echo(json.dumps({"examined": report.examined, "removed": len(report.removed), "dry_run": dry_run}))


def register(app: typer.Typer) -> None:
    """Add these commands to the ``ossdrop`` command line."""
    app.command()(serve)
    app.command()(reconcile)
    app.command()(sweep)
    app.add_typer(db_app, name="db")
