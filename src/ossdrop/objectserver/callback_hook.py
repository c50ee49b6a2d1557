"""Upload callbacks wired into the store (oss-protocol.md §2): the :class:`~ossdrop.objectserver.context.CallbackHook`
that PutObject, PostObject and CompleteMultipartUpload call, the store's RSA key and the public-key route.

The hook validates the ``callback`` parameter before any byte is stored (§2.1: a bad one is 400 ``InvalidArgument``),
then, once the object is stored, renders the body with the §2.2 variables, sends it (awaited in the request's own
task with async httpx, so a slow app never blocks other requests) and turns the outcome into the uploader's response
(§2.4: 200 with the app's JSON, or 203 ``CallbackFailed`` with the object kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ossdrop.core.errors import OSSError
from ossdrop.media.probe import image_info
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.http import OSSRequest, OSSResponse, error_response
from ossdrop.protocol.callback import CallbackSpec, generate_callback_key, load_private_key, parse_callback, render_body
from ossdrop.services.callbacks import CallbackSender
from ossdrop.storage.base import ObjectRecord

KEY_FILE = "callback_key.pem"
# OSS signs with a 512-bit key (§2.3); cryptography generates no less than 1024. Signing with 1024 bits costs 0.1 ms
# of event-loop CPU per callback against 0.4 ms with 2048, and MD5 caps the strength of MD5withRSA anyway.
KEY_BITS = 1024
PUB_KEY_PATH = "/callback_pub_key_v1.pem"  # named like OSS's own key file (§2.3)
PEM_CONTENT_TYPE = "application/x-pem-file"
# Headers of the plain success response that the callback outcome keeps (§2.4: ETag, request id, CRC stay).
_KEPT = frozenset({"etag", "x-oss-hash-crc64ecma", "content-md5", "x-oss-version-id"})


def load_or_create_callback_key(root: str) -> rsa.RSAPrivateKey:
    """The store's callback signing key, kept in ``<root>/callback_key.pem`` (mode 0600) and made on first start.

    Creation is atomic (written to a private temporary file, then hard-linked into place), so two stores starting
    on one root agree on a single key.
    """
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, KEY_FILE)
    if not os.path.exists(path):
        private_pem, _ = generate_callback_key(KEY_BITS)
        tmp = f"{path}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        os.unlink(tmp)
    with open(path, "rb") as fh:
        return load_private_key(fh.read())


def public_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """The SubjectPublicKeyInfo PEM apps fetch from ``x-oss-pub-key-url`` (§2.3 step 3)."""
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def pub_key_url(endpoint: str) -> str:
    """Where the store serves its public key: ``<endpoint>/callback_pub_key_v1.pem``."""
    return endpoint.rstrip("/") + PUB_KEY_PATH


def callback_from_request(req: OSSRequest) -> CallbackSpec | None:
    """The callback of a PutObject/CompleteMultipartUpload request (§2.1): header ``x-oss-callback`` (plus
    ``x-oss-callback-var``) or query ``callback`` (plus ``callback-var``), also on presigned URLs.

    Using both carriers is 400 ``InvalidArgument``; so is any defect :func:`parse_callback` finds.
    """
    header, query = req.headers.get("x-oss-callback"), req.param("callback")
    if header is not None and query is not None:
        raise OSSError("InvalidArgument", "Specify the callback in the header or the query, not both.",
                       {"ArgumentName": "callback"})  # fmt: skip
    if header is not None:
        return parse_callback(header, req.headers.get("x-oss-callback-var") or None)
    if query is not None:
        return parse_callback(query, req.param("callback-var") or None)
    return None


async def _image_variables(path: str) -> dict[str, str | int]:
    info = await asyncio.to_thread(image_info, path)
    if info is None:
        return {}
    return {"imageInfo.height": info.height, "imageInfo.width": info.width, "imageInfo.format": info.format}


async def system_variables(
    ctx: Context, req: OSSRequest, spec: CallbackSpec, record: ObjectRecord, operation: str
) -> dict[str, str | int]:
    """The §2.2 system variables for ``record``. ``imageInfo.*`` is read from the image header only, and only
    when the template uses it; it stays empty for non-images. ``contentMd5`` is empty for multipart objects."""
    variables: dict[str, str | int] = {
        "bucket": record.bucket,
        "object": record.key,
        "etag": record.etag,
        "size": record.size,
        "mimeType": record.attrs.content_type,
        "crc64": str(record.crc64),
        "contentMd5": record.content_md5,
        "vpcId": "",
        "clientIp": req.client_ip,
        "reqId": req.request_id,
        "operation": operation,
    }
    if "${imageInfo." in spec.body:
        variables.update(await _image_variables(ctx.storage.blob_path(record.blob_id)))
    return variables


class StoreCallbackHook:
    """The store's :class:`~ossdrop.objectserver.context.CallbackHook`, sending through one :class:`CallbackSender`."""

    def __init__(self, sender: CallbackSender) -> None:
        self.sender = sender

    def prepare(self, req: OSSRequest) -> CallbackSpec | None:
        """See :func:`callback_from_request`."""
        return callback_from_request(req)

    async def run(
        self, ctx: Context, req: OSSRequest, callback: object, record: ObjectRecord, operation: str, ok: OSSResponse
    ) -> OSSResponse:
        """Send the callback for a stored object and build the uploader's response from ``ok`` (§2.4)."""
        assert isinstance(callback, CallbackSpec)
        body = render_body(callback, await system_variables(ctx, req, callback, record, operation))
        outcome = await self.sender.send(callback, body)
        kept = [(k, v) for k, v in ok.headers if k.lower() in _KEPT]
        if outcome.ok:
            return OSSResponse(200, [*kept, ("Content-Type", "application/json")], outcome.body)
        failed = error_response(OSSError("CallbackFailed", outcome.message), req.request_id, req.host, False)
        failed.headers += kept
        return failed


def make_hook(ctx: Context) -> tuple[StoreCallbackHook, bytes]:
    """A hook signing with the key kept in the store root, and the public key PEM to serve."""
    key = load_or_create_callback_key(ctx.config.root)
    sender = CallbackSender(key, pub_key_url(ctx.config.endpoint), timeout=ctx.config.callback_timeout)
    return StoreCallbackHook(sender), public_key_pem(key)
