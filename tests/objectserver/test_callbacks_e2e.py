"""Upload callbacks end to end (issue 3, oss-protocol.md §2): a real receiver started here verifies every callback's
RSA signature on its own (``cryptography``, the §2.3 app-server steps), and the failure modes give 203.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

import alibabacloud_oss_v2 as oss
import oss2
import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from PIL import Image

from tests.conftest import StoreProcess
from tests.objectserver.test_post_object import FilePart, error_code, open_bucket, post_form, v1_fields

APP_REPLY = {"Status": "OK", "from": "receiver"}


@dataclass
class Seen:
    """One callback as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool


@dataclass
class Receiver:
    """The app server: ``/ok`` answers 200 JSON after verifying, ``/slow`` after 6 s, ``/500`` a 500,
    ``/notjson`` 200 with text. A request whose signature does not verify gets 400 (as the official demo)."""

    port: int
    store_endpoint: str
    seen: list[Seen] = field(default_factory=list)
    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def public_key(self, url: str) -> rsa.RSAPublicKey:
        if url not in self.keys:  # §2.3 step 3: fetch once, cache by URL
            with urllib.request.urlopen(url, timeout=3) as fh:  # noqa: S310 - a loopback URL the test checked
                key = serialization.load_pem_public_key(fh.read())
            assert isinstance(key, rsa.RSAPublicKey)
            self.keys[url] = key
        return self.keys[url]

    def verify(self, target: str, headers: dict[str, str], body: bytes) -> bool:
        """§2.3 steps 1-6, written independently of the project's own verifier."""
        if "authorization" not in headers or "x-oss-pub-key-url" not in headers:
            return False
        key_url = base64.b64decode(headers["x-oss-pub-key-url"]).decode()
        if not key_url.startswith(self.store_endpoint + "/"):  # step 2 with the emulator's prefix
            return False
        path, _, query = target.partition("?")
        message = unquote(path).encode() + (b"?" + query.encode() if query else b"") + b"\n" + body
        try:
            signature = base64.b64decode(headers["authorization"])
            self.public_key(key_url).verify(signature, message, padding.PKCS1v15(), hashes.MD5())  # noqa: S303
        except (InvalidSignature, ValueError):
            return False
        return True


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = receiver.verify(self.path, headers, body)
            receiver.seen.append(Seen(self.path, headers, body, verified))
            route = urlsplit(self.path).path
            if route == "/slow":
                time.sleep(6)
            if not verified:
                self._answer(400, b'{"Status":"bad signature"}')
            elif route == "/500":
                self._answer(500, b'{"Status":"error"}')
            elif route == "/notjson":
                self._answer(200, b"OK, thanks", "text/plain")
            else:
                self._answer(200, json.dumps(APP_REPLY).encode())

        def _answer(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def run_receiver(store: StoreProcess) -> Iterator[Receiver]:
    """A receiver on a free loopback port for as long as the generator is suspended (each module's fixture)."""
    app = Receiver(0, store.endpoint)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(app))
    server.daemon_threads = True
    app.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def receiver(store: StoreProcess) -> Iterator[Receiver]:
    yield from run_receiver(store)


