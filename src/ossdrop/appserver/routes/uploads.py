"""``/api/uploads``: issue a policy, receive the store's callback, complete an upload whose callback failed."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ossdrop.appserver.deps import Deps, UserId
from ossdrop.appserver.present import file_out, policy_out, proof_out, upload_json
from ossdrop.appserver.routes import policy_body
from ossdrop.appserver.schemas import CompleteIn, ErrorOut, ExistsOut, ProofOut, RecordedOut, UploadOut
from ossdrop.services import group_commit
from ossdrop.services.app_errors import AppError
from ossdrop.services.callback_verify import CallbackAuthError, KeyUnavailableError
from ossdrop.services.uploads import Proof, ProofRequired, UploadTicket, complete_upload

router = APIRouter(prefix="/api/uploads", tags=["uploads"])
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 503)
}


@router.post(
    "/policy",
    responses=_ERRORS,
    response_model=UploadOut | ExistsOut | ProofOut,
    openapi_extra=policy_body.OPENAPI,
)
async def issue_policy(request: Request) -> Response:
    """A signed direct-upload policy, or ``exists`` (instant upload), or a ``proof_required`` challenge.

    Reads its :class:`PolicyIn` body itself (:mod:`.policy_body`) and answers pre-serialised JSON: FastAPI's
    generic body and response handling cost more than the policy.
    """
    caller, body = await policy_body.read(request)
    proof = Proof(body.proof.token, body.proof.md5) if body.proof else None
    deps = caller.deps
    outcome = await group_commit.request_upload(
        deps.uploads,
        deps.writer,
        deps.session,
        creator_id=caller.user_id,
        filename=body.filename,
        size=body.size,
        md5=body.md5,
        content_type=body.content_type,
        proof=proof,
    )
    s = deps.settings
    if isinstance(outcome, UploadTicket):
        return Response(upload_json(outcome, s.signature_version), media_type="application/json")
    return json_response(policy_out(outcome, deps.store, s.download_url_ttl, s.signature_version))


@router.post("/callback", responses=_ERRORS, response_model=RecordedOut)
async def upload_callback(request: Request, deps: Deps) -> Response:
    """The store's signed upload callback (oss-protocol.md §2.3); its answer is relayed to the uploader.

    Verified in the event loop when the public key is cached (microseconds of CPU), else in a worker thread that
    fetches it; then recorded with group commit: the answer comes after the commit.
    """
    body = await request.body()
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.decode("latin-1").partition("?")[0]
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers = request.headers
    auth, key_url = headers.get("authorization"), headers.get("x-oss-pub-key-url")
    verifier = deps.verifier
    with _callback_errors():
        if not verifier.verify_cached(authorization=auth, pub_key_url=key_url, path=path, query=query, body=body):
            verify = functools.partial(
                verifier.verify, authorization=auth, pub_key_url=key_url, path=path, query=query, body=body
            )
            await run_in_threadpool(verify)
    record = await group_commit.record_callback(deps.uploads, deps.writer, deps.session, body)
    return json_response(RecordedOut(file=file_out(record, deps.store, deps.settings.download_url_ttl)))


def json_response(body: BaseModel) -> Response:
    """``body`` as a JSON response, serialised once by pydantic: what FastAPI makes of a returned model, minus
    re-validating it against the declared ``response_model`` (which stays for the OpenAPI schema)."""
    return Response(body.model_dump_json(), media_type="application/json")


@contextlib.contextmanager
def _callback_errors() -> Iterator[None]:
    try:
        yield
    except CallbackAuthError as exc:
        raise AppError(str(exc), code=exc.reason, status=403) from None
    except KeyUnavailableError as exc:
        raise AppError(str(exc), code="key_unavailable", status=503) from None


@router.post("/complete", responses=_ERRORS)
def complete(body: CompleteIn, user: UserId, deps: Deps) -> RecordedOut | ProofOut:
    """Record the caller's upload after checking the object in the store (when the callback failed)."""
    proof = Proof(body.proof.token, body.proof.md5) if body.proof else None
    with deps.session() as session:
        outcome = complete_upload(
            deps.uploads, session, creator_id=user, key=body.key, upload_id=body.upload_id, proof=proof
        )
        if isinstance(outcome, ProofRequired):
            return proof_out(outcome)
        return RecordedOut(file=file_out(outcome, deps.store, deps.settings.download_url_ttl))
