"""The upload page in a real browser: ``ossdrop serve`` as a user runs it, and Debian's chromium through Playwright.

Chromium is never downloaded (no ``playwright install``): ``.ci/services.sh`` installs Debian's package, and the
tests launch ``/usr/bin/chromium`` through ``executable_path``. Without it the tests are skipped, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import alibabacloud_oss_v2 as oss
import av
import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from ossdrop.appserver.runner import page_origins
from tests.conftest import launch_serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MAX_UPLOAD_BYTES = 1024 * 1024
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@dataclass
class Served:
    """A running ``ossdrop serve`` (dev mode, embedded store) and what it printed."""

    app_url: str
    store_url: str
    data_dir: Path
    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    cors_set_by_serve: bool = False

    def login(self, user_id: int) -> httpx.Client:
        r = httpx.post(f"{self.app_url}/api/dev/login", json={"user_id": user_id}, trust_env=False)
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        return httpx.Client(base_url=self.app_url, headers=headers, timeout=30, trust_env=False)


def _drain(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


def _start_serve(data_dir: Path, **settings: str) -> Served:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSSDROP_")}
    env.update(PYTHONUNBUFFERED="1", OSSDROP_MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES), OSSDROP_RECONCILE_INTERVAL="3600")
    env.update({f"OSSDROP_{k.upper()}": v for k, v in settings.items()})
    launched = launch_serve(data_dir, env)
    proc, lines = launched.proc, launched.lines
    threading.Thread(target=_drain, args=(proc, lines), daemon=True).start()
    return Served(launched.app_url, launched.store_url, data_dir, proc, lines)


def store_allows(served: Served) -> bool:
    """Whether the store answers a CORS preflight for a form POST from the page's origin."""
    r = httpx.options(
        f"{served.store_url}/ossdrop",
        headers={"Origin": served.app_url, "Access-Control-Request-Method": "POST"},
        trust_env=False,
    )
    return r.status_code == 200 and r.headers.get("access-control-allow-origin") == served.app_url


def set_page_cors(served: Served) -> None:
    """The bucket CORS rule the page needs (the one ``ossdrop serve`` is expected to set)."""
    creds = json.loads((served.data_dir / "store" / "credentials.json").read_text())
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        creds["access_key_id"], creds["access_key_secret"]
    )
    cfg.region, cfg.endpoint, cfg.use_path_style = "cn-hangzhou", served.store_url, True
    rule = oss.CORSRule(
        allowed_origins=page_origins(served.app_url),
        allowed_methods=["POST", "GET", "HEAD"],
        allowed_headers=["*"],
        expose_headers=["ETag", "x-oss-request-id"],
        max_age_seconds=600,
    )
    request = oss.PutBucketCorsRequest(bucket="ossdrop", cors_configuration=oss.CORSConfiguration(cors_rules=[rule]))
    oss.Client(cfg).put_bucket_cors(request)


@contextlib.contextmanager
def serving(data_dir: Path, **settings: str) -> Iterator[Served]:
    """``ossdrop serve`` with ``OSSDROP_<NAME>`` ``settings``, stopped at the end.

    When serve has not allowed the page's origin on the bucket, the rule is set here so the page can be tested;
    ``test_serve_allows_the_page_by_cors`` reports the gap.
    """
    s = _start_serve(data_dir, **settings)
    try:
        s.cors_set_by_serve = store_allows(s)
        if not s.cors_set_by_serve:
            set_page_cors(s)
        yield s
    finally:
        s.proc.terminate()
        try:
            s.proc.wait(20)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait(10)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``ossdrop serve`` for the web tests (uploads limited to 1 MiB); tests keep apart by user id."""
    with serving(tmp_path_factory.mktemp("web-serve")) as s:
        yield s


@pytest.fixture(scope="session")
def served_global(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``ossdrop serve`` with global deduplication (a second user must prove possession)."""
    with serving(tmp_path_factory.mktemp("web-serve-global"), dedup_scope="global") as s:
        yield s


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium; .ci/services.sh does it under CI)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield b
    b.close()


@dataclass
class Visit:
    """A browser page on the app, with every request it made and every error it logged."""

    page: Page
    requests: list[str]
    problems: list[str]


@contextlib.contextmanager
def visiting(browser: Browser, app_url: str) -> Iterator[Visit]:
    """A fresh browser context on the page at ``app_url``, ready for input."""
    context = browser.new_context(viewport={"width": 1180, "height": 900}, locale="en-GB", timezone_id="UTC")
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        requests: list[str] = []
        problems: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.goto(app_url + "/")
        page.wait_for_selector("body[data-ready='true']", state="attached")
        yield Visit(page, requests, problems)
    finally:
        context.close()


@pytest.fixture
def visit(browser: Browser, served: Served) -> Iterator[Visit]:
    with visiting(browser, served.app_url) as v:
        yield v


def new_user() -> int:
    return secrets.randbelow(2**30) + 1000


def png_bytes(width: int = 640, height: int = 420, color: tuple[int, int, int] = (36, 99, 214)) -> bytes:
    """A PNG with a colour field, a lighter disc and a bar, so a thumbnail is recognisable."""
    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    light = tuple(min(255, c + 90) for c in color)
    draw.ellipse((width * 0.55, height * 0.15, width * 0.9, height * 0.7), fill=light)
    draw.rectangle((width * 0.08, height * 0.72, width * 0.6, height * 0.82), fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def mp4_bytes(seconds: float = 2.0, fps: int = 24, size: tuple[int, int] = (320, 240)) -> bytes:
    """An H.264 clip (PyAV, libx264): a bar sweeping across a gradient."""
    width, height = size
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        frames = int(seconds * fps)
        for n in range(frames):
            image = Image.new("RGB", size, (20, 24, 38))
            draw = ImageDraw.Draw(image)
            for x in range(0, width, 8):
                draw.rectangle((x, 0, x + 8, height), fill=(30 + x // 4, 60, 120 + x // 5))
            left = int((width - 60) * n / max(1, frames - 1))
            draw.rectangle((left, height // 3, left + 60, height * 2 // 3), fill=(250, 190, 40))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()
