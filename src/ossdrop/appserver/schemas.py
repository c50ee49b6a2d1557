"""Request and response bodies of the app server's JSON API (also what ``/docs`` shows)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FileOut(BaseModel):
    """A file as the API shows it: the ``storage`` row plus short-lived signed URLs."""

    id: int
    name: str
    path: str
    ext: str
    md5: str
    size: int | None
    mime_type: str | None
    width: int | None
    height: int | None
    duration: float | None = None
    creator_id: int
    created_at: int
    url: str
    thumbnail_url: str | None = None
    snapshot_url: str | None = None


class ProofIn(BaseModel):
    """The answer to a ``proof_required``: the token as given and the hex MD5 of the requested byte range."""

    model_config = ConfigDict(extra="forbid")
    token: str = Field(max_length=4096)
    md5: str = Field(max_length=64)


class PolicyIn(BaseModel):
    """``POST /api/uploads/policy``: what the client wants to upload."""

    model_config = ConfigDict(extra="forbid")
    filename: str = Field(min_length=1, max_length=256)
    size: int | None = None
    content_type: str | None = Field(default=None, max_length=128, pattern=r"^[\x21-\x7e]+(/[\x20-\x7e]+)?$")
    md5: str | None = Field(default=None, max_length=64)
    proof: ProofIn | None = None


class UploadOut(BaseModel):
    """Upload needed: POST ``fields`` (in order) then the file as ``file`` to ``url``.

    With v1 signing the seed design's fields (``accessid, host, policy, signature, callback, dir``) are also here.
    """

    status: Literal["upload"] = "upload"
    url: str
    fields: dict[str, str]
    key: str
    upload_id: str
    expire: int
    signature_version: str
    accessid: str | None = None
    host: str | None = None
    policy: str | None = None
    signature: str | None = None
    callback: str | None = None
    dir: str | None = None


class ExistsOut(BaseModel):
    """Instant upload: no bytes need to be sent; ``file`` is the new record for this upload."""

    status: Literal["exists"] = "exists"
    file: FileOut


class ProofChallenge(BaseModel):
    """Send the MD5 of bytes ``first..last`` (inclusive) of the file back with ``token`` as ``proof``."""

    token: str
    first: int
    last: int
    range: str


class ProofOut(BaseModel):
    """Global dedup found the content: prove possession to reuse it."""

    status: Literal["proof_required"] = "proof_required"
    proof: ProofChallenge


class CompleteIn(BaseModel):
    """``POST /api/uploads/complete``: the key of the upload (and its ``upload_id`` when known)."""

    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=1024)
    upload_id: str | None = Field(default=None, max_length=64)
    proof: ProofIn | None = None


class RecordedOut(BaseModel):
    """The upload is recorded (callback answer, relayed by the store to the browser; ``complete`` answer)."""

    status: Literal["ok"] = "ok"
    file: FileOut


class FileList(BaseModel):
    """One page of the caller's files, newest first; ``next_cursor`` is null on the last page."""

    items: list[FileOut]
    next_cursor: str | None


class LoginIn(BaseModel):
    """Dev mode only: log in as any user id."""

    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(gt=0, lt=2**31)


class LoginOut(BaseModel):
    """A bearer token for ``Authorization: Bearer <token>``."""

    token: str


class ErrorOut(BaseModel):
    """Every error: a stable machine-readable ``error`` code and a human ``message``."""

    error: str
    message: str
