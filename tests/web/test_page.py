"""The upload page driven in Debian's chromium against ``ossdrop serve``: sign in, upload an image and see its
thumbnail, upload it again and see the instant upload, a video's snapshot, an oversize file's error, a callback
failure recovered by ``complete``, deleting, the keyboard, and nothing loaded from outside loopback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Locator, Page, Route, expect

from ossdrop.appserver.routes import page as page_routes
from tests.web.conftest import (
    ARTIFACTS,
    MAX_UPLOAD_BYTES,
    Served,
    Visit,
    mp4_bytes,
    new_user,
    png_bytes,
    visiting,
)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def sign_in(page: Page, user_id: int) -> None:
    page.get_by_label("User ID").fill(str(user_id))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as user {user_id}")).to_be_visible()
    expect(page.locator("#gallery-status")).to_have_text("No files yet. Upload one above.")


def add_files(page: Page, *files: tuple[str, str, bytes]) -> None:
    payloads: Any = [{"name": n, "mimeType": t, "buffer": b} for n, t, b in files]
    page.locator("#file-input").set_input_files(payloads)


def upload_item(page: Page, name: str) -> Locator:
    """The newest upload row of ``name`` (rows are prepended)."""
    return page.locator("#uploads > li").filter(has=page.locator(".upload-name", has_text=re.compile(f"^{name}$")))


def card(page: Page, name: str) -> Locator:
    return page.locator("#gallery > li").filter(has=page.locator(".card-name", has_text=re.compile(f"^{name}$")))


def wait_image(page: Page, img: Locator) -> dict[str, Any]:
    """Wait until ``img`` has loaded a real picture; its natural size and source."""
    expect(img).to_be_visible()
    handle = img.element_handle()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=handle)
    info: dict[str, Any] = img.evaluate("img => ({w: img.naturalWidth, h: img.naturalHeight, src: img.currentSrc})")
    return info


def assert_clean(visit: Visit) -> None:
    """No script errors, and every request went to loopback (no CDN, nothing from the internet)."""
    assert not [p for p in visit.problems if "Failed to load resource" not in p], visit.problems
    remote = [u for u in visit.requests if urlsplit(u).scheme != "data" and urlsplit(u).hostname not in LOOPBACK]
    assert not remote, remote


def test_serve_allows_the_page_by_cors(served: Served) -> None:
    """The page posts forms to the store and reads the reply: ``ossdrop serve`` must allow its origin."""
    assert served.cors_set_by_serve, (
        "ossdrop serve set no bucket CORS rule for the page's origin: the browser cannot read the store's reply. "
        "It must put a CORSRule (AllowedOrigin = the app's origin, AllowedMethod POST/GET/HEAD, AllowedHeader *)."
    )


def test_page_headers_forbid_remote_loads(served: Served) -> None:
    r = httpx.get(served.app_url + "/", trust_env=False)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "'wasm-unsafe-eval'" in csp
    assert f"img-src 'self' {served.store_url}" in csp
    assert f"connect-src 'self' {served.store_url}" in csp
    assert "http" not in re.sub(r"https?://(127\.0\.0\.1|localhost)(:\d+)?", "", csp)
    assert 'data-dev-mode="true"' in r.text
    assert f'data-max-upload-bytes="{MAX_UPLOAD_BYTES}"' in r.text
    for path in ("/static/app.js", "/static/app.css", "/static/vendor/md5.js"):
        assert httpx.get(served.app_url + path, trust_env=False).status_code == 200, path
    assert httpx.get(served.app_url + "/static/../pyproject.toml", trust_env=False).status_code == 404
    assert httpx.get(served.app_url + "/static/index.html", trust_env=False).status_code == 404


async def test_missing_node_modules_gives_a_set_up_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(page_routes, "MD5_JS", tmp_path / "missing.js")
    app = FastAPI()
    settings = SimpleNamespace(oss_endpoint="http://127.0.0.1:9", dev_mode=True, max_upload_bytes=10)
    app.state.deps = SimpleNamespace(settings=settings, store=SimpleNamespace(post_url="http://127.0.0.1:9/b"))
    app.include_router(page_routes.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://page") as client:
        r = await client.get("/")
        assert r.status_code == 503
        assert "make install" in r.text
        assert "content-security-policy" in r.headers
        assert (await client.get("/static/vendor/md5.js")).status_code == 503


def test_upload_image_then_again_instantly(visit: Visit, served: Served) -> None:
    page = visit.page
    sign_in(page, new_user())
    image = png_bytes()
    add_files(page, ("harbour.png", "image/png", image))
    row = upload_item(page, "harbour.png")
    expect(row.locator(".upload-state")).to_have_text(re.compile(r"^Uploaded, \d\.\d KB sent\.$"))
    expect(row.locator("progress")).to_have_attribute("value", "100")
    reply = row.locator(".upload-result pre").text_content() or ""
    assert '"status": "ok"' in reply
    assert '"md5"' in reply

    thumb = card(page, "harbour.png").locator("img")
    info = wait_image(page, thumb)
    assert "x-oss-process=image" in info["src"] or "x-oss-process=image" in info["src"].replace("%2F", "/")
    assert info["w"] == 256  # the store's 256 px thumbnail, not the 640 px original
    expect(thumb).to_have_attribute("alt", "Thumbnail of harbour.png")

    add_files(page, ("harbour.png", "image/png", image))
    again = upload_item(page, "harbour.png").first
    expect(again.locator(".upload-state")).to_have_text(re.compile("Already stored, 0 bytes sent"))
    expect(again).to_have_class(re.compile("is-instant"))
    assert '"status": "exists"' in (again.locator(".upload-result pre").text_content() or "")
    expect(card(page, "harbour.png")).to_have_count(2)
    assert_clean(visit)


def test_video_shows_its_snapshot(visit: Visit) -> None:
    page = visit.page
    sign_in(page, new_user())
    add_files(page, ("sweep.mp4", "video/mp4", mp4_bytes()))
    expect(upload_item(page, "sweep.mp4").locator(".upload-state")).to_have_text(re.compile(r"^Uploaded"))
    snap = card(page, "sweep.mp4").locator("img")
    info = wait_image(page, snap)
    assert "snapshot" in info["src"]
    assert (info["w"], info["h"]) == (320, 240)
    expect(snap).to_have_attribute("alt", "Video frame of sweep.mp4")
    assert_clean(visit)


def test_oversize_file_shows_an_error_and_the_rest_go_on(visit: Visit) -> None:
    page = visit.page
    sign_in(page, new_user())
    big = os.urandom(MAX_UPLOAD_BYTES + 300_000)
    add_files(page, ("huge.bin", "application/octet-stream", big), ("notes.txt", "text/plain", b"hello\n" * 100))
    error = upload_item(page, "huge.bin")
    expect(error.locator(".upload-state")).to_have_text(
        "This file is too large. The limit is 1.0 MB per file.", timeout=30_000
    )
    expect(error).to_have_class(re.compile("is-error"))
    expect(upload_item(page, "notes.txt").locator(".upload-state")).to_have_text("Uploaded, 600 bytes sent.")
    expect(card(page, "notes.txt").locator(".file-badge")).to_have_text("TXT")
    expect(card(page, "huge.bin")).to_have_count(0)
    assert_clean(visit)


def test_callback_failure_is_completed_by_the_page(visit: Visit, served: Served) -> None:
    """The store answers 203 CallbackFailed: the page calls ``complete`` and the file is recorded anyway."""
    page = visit.page
    sign_in(page, new_user())
    posted: list[str] = []

    def callback_failed(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        real = route.fetch()  # the upload happens for real (its object exists); only the answer is replaced
        posted.append(str(real.status))
        body = "<?xml version='1.0'?><Error><Code>CallbackFailed</Code><Message>test</Message></Error>"
        headers = {"Content-Type": "application/xml", "Access-Control-Allow-Origin": served.app_url}
        route.fulfill(status=203, body=body, headers=headers)

    page.route(f"{served.store_url}/**", callback_failed)
    add_files(page, ("late.png", "image/png", png_bytes(300, 200, (180, 70, 60))))
    row = upload_item(page, "late.png")
    expect(row.locator(".upload-state")).to_have_text(re.compile(r"^Uploaded \(recorded after the store's callback"))
    assert posted == ["200"]
    expect(card(page, "late.png")).to_have_count(1)
    assert_clean(visit)


def xml_error(code: str, message: str) -> str:
    return f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (
            403,
            xml_error("AccessDenied", "Invalid according to Policy: Policy expired."),
            "The upload permission expired before the file was sent. Try again.",
        ),
        (
            400,
            xml_error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size."),
            "This file is larger than this upload allows. Try again.",
        ),
        (None, "", "The upload could not reach the store. Check your connection and try again."),
    ],
    ids=["expired-policy", "entity-too-large", "network"],
)
def test_store_errors_are_shown_in_words(
    visit: Visit, served: Served, status: int | None, body: str, words: str
) -> None:
    page = visit.page
    sign_in(page, new_user())

    def answer(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
        elif status is None:
            route.abort("connectionreset")
        else:
            headers = {"Content-Type": "application/xml", "Access-Control-Allow-Origin": served.app_url}
            route.fulfill(status=status, body=body, headers=headers)

    page.route(f"{served.store_url}/**", answer)
    add_files(page, ("refused.png", "image/png", png_bytes(200, 120)))
    row = upload_item(page, "refused.png")
    expect(row.locator(".upload-state")).to_have_text(words)
    expect(row).to_have_class(re.compile("is-error"))
    expect(card(page, "refused.png")).to_have_count(0)


def test_cancel_an_upload(visit: Visit, served: Served) -> None:
    page = visit.page
    sign_in(page, new_user())
    held: list[Route] = []
    page.route(f"{served.store_url}/**", lambda route: held.append(route))  # the store never answers
    add_files(page, ("slow.png", "image/png", png_bytes(200, 120)))
    row = upload_item(page, "slow.png")
    expect(row.locator(".upload-state")).to_have_text(re.compile(r"^Uploading"))
    row.get_by_role("button", name="Cancel slow.png").click()
    expect(row.locator(".upload-state")).to_have_text("Cancelled.")
    expect(row.get_by_role("button", name="Cancel slow.png")).to_be_hidden()
    assert len(held) == 1
    expect(card(page, "slow.png")).to_have_count(0)


def test_global_dedup_second_user_proves_possession(browser: Browser, served_global: Served) -> None:
    """Under global dedup another user's copy needs a proof (MD5 of a byte range): the page answers it."""
    data = png_bytes(420, 300, (120, 80, 200))
    with visiting(browser, served_global.app_url) as first:
        sign_in(first.page, new_user())
        add_files(first.page, ("shared.png", "image/png", data))
        expect(upload_item(first.page, "shared.png").locator(".upload-state")).to_have_text(re.compile("^Uploaded"))
    with visiting(browser, served_global.app_url) as second:
        sign_in(second.page, new_user())
        add_files(second.page, ("mine.png", "image/png", data))
        row = upload_item(second.page, "mine.png")
        expect(row.locator(".upload-state")).to_have_text(re.compile("Already stored, 0 bytes sent"))
        wait_image(second.page, card(second.page, "mine.png").locator("img"))
        assert_clean(second)


