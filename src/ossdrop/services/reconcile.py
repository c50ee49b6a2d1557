"""Nothing lost: reconcile pending uploads whose callback never came, and sweep objects nobody explains.

:func:`reconcile` takes pending uploads whose policy has expired (no further upload can use them): when the
object exists it is verified and recorded exactly as ``complete`` would, otherwise the upload is marked expired.
:func:`sweep` lists the upload directory and removes objects older than a grace period that no record and no
still-pending upload refers to.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ossdrop.db import repository as repo
from ossdrop.db.models import PendingUpload, UploadState
from ossdrop.services import files
from ossdrop.services.app_errors import AppError
from ossdrop.services.keys import DedupScope, InvalidKeyError, parse_key
from ossdrop.services.uploads import Uploads, record_from_store

log = logging.getLogger(__name__)
BATCH = 100


@dataclass
class ReconcileReport:
    """Counts of one reconcile run; ``failed`` lists upload ids left pending after an error (tried next run)."""

    recorded: int = 0
    expired: int = 0
    failed: list[str] = field(default_factory=list)


@dataclass
class SweepReport:
    """Objects examined and the keys removed (or that would be, with ``dry_run``)."""

    examined: int = 0
    removed: list[str] = field(default_factory=list)


def reconcile(up: Uploads, session: Session, *, max_batches: int = 100) -> ReconcileReport:
    """Settle every pending upload whose policy expired by now (see the module docstring)."""
    report = ReconcileReport()
    seen: set[str] = set()
    for _ in range(max_batches):
        batch = [p for p in files.stale_uploads(session, now=up.now(), limit=BATCH) if p.upload_id not in seen]
        if not batch:
            break
        for pending in batch:
            seen.add(pending.upload_id)
            _settle(up, session, pending, report)
    return report


def _settle(up: Uploads, session: Session, pending: PendingUpload, report: ReconcileReport) -> None:
    try:
        if _global_taken(up, session, pending):
            # Someone else's upload filled this global key; without a proof from this creator, never share it.
            files.expire_upload(session, pending.upload_id, now=up.now())
            report.expired += 1
            return
        record = record_from_store(up, session, pending)
        if record is None:
            files.expire_upload(session, pending.upload_id, now=up.now())
            report.expired += 1
        else:
            report.recorded += 1
    except AppError as exc:
        if exc.code in ("content_mismatch", "upload_mismatch", "unverifiable_content"):
            report.expired += 1
            return
        log.warning("reconcile: upload %s left pending: %s", pending.upload_id, exc.message)
        report.failed.append(pending.upload_id)


def _global_taken(up: Uploads, session: Session, pending: PendingUpload) -> bool:
    try:
        scope = parse_key(pending.object_key, upload_dir=up.config.upload_dir).scope
    except InvalidKeyError:
        return False
    taken = scope is DedupScope.GLOBAL and repo.get_object(session, pending.object_key) is not None
    session.commit()  # ends the read; unlike rollback, keeps loaded rows readable
    return taken


def sweep(up: Uploads, session: Session, *, older_than: int, dry_run: bool = False) -> SweepReport:
    """Remove objects under the upload directory older than ``older_than`` seconds that nothing explains."""
    report = SweepReport()
    cutoff = datetime.datetime.fromtimestamp(up.now() - older_than, tz=datetime.UTC)
    for item in up.store.list(up.config.upload_dir.strip("/") + "/"):
        report.examined += 1
        if item.last_modified is not None and item.last_modified > cutoff:
            continue
        if _explained(session, item.key):
            continue
        if not dry_run:
            up.store.delete(item.key)
        report.removed.append(item.key)
    return report


def _explained(session: Session, key: str) -> bool:
    try:
        if repo.get_object(session, key) is not None:
            return True
        stmt = select(PendingUpload.id).where(
            PendingUpload.object_key == key, PendingUpload.state == UploadState.PENDING.value
        )
        return session.scalars(stmt.limit(1)).first() is not None
    finally:
        session.commit()  # ends the read; unlike rollback, keeps loaded rows readable
