"""Optional store features installed on top of the core routes (PostObject and callbacks, CORS, processing)."""

from __future__ import annotations

from ossdrop.objectserver.app import ObjectServer
from ossdrop.objectserver.callback_hook import PEM_CONTENT_TYPE, PUB_KEY_PATH, make_hook
from ossdrop.objectserver.context import Context
from ossdrop.objectserver.handlers import cors, post_object
from ossdrop.objectserver.http import OSSRequest, OSSResponse
from ossdrop.objectserver.processing import install_processing
from ossdrop.objectserver.routing import Operation, register


def install_features(app: ObjectServer) -> None:
    """Register every feature module available; each adds routes and/or extensions to ``app``."""
    install_direct_upload(app)
    install_cors(app)
    install_processing(app)


def install_direct_upload(app: ObjectServer) -> None:
    """PostObject (§1) and upload callbacks (§2): the hook PutObject/Complete call, the public key the callbacks
    announce in ``x-oss-pub-key-url`` (served unauthenticated, outside any bucket)."""
    hook, pem = make_hook(app.ctx)
    app.ctx.callback_hook = hook

    async def public_key(_ctx: Context, _req: OSSRequest) -> OSSResponse:
        return OSSResponse(200, [("Content-Type", PEM_CONTENT_TYPE)], pem)

    app.special_paths[PUB_KEY_PATH] = public_key
    # §1.1: POST /<bucket> (or POST / virtual-hosted), authenticated by its form fields only.
    register("POST", "bucket", "", Operation("PostObject", post_object.post_object, form_auth=True))


def install_cors(app: ObjectServer) -> None:
    """Bucket CORS rules, the OPTIONS preflight and the CORS headers on responses (§12 "CORS")."""
    register("PUT", "bucket", "cors", Operation("PutBucketCors", cors.put_bucket_cors))
    register("GET", "bucket", "cors", Operation("GetBucketCors", cors.get_bucket_cors, bucket_first=True))
    register("DELETE", "bucket", "cors", Operation("DeleteBucketCors", cors.delete_bucket_cors))
    app.ctx.preflight = cors.preflight
    app.ctx.response_hooks.append(cors.add_cors_headers)
