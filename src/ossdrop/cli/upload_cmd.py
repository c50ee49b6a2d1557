"""``ossdrop upload FILE...``: the browser's upload flow from the command line, against a running app server.

For each file: its MD5 and size are computed locally, ``POST /api/uploads/policy`` answers ``exists`` (instant
upload: nothing is sent), ``proof_required`` (answered with the MD5 of the asked byte range) or ``upload``; then
the form ``fields`` and the file are POSTed straight to the store (streamed, never read whole) and the store
relays the app's callback answer. When the callback failed (the store's 203) ``POST /api/uploads/complete``
records the upload instead. The API is in :mod:`ossdrop.appserver.schemas`.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import httpx
import typer
from defusedxml import ElementTree
from rich.progress import Progress

from ossdrop.cli.progress import ProgressReader, Quiet, TransferBar, fail, format_size, hash_file, range_md5
from ossdrop.cli.progress import transfer_progress as progress_bars

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class UploadFailedError(Exception):
    """One file could not be uploaded; the message is the one-line reason."""


@dataclass(frozen=True)
class Api:
    """The app server's API for one user."""

    http: httpx.Client

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON, return the JSON answer; :class:`UploadFailedError` for an error answer."""
        try:
            response = self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise UploadFailedError(f"cannot reach the app server at {self.http.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise UploadFailedError(_app_error(response))
        return _json(response)


def _app_error(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body['error']}: {body['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise UploadFailedError(f"unexpected answer (HTTP {response.status_code}): {response.text[:200]}") from None
    if not isinstance(body, dict):
        raise UploadFailedError(f"unexpected answer (HTTP {response.status_code})")
    return body


def _store_error(response: httpx.Response) -> str:
    """``Code: Message`` of the store's XML error, or the status."""
    try:
        root = ElementTree.fromstring(response.content)
        return f"{root.findtext('Code')}: {root.findtext('Message')}"
    except ElementTree.ParseError:
        return f"the store answered HTTP {response.status_code}"


def _proved(api: Api, path: Path, answer: dict[str, Any], call: str, body: dict[str, Any]) -> dict[str, Any]:
    """Answer a ``proof_required`` (once) by sending ``body`` again with the MD5 of the asked bytes."""
    if answer.get("status") != "proof_required":
        return answer
    challenge = answer["proof"]
    proof = {"token": challenge["token"], "md5": range_md5(path, int(challenge["first"]), int(challenge["last"]))}
    return api.post(call, {**body, "proof": proof})


def send_form(ticket: dict[str, Any], path: Path, content_type: str, progress: Progress) -> httpx.Response:
    """POST the form ``fields`` in order, then the file (streamed with a progress bar), to the ticket's URL."""
    bar = TransferBar(progress, f"upload {path.name}", total=path.stat().st_size)
    with path.open("rb") as fh:
        files = {"file": (path.name, cast(IO[bytes], ProgressReader(fh, bar)), content_type)}
        try:
            return httpx.post(ticket["url"], data=ticket["fields"], files=files, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise UploadFailedError(f"cannot reach the store at {ticket['url']}: {exc}") from None


def upload_one(api: Api, path: Path, progress: Progress) -> tuple[dict[str, Any], bool]:
    """Upload ``path``; returns the recorded file (the API's ``FileOut``) and whether its bytes were sent."""
    size, md5 = hash_file(path, progress)
    content_type = mimetypes.guess_type(path.name)[0]
    body: dict[str, Any] = {"filename": path.name, "size": size, "md5": md5}
    if content_type:
        body["content_type"] = content_type
    ticket = _proved(api, path, api.post("/api/uploads/policy", body), "/api/uploads/policy", body)
    if ticket.get("status") == "exists":
        return dict(ticket["file"]), False
    if ticket.get("status") != "upload":
        raise UploadFailedError(f"unexpected policy answer: {json.dumps(ticket)[:200]}")
    response = send_form(ticket, path, content_type or "application/octet-stream", progress)
    if response.status_code == 200:
        return dict(_json(response)["file"]), True
    if response.status_code != 203:
        raise UploadFailedError(_store_error(response))
    done = {"key": ticket["key"], "upload_id": ticket["upload_id"]}
    recorded = _proved(api, path, api.post("/api/uploads/complete", done), "/api/uploads/complete", done)
    return dict(recorded["file"]), True


def summary(path: Path, file: dict[str, Any], sent: bool) -> str:
    """One line about a finished upload."""
    what = "uploaded" if sent else "already stored, 0 bytes sent"
    size = format_size(int(file.get("size") or 0))
    return f"{path}: {what} (id {file['id']}, {size}, md5 {file['md5']}, {file['path']})"


def upload(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="Files to upload."),
    server: str = typer.Option(
        "http://127.0.0.1:8000", "--server", envvar="OSSDROP_SERVER", help="The app server's base URL."
    ),
    token: str | None = typer.Option(None, "--token", envvar="OSSDROP_TOKEN", help="Bearer token of the user."),
    as_json: bool = typer.Option(False, "--json", help="Print each recorded file as JSON."),
    quiet: bool = Quiet,
) -> None:
    """Upload files the way the browser does: policy, MD5 dedup, direct POST to the store, callback.

    Example: OSSDROP_TOKEN=... ossdrop upload photo.jpg clip.mp4 --server http://127.0.0.1:8000
    """
    if not token:
        fail("no token: pass --token or set OSSDROP_TOKEN", 2)
    headers = {"Authorization": f"Bearer {token}"}
    failed = 0
    with httpx.Client(base_url=server, headers=headers, timeout=TIMEOUT) as http:
        api = Api(http)
        for path in files:
            try:
                with progress_bars(quiet) as progress:
                    file, sent = upload_one(api, path, progress)
            except (UploadFailedError, OSError) as exc:
                failed += 1
                typer.echo(f"error: {path}: {' '.join(str(exc).split())}", err=True)
                continue
            typer.echo(json.dumps(file) if as_json else summary(path, file, sent))
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``upload`` to the ``ossdrop`` command line."""
    app.command()(upload)
