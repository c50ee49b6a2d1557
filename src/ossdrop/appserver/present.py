"""Turning records and use-case outcomes into API bodies (signed URLs included)."""

from __future__ import annotations

import orjson

from ossdrop.appserver.schemas import ExistsOut, FileOut, ProofChallenge, ProofOut, UploadOut
from ossdrop.client.oss import OssClient
from ossdrop.db.models import StorageRecord
from ossdrop.services.uploads import Exists, ProofRequired, UploadTicket

THUMBNAIL_PROCESS = "image/resize,m_lfit,w_256,h_256"
SNAPSHOT_PROCESS = "video/snapshot,t_1000,f_jpg,w_320,m_fast"


def file_out(record: StorageRecord, store: OssClient, ttl: int) -> FileOut:
    """The API view of ``record`` with GET URLs signed for ``ttl`` seconds (signing is local, no store call)."""
    mime = record.mime_type or ""
    thumb = store.presign_get(record.path, ttl, process=THUMBNAIL_PROCESS) if mime.startswith("image/") else None
    snap = store.presign_get(record.path, ttl, process=SNAPSHOT_PROCESS) if mime.startswith("video/") else None
    return FileOut(
        id=record.id,
        name=record.name,
        path=record.path,
        ext=record.ext,
        md5=record.md5,
        size=record.size,
        mime_type=record.mime_type,
        width=record.width,
        height=record.height,
        duration=record.duration,
        creator_id=record.creator_id,
        created_at=record.created_at,
        url=store.presign_get(record.path, ttl),
        thumbnail_url=thumb,
        snapshot_url=snap,
    )


def proof_out(outcome: ProofRequired) -> ProofOut:
    """The challenge a client must answer."""
    c = outcome.challenge
    return ProofOut(
        proof=ProofChallenge(token=outcome.token, first=c.first, last=c.last, range=f"bytes={c.first}-{c.last}")
    )


def policy_out(
    outcome: Exists | ProofRequired | UploadTicket, store: OssClient, ttl: int, version: str
) -> UploadOut | ExistsOut | ProofOut:
    """The answer of ``POST /api/uploads/policy`` for one outcome."""
    if isinstance(outcome, Exists):
        return ExistsOut(file=file_out(outcome.record, store, ttl))
    if isinstance(outcome, ProofRequired):
        return proof_out(outcome)
    seed = {k: str(v) for k, v in outcome.seed_fields.items() if k != "expire"}
    return UploadOut(
        url=outcome.url,
        fields=outcome.fields,
        key=outcome.key,
        upload_id=outcome.upload_id,
        expire=outcome.expire,
        signature_version=version,
        accessid=seed.get("accessid"),
        host=seed.get("host"),
        policy=seed.get("policy"),
        signature=seed.get("signature"),
        callback=seed.get("callback"),
        dir=seed.get("dir"),
    )


def upload_json(ticket: UploadTicket, version: str) -> bytes:
    """``policy_out(ticket, ...).model_dump_json()`` without building the model: the same keys in the same order
    (the hot answer of ``POST /api/uploads/policy``; a test compares the two)."""
    seed = ticket.seed_fields
    doc: dict[str, object] = {
        "status": "upload",
        "url": ticket.url,
        "fields": ticket.fields,
        "key": ticket.key,
        "upload_id": ticket.upload_id,
        "expire": ticket.expire,
        "signature_version": version,
    }
    for name in _SEED_NAMES:
        value = seed.get(name)
        doc[name] = None if value is None else str(value)
    return orjson.dumps(doc)


_SEED_NAMES = ("accessid", "host", "policy", "signature", "callback", "dir")