@pytest.fixture
def bucket(store: StoreProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    yield from open_bucket(store, bucket_name)


@pytest.fixture
def seen(receiver: Receiver) -> list[Seen]:
    receiver.seen.clear()
    return receiver.seen


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def b64json(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def callback_param(url: str, body: str, body_type: str | None = None, **extra: str) -> str:
    doc = {"callbackUrl": url, "callbackBody": body, **extra}
    if body_type:
        doc["callbackBodyType"] = body_type
    return b64json(doc)


ALL_VARS_JSON = (
    '{"bucket":${bucket},"object":${object},"etag":${etag},"size":${size},"mimeType":${mimeType},'
    '"height":${imageInfo.height},"width":${imageInfo.width},"format":${imageInfo.format},"crc64":${crc64},'
    '"contentMd5":${contentMd5},"clientIp":${clientIp},"reqId":${reqId},"operation":${operation},'
    '"uid":${x:uid},"note":${x:note}}'
)


def png_bytes(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def failed_message(response: requests.Response) -> str:
    root = ElementTree.fromstring(response.content)
    assert root.findtext("Code") == "CallbackFailed"
    return root.findtext("Message") or ""


# -- PostObject ----------------------------------------------------------------------------------------------
def test_post_object_callback_renders_every_variable_as_json(
    store: StoreProcess, bucket: oss2.Bucket, receiver: Receiver, seen: list[Seen]
) -> None:
    image = png_bytes(7, 5)
    callback = callback_param(receiver.url("/ok?id=1&from=post"), ALL_VARS_JSON, "application/json")
    fields = [
        ("key", "img/${filename}"),
        *v1_fields(store, [{"bucket": bucket.bucket_name}, {"callback": callback}]),
        ("callback", callback),
        ("x:uid", "42"),
        ("x:note", 'say "hi" & bye'),
    ]
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("dot.png", image, "image/png"))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == APP_REPLY
    md5 = hashlib.md5(image)
    assert response.headers["ETag"] == f'"{md5.hexdigest().upper()}"'
    assert len(seen) == 1 and seen[0].verified
    assert seen[0].path == "/ok?id=1&from=post"
    assert seen[0].headers["content-type"] == "application/json"
    sent = json.loads(seen[0].body)
    assert sent == {
        "bucket": bucket.bucket_name,
        "object": "img/dot.png",
        "etag": md5.hexdigest().upper(),
        "size": len(image),
        "mimeType": "image/png",
        "height": 5,
        "width": 7,
        "format": "png",
        "crc64": response.headers["x-oss-hash-crc64ecma"],
        "contentMd5": base64.b64encode(md5.digest()).decode(),
        "clientIp": "127.0.0.1",
        "reqId": response.headers["x-oss-request-id"],
        "operation": "PostObject",
        "uid": "42",
        "note": 'say "hi" & bye',
    }


def test_form_encoded_body_callback_host_and_url_failover(
    store: StoreProcess, bucket: oss2.Bucket, receiver: Receiver, seen: list[Seen]
) -> None:
    urls = f"http://127.0.0.1:{closed_port()}/first;{receiver.url('/ok/second%20try')}"
    body = "object=${object}&size=${size}&mime=${mimeType}&w=${imageInfo.width}&uid=${x:uid}"
    callback = callback_param(urls, body, callbackHost="app.example.com")
    fields = [("key", "docs/a b.txt"), *v1_fields(store, [{"bucket": bucket.bucket_name}])]
    fields += [("callback", callback), ("x:uid", "a/b c")]
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("a.txt", b"text", "text/plain"))
    assert response.status_code == 200 and response.json() == APP_REPLY
    assert len(seen) == 1 and seen[0].verified  # the path signed decoded: "/ok/second try"
    assert seen[0].headers["host"] == "app.example.com"
    assert seen[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen[0].body == b"object=docs%2Fa%20b.txt&size=4&mime=text%2Fplain&w=&uid=a%2Fb%20c"


# -- the failure modes: 203 CallbackFailed, object kept ----------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "status_word"),
    [("refused", "can not connect"), ("/500", "Error status : 500."), ("/notjson", "not valid json")],
)
def test_callback_failure_gives_203_and_keeps_the_object(
    store: StoreProcess, bucket: oss2.Bucket, receiver: Receiver, seen: list[Seen], path: str, status_word: str
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/cb" if path == "refused" else receiver.url(path)
    fields = [("key", "kept"), *v1_fields(store, [{"bucket": bucket.bucket_name}])]
    fields.append(("callback", callback_param(url, "object=${object}")))
    response = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("k", b"kept bytes"))
    assert response.status_code == 203
    assert status_word in failed_message(response)
    assert response.headers["ETag"] == '"' + hashlib.md5(b"kept bytes").hexdigest().upper() + '"'
    assert bucket.get_object("kept").read() == b"kept bytes"
    if path != "refused":
        assert len(seen) == 1 and seen[0].verified


def test_slow_callback_times_out_without_blocking_the_store(
    store: StoreProcess, bucket: oss2.Bucket, receiver: Receiver, seen: list[Seen]
) -> None:
    fields = [("key", "slow"), *v1_fields(store, [{"bucket": bucket.bucket_name}])]
    fields.append(("callback", callback_param(receiver.url("/slow"), "object=${object}")))
    result: dict[str, requests.Response | float] = {}

    def upload() -> None:
        started = time.monotonic()
        result["response"] = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("s", b"slow"))
        result["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=upload)
    worker.start()
    deadline = time.monotonic() + 3
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen, "the callback did not arrive"
    started = time.monotonic()
    assert bucket.get_object("slow").read() == b"slow"  # served while the callback is pending
    bucket.put_object("other", b"meanwhile")
    assert time.monotonic() - started < 1.0
    worker.join(timeout=15)
    response = result["response"]
    assert isinstance(response, requests.Response) and response.status_code == 203
    assert "timeout" in failed_message(response)
    assert 4.8 <= float(result["seconds"]) < 6.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("not base64", "***"),
        ("not json", base64.b64encode(b"not json").decode()),
        ("no body", b64json({"callbackUrl": "http://127.0.0.1:9/x"})),
        (
            "bad body type",
            b64json({"callbackUrl": "http://127.0.0.1:9/x", "callbackBody": "a", "callbackBodyType": "text/xml"}),
        ),
        (
            "six urls",
            b64json({"callbackUrl": ";".join(f"http://127.0.0.1:9/{i}" for i in range(6)), "callbackBody": "a"}),
        ),
    ],
)
def test_invalid_callback_is_400_before_anything_is_stored(
    store: StoreProcess, bucket: oss2.Bucket, name: str, value: str
) -> None:
    fields = [("key", "never"), *v1_fields(store, [{"bucket": bucket.bucket_name}]), ("callback", value)]
    posted = post_form(store.endpoint, bucket.bucket_name, fields, FilePart("n", b"never"))
    assert (posted.status_code, error_code(posted)) == (400, "InvalidArgument"), name
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_object("never", b"never", headers={"x-oss-callback": value})
    assert not bucket.object_exists("never")


