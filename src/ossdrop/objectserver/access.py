"""Who may do what: the signed owner may do everything; anonymous requests only what ACLs grant (§6)."""

from __future__ import annotations

from ossdrop.core.errors import OSSError
from ossdrop.objectserver.http import OSSRequest
from ossdrop.storage.base import Bucket, ObjectRecord

BUCKET_ACLS = ("private", "public-read", "public-read-write")
OBJECT_ACLS = ("default", *BUCKET_ACLS)


def effective_acl(bucket: Bucket, record: ObjectRecord | None) -> str:
    """An object's ACL, with ``default`` meaning the bucket's."""
    if record is not None and record.attrs.acl != "default":
        return record.attrs.acl
    return bucket.acl


def require_read(req: OSSRequest, bucket: Bucket, record: ObjectRecord | None = None) -> None:
    if req.access_key is None and effective_acl(bucket, record) not in ("public-read", "public-read-write"):
        raise OSSError("AccessDenied")


def require_write(req: OSSRequest, bucket: Bucket) -> None:
    if req.access_key is None and bucket.acl != "public-read-write":
        raise OSSError("AccessDenied")


def require_owner(req: OSSRequest) -> None:
    if req.access_key is None:
        raise OSSError("AccessDenied", "Anonymous access is forbidden for this operation.")
