"""The upload page: ``/`` (``web/index.html``), ``/static/app.js``, ``/static/app.css`` and
``/static/vendor/md5.js`` (hash-wasm's MD5 build, from ``web/node_modules``, which ``make install`` creates).

Every answer carries a Content-Security-Policy that allows nothing from the internet: scripts, styles and fonts
from this server only (plus ``'wasm-unsafe-eval'`` for hash-wasm's WebAssembly), images and XHR from this server
and the store the uploads go to.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from ossdrop.appserver.deps import AppDeps, Deps
from ossdrop.appserver.errors import error_response

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
NODE_MODULES = WEB_DIR / "node_modules"
MD5_JS = NODE_MODULES / "hash-wasm" / "dist" / "md5.umd.min.js"
_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_MISSING = (
    "The upload page's browser dependency (hash-wasm) is not installed: run `make install` "
    "(it runs `npm ci --prefix src/ossdrop/appserver/web`), then reload."
)

router = APIRouter(include_in_schema=False)


def store_origins(deps: AppDeps) -> list[str]:
    """The origins the page talks to besides its own: the store's endpoint and its upload (bucket) URL."""
    origins: list[str] = []
    for url in (deps.settings.oss_endpoint, deps.store.post_url):
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    return origins


def content_security_policy(deps: AppDeps) -> str:
    """No remote loads: everything from ``'self'``, images and XHR also from the store."""
    store = " ".join(store_origins(deps))
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "style-src 'self'",
            f"img-src 'self' {store} data: blob:",
            f"connect-src 'self' {store}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        )
    )


def _headers(deps: AppDeps, *, cache: str = "no-cache") -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(deps),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache,
    }


def render_index(deps: AppDeps) -> str:
    """``index.html`` with the page's settings (dev mode, upload limit) filled in."""
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    s = deps.settings
    return html.replace("__DEV_MODE__", "true" if s.dev_mode else "false").replace(
        "__MAX_UPLOAD_BYTES__", str(s.max_upload_bytes)
    )


def _missing_page(deps: AppDeps) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ossdrop: set-up needed</title></head>'
        f"<body><h1>Set-up needed</h1><p>{_MISSING}</p></body></html>"
    )
    return HTMLResponse(body, status_code=503, headers=_headers(deps))


@router.get("/")
async def index(deps: Deps) -> Response:
    """The upload page (503 with set-up instructions when ``node_modules`` is missing)."""
    if not MD5_JS.is_file():
        return _missing_page(deps)
    return HTMLResponse(render_index(deps), headers=_headers(deps))


@router.get("/static/vendor/md5.js")
async def md5_js(deps: Deps) -> Response:
    """hash-wasm's MD5 (UMD build: defines ``globalThis.hashwasm.createMD5``)."""
    if not MD5_JS.is_file():
        return PlainTextResponse(_MISSING, status_code=503, headers=_headers(deps))
    return FileResponse(MD5_JS, media_type=_STATIC["app.js"], headers=_headers(deps))


@router.get("/static/{name}")
async def static(name: str, deps: Deps) -> Response:
    """The page's own script and style sheet (only those names)."""
    media_type = _STATIC.get(name)
    if media_type is None:
        return error_response(404, "not_found", f"no static file {name!r}", _headers(deps))
    return FileResponse(WEB_DIR / name, media_type=media_type, headers=_headers(deps))