# -- PutObject and CompleteMultipartUpload through the official SDKs ---------------------------------------------
def test_oss2_put_object_with_callback_headers(
    store: StoreProcess, bucket: oss2.Bucket, receiver: Receiver, seen: list[Seen]
) -> None:
    callback = callback_param(receiver.url("/ok"), ALL_VARS_JSON, "application/json")
    variables = b64json({"x:uid": "7", "x:note": "put"})
    result = bucket.put_object(
        "put/doc.png", png_bytes(3, 2), headers={"x-oss-callback": callback, "x-oss-callback-var": variables}
    )
    assert result.status == 200
    assert json.loads(result.resp.read()) == APP_REPLY
    sent = json.loads(seen[0].body)
    assert seen[0].verified and sent["operation"] == "PutObject" and sent["object"] == "put/doc.png"
    assert (sent["width"], sent["height"], sent["format"], sent["uid"], sent["note"]) == (3, 2, "png", "7", "put")
    assert sent["etag"] == result.etag and sent["crc64"] == str(result.crc)


def test_v2_sdk_put_object_callback_result(store: StoreProcess, bucket: oss2.Bucket, receiver: Receiver) -> None:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(store.access_key_id, store.access_key_secret)
    cfg.region, cfg.endpoint = "cn-hangzhou", store.endpoint
    client = oss.Client(cfg)
    ok = client.put_object(
        oss.PutObjectRequest(
            bucket=bucket.bucket_name,
            key="v2.txt",
            body=b"v2 body",
            callback=callback_param(receiver.url("/ok"), "object=${object}"),
        )
    )
    assert ok.status_code == 200 and json.loads(ok.callback_result or "") == APP_REPLY
    failed = client.put_object(
        oss.PutObjectRequest(
            bucket=bucket.bucket_name,
            key="v2-failed.txt",
            body=b"v2 body",
            callback=callback_param(receiver.url("/500"), "object=${object}"),
        )
    )
    assert failed.status_code == 203 and "CallbackFailed" in (failed.callback_result or "")
    assert bucket.object_exists("v2-failed.txt")


def test_oss2_complete_multipart_upload_with_callback(
    bucket: oss2.Bucket, receiver: Receiver, seen: list[Seen]
) -> None:
    key = "multi/part.bin"
    parts_data = [b"a" * (100 * 1024), b"tail"]
    upload_id = bucket.init_multipart_upload(key).upload_id
    parts = []
    for number, data in enumerate(parts_data, start=1):
        done = bucket.upload_part(key, upload_id, number, data)
        parts.append(oss2.models.PartInfo(number, done.etag))
    body = "object=${object}&size=${size}&md5=${contentMd5}&op=${operation}&etag=${etag}"
    headers = {"x-oss-callback": callback_param(receiver.url("/ok"), body)}
    result = bucket.complete_multipart_upload(key, upload_id, parts, headers=headers)
    assert result.status == 200
    assert json.loads(result.resp.read()) == APP_REPLY
    sent = parse_qs(seen[0].body.decode(), keep_blank_values=True)
    assert seen[0].verified
    assert sent["size"] == [str(sum(len(p) for p in parts_data))] and sent["md5"] == [""]
    assert sent["op"] == ["CompleteMultipartUpload"] and sent["object"] == [key]
    assert sent["etag"] == [result.etag]


def test_presigned_put_url_with_callback_query(
    store: StoreProcess, bucket: oss2.Bucket, receiver: Receiver, seen: list[Seen]
) -> None:
    params = {
        "callback": callback_param(receiver.url("/ok"), "object=${object}&uid=${x:uid}"),
        "callback-var": b64json({"x:uid": "9"}),
    }
    url = bucket.sign_url("PUT", "signed.txt", 60, params=params)
    response = requests.put(url, data=b"signed", timeout=15)
    assert response.status_code == 200 and response.json() == APP_REPLY
    assert seen[0].verified and seen[0].body == b"object=signed.txt&uid=9"
    # oss2's own test_sign_url_with_callback: an unreachable callback URL gives 203, object stored.
    params["callback"] = callback_param(f"http://127.0.0.1:{closed_port()}/x", "object=${object}")
    response = requests.put(bucket.sign_url("PUT", "signed-203.txt", 60, params=params), data=b"x", timeout=15)
    assert response.status_code == 203 and bucket.object_exists("signed-203.txt")


def test_public_key_is_served_and_stable(store: StoreProcess) -> None:
    first = requests.get(store.endpoint + "/callback_pub_key_v1.pem", timeout=5)
    assert first.status_code == 200 and first.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    key_file = store.root / "callback_key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
