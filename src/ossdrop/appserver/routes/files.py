"""``/api/files``: the caller's files."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from fastapi.responses import RedirectResponse

from ossdrop.appserver.deps import Deps, UserId
from ossdrop.appserver.present import file_out
from ossdrop.appserver.schemas import ErrorOut, FileList, FileOut
from ossdrop.services.library import delete_file, get_file, list_files

router = APIRouter(prefix="/api/files", tags=["files"])
_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorOut} for code in (401, 404, 422, 503)}


@router.get("", responses=_ERRORS)
def list_my_files(user: UserId, deps: Deps, cursor: str | None = None, limit: int = Query(20)) -> FileList:
    """The caller's files, newest first."""
    ttl = deps.settings.download_url_ttl
    with deps.session() as session:
        page = list_files(session, user, cursor=cursor, limit=limit)
        nxt = str(page.next_cursor) if page.next_cursor is not None else None
        return FileList(items=[file_out(r, deps.store, ttl) for r in page.items], next_cursor=nxt)


@router.get("/{file_id}", responses=_ERRORS)
def get_my_file(file_id: int, user: UserId, deps: Deps) -> FileOut:
    """One of the caller's files, with a short-lived signed download URL."""
    with deps.session() as session:
        return file_out(get_file(session, user, file_id), deps.store, deps.settings.download_url_ttl)


@router.get("/{file_id}/download", status_code=302, responses=_ERRORS)
def download(file_id: int, user: UserId, deps: Deps) -> RedirectResponse:
    """302 to a short-lived signed URL of the file's content."""
    with deps.session() as session:
        path = get_file(session, user, file_id).path
    return RedirectResponse(deps.store.presign_get(path, deps.settings.download_url_ttl), status_code=302)


@router.delete("/{file_id}", status_code=204, responses=_ERRORS)
def delete(file_id: int, user: UserId, deps: Deps) -> Response:
    """Delete one of the caller's files."""
    with deps.session() as session:
        delete_file(session, deps.store, user, file_id)
    return Response(status_code=204)
