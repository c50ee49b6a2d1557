"""Multipart rules, free of HTTP: part numbers, choosing and checking the parts of a Complete (§5.3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ossdrop.core.checksums import multipart_etag
from ossdrop.core.errors import OSSError
from ossdrop.protocol import xml
from ossdrop.protocol.params import int_param
from ossdrop.services.objects import OBJECT_ACLS
from ossdrop.storage.base import Part, Upload

MIN_PART_SIZE = 100 * 1024  # every part but the last, checked only at Complete


def part_number(raw: str | None) -> int:
    return int_param(raw or "x", "partNumber", 0, 1, 10000)


def choose_parts(uploaded: Sequence[Part], body: bytes, *, complete_all: bool) -> list[Part]:
    """The parts a Complete names, in order, each matching an uploaded part's ETag; sizes checked."""
    if complete_all:
        # oss2 sends an empty <CompleteMultipartUpload/> document here; only listed parts are refused.
        if body.strip() and xml.parse(body).findall("Part"):
            raise OSSError("InvalidArgument", "Should not specify parts when x-oss-complete-all is yes.")
        chosen = list(uploaded)
    else:
        chosen = _named_parts(uploaded, body)
    if not chosen:
        raise OSSError("InvalidPart", "You must specify at least one part.")
    for p in chosen[:-1]:
        if p.size < MIN_PART_SIZE:
            raise OSSError(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size.",
                {"PartNumber": str(p.number)},
            )
    return chosen


def _named_parts(uploaded: Sequence[Part], body: bytes) -> list[Part]:
    root = xml.parse(body)
    by_number = {p.number: p for p in uploaded}
    chosen: list[Part] = []
    for elem in root.findall("Part"):
        number_text = xml.text(elem, "PartNumber")
        if not number_text.isdigit():
            raise OSSError("MalformedXML")
        number = int(number_text)
        if chosen and number <= chosen[-1].number:
            raise OSSError("InvalidPartOrder")
        part = by_number.get(number)
        if part is None or xml.text(elem, "ETag").strip().strip('"').upper() != part.etag:
            raise OSSError("InvalidPart", extra={"PartNumber": str(number)})
        chosen.append(part)
    return chosen


def multipart_etag_of(parts: Sequence[Part]) -> str:
    return multipart_etag([p.etag for p in parts])


def with_acl(upload: Upload, acl: str) -> Upload:
    """§12: ``x-oss-object-acl`` on Complete overrides the one given at Initiate."""
    if acl not in OBJECT_ACLS:
        raise OSSError("InvalidArgument", "no such object access control exists", {"ArgumentName": "x-oss-object-acl"})
    return replace(upload, attrs=replace(upload.attrs, acl=acl))


@dataclass(frozen=True)
class UploadsPage:
    """One page of ListMultipartUploads."""

    uploads: list[Upload]
    prefixes: list[str]
    prefix: str
    delimiter: str
    key_marker: str
    upload_id_marker: str
    next_key_marker: str
    next_upload_id_marker: str
    max_uploads: int
    truncated: bool


def uploads_page(uploads: Sequence[Upload], param: Callable[[str], str | None]) -> UploadsPage:
    """Filter and page the bucket's uploads by prefix, delimiter, key-marker / upload-id-marker, max-uploads."""
    prefix, delimiter = param("prefix") or "", param("delimiter") or ""
    key_marker, id_marker = param("key-marker") or "", param("upload-id-marker") or ""
    max_uploads = int_param(param("max-uploads"), "max-uploads", 1000, 1, 1000)
    after = [u for u in uploads if u.key.startswith(prefix) and (u.key, u.upload_id) > (key_marker, id_marker)]
    if not id_marker:
        after = [u for u in after if u.key > key_marker]
    chosen: list[Upload] = []
    prefixes: list[str] = []
    truncated = False
    for u in after:
        if len(chosen) + len(prefixes) >= max_uploads:
            truncated = True
            break
        cut = u.key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = u.key[: cut + len(delimiter)]
            if common not in prefixes:
                prefixes.append(common)
            continue
        chosen.append(u)
    last = chosen[-1] if chosen else None
    return UploadsPage(
        chosen,
        prefixes,
        prefix,
        delimiter,
        key_marker,
        id_marker,
        last.key if last else "",
        last.upload_id if last else "",
        max_uploads,
        truncated,
    )