def test_delete_a_file(visit: Visit, served: Served) -> None:
    page = visit.page
    user = new_user()
    sign_in(page, user)
    add_files(page, ("gone.png", "image/png", png_bytes(200, 200, (60, 160, 90))))
    expect(upload_item(page, "gone.png").locator(".upload-state")).to_have_text(re.compile(r"^Uploaded"))
    page.once("dialog", lambda dialog: dialog.accept())
    card(page, "gone.png").get_by_role("button", name="Delete gone.png").click()
    expect(page.locator("#gallery-status")).to_have_text("Deleted gone.png.")
    expect(card(page, "gone.png")).to_have_count(0)
    with served.login(user) as api:
        assert api.get("/api/files").json()["items"] == []
    page.reload()
    expect(page.get_by_text(f"Signed in as user {user}")).to_be_visible()
    expect(page.locator("#gallery-status")).to_have_text("No files yet. Upload one above.")
    assert_clean(visit)


def test_keyboard_opens_the_file_chooser(visit: Visit) -> None:
    page = visit.page
    # Chromium intercepts choosers only once a listener exists; adding it ahead avoids racing the key press.
    page.on("filechooser", lambda _chooser: None)
    page.get_by_label("User ID").fill(str(new_user()))
    page.get_by_label("User ID").press("Enter")
    expect(page.locator("#dropzone")).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    assert chooser.value.is_multiple()
    chooser.value.set_files([{"name": "typed.txt", "mimeType": "text/plain", "buffer": b"from the keyboard"}])
    expect(upload_item(page, "typed.txt").locator(".upload-state")).to_have_text(re.compile(r"^Uploaded"))
    expect(card(page, "typed.txt")).to_have_count(1)
    page.locator("#dropzone").focus()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press(" ")
    chooser.value.set_files([])


def test_gallery_screenshot(visit: Visit) -> None:
    """A gallery with images, a video and other files, saved as ``artifacts/gallery.png``."""
    page = visit.page
    sign_in(page, new_user())
    add_files(
        page,
        ("report.pdf", "application/pdf", b"%PDF-1.4\n% not really a PDF\n"),
        ("sweep.mp4", "video/mp4", mp4_bytes()),
        ("meadow.png", "image/png", png_bytes(800, 500, (70, 150, 90))),
        ("sunset.png", "image/png", png_bytes(500, 700, (214, 104, 52))),
        ("harbour.png", "image/png", png_bytes()),
    )
    for name in ("report.pdf", "sweep.mp4", "meadow.png", "sunset.png", "harbour.png"):
        expect(upload_item(page, name).locator(".upload-state")).to_have_text(re.compile(r"^Uploaded"))
    add_files(page, ("harbour.png", "image/png", png_bytes()))
    expect(upload_item(page, "harbour.png").first.locator(".upload-state")).to_have_text(re.compile("Already stored"))
    for img in page.locator("#gallery img").all():
        wait_image(page, img)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "gallery.png"), full_page=True)
    assert (ARTIFACTS / "gallery.png").stat().st_size > 10_000
    assert_clean(visit)
