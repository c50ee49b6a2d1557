"""The ``ossdrop`` command line. The only module that reads the environment."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import typer

from ossdrop.cli.loop import run as run_loop
from ossdrop.core.settings import StoreConfig

app = typer.Typer(
    no_args_is_help=True,
    help="ossdrop: direct uploads to Aliyun OSS or its embedded twin.\n\nExample: ossdrop serve   (then open the URL)",
)


@app.callback()
def _root() -> None:
    """ossdrop: direct uploads to Aliyun OSS or its embedded twin, with callbacks, dedup and thumbnails."""


@app.command()
def store(
    root: Path = typer.Option(Path(".ossdrop/store"), "--root", help="Directory holding the store's data."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(9000, "--port", help="Port to listen on (0 picks a free one)."),
    region: str = typer.Option("cn-hangzhou", "--region", help="Region reported to clients and used by V4."),
    domain: str | None = typer.Option(None, "--domain", help="Enable virtual-hosted style: <bucket>.<domain>."),
    access_key_id: str | None = typer.Option(None, "--access-key-id", help="Account AccessKeyId."),
    access_key_secret: str | None = typer.Option(None, "--access-key-secret", help="Account AccessKeySecret."),
) -> None:
    """Run the embedded OSS-compatible store.

    Example: ossdrop store --root ./data --port 9000
    """
    from ossdrop.objectserver.runner import Credentials, bind_socket, build_store, load_or_create_credentials, serve

    key_id = access_key_id or os.environ.get("OSSDROP_ACCESS_KEY_ID")
    secret = access_key_secret or os.environ.get("OSSDROP_ACCESS_KEY_SECRET")
    if bool(key_id) != bool(secret):
        raise typer.BadParameter("give both --access-key-id and --access-key-secret, or neither")
    creds = Credentials(key_id, secret) if key_id and secret else load_or_create_credentials(str(root))
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    endpoint = f"http://{shown_host}:{bound_port}"
    config = StoreConfig(
        root=str(root),
        endpoint=endpoint,
        credentials={creds.access_key_id: creds.access_key_secret},
        region=region,
        domain=domain,
    )
    server, _ = build_store(config)
    if creds.created:
        typer.echo(f"created credentials in {root}/credentials.json")
    typer.echo(f"AccessKeyId: {creds.access_key_id}")
    if creds.created:
        typer.echo(f"AccessKeySecret: {creds.access_key_secret}")

    def ready() -> None:
        typer.echo(f"ossdrop store listening on {endpoint}", err=False)

    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve(server, sock, ready))


from ossdrop.cli.app_cmds import register  # noqa: E402 - after the lead's command, keeping the order of --help
from ossdrop.cli.object_cmds import register as register_object_cmds  # noqa: E402
from ossdrop.cli.upload_cmd import register as register_upload_cmd  # noqa: E402

register(app)
register_object_cmds(app)
register_upload_cmd(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
