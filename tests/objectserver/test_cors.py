"""Bucket CORS (issue 3, oss-protocol.md §12 "CORS"): rules through oss2, the preflight a browser sends before a
cross-origin form post, and the Allow-Origin header that lets the page read the callback JSON."""

from __future__ import annotations

from collections.abc import Iterator

import oss2
import pytest
import requests
from oss2.models import BucketCors, CorsRule

from tests.conftest import StoreProcess
from tests.objectserver.test_callbacks_e2e import APP_REPLY, Receiver, callback_param, run_receiver
from tests.objectserver.test_post_object import FilePart, error_code, open_bucket, post_form, v1_fields

APP_ORIGIN = "https://app.example.com"


@pytest.fixture
def bucket(store: StoreProcess, bucket_name: str) -> Iterator[oss2.Bucket]:
    yield from open_bucket(store, bucket_name)


@pytest.fixture(scope="module")
def receiver(store: StoreProcess) -> Iterator[Receiver]:
    yield from run_receiver(store)


@pytest.fixture
def cors_bucket(bucket: oss2.Bucket) -> oss2.Bucket:
    rules = [
        CorsRule(
            allowed_origins=[APP_ORIGIN, "http://*.example.org"],
            allowed_methods=["POST", "GET"],
            allowed_headers=["Content-Type", "X-Oss-*"],
            expose_headers=["ETag", "x-oss-request-id"],
            max_age_seconds=600,
        ),
        CorsRule(allowed_origins=["*"], allowed_methods=["HEAD"]),
    ]
    bucket.put_bucket_cors(BucketCors(rules))
    return bucket


def preflight(store: StoreProcess, bucket: str, origin: str, method: str, headers: str = "") -> requests.Response:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return requests.options(f"{store.endpoint}/{bucket}", headers=sent, timeout=10)


def test_put_get_delete_bucket_cors(cors_bucket: oss2.Bucket) -> None:
    got = cors_bucket.get_bucket_cors()
    assert len(got.rules) == 2
    first = got.rules[0]
    assert first.allowed_origins == [APP_ORIGIN, "http://*.example.org"]
    assert first.allowed_methods == ["POST", "GET"]
    assert first.allowed_headers == ["content-type", "x-oss-*"]  # §12: returned lower-cased
    assert first.expose_headers == ["ETag", "x-oss-request-id"]
    assert first.max_age_seconds == 600
    assert got.rules[1].max_age_seconds is None
    assert got.response_vary is False
    cors_bucket.delete_bucket_cors()
    with pytest.raises(oss2.exceptions.NoSuchCors):
        cors_bucket.get_bucket_cors()


def test_bad_rules_are_rejected(bucket: oss2.Bucket) -> None:
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_bucket_cors(BucketCors([CorsRule(allowed_origins=["*"], allowed_methods=["PATCH"])]))
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_bucket_cors(BucketCors([CorsRule(allowed_origins=["*"], allowed_methods=[])]))


def test_allowed_preflight(store: StoreProcess, cors_bucket: oss2.Bucket) -> None:
    response = preflight(store, cors_bucket.bucket_name, APP_ORIGIN, "POST", "Content-Type, x-oss-meta-a")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "POST, GET"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, x-oss-meta-a"
    assert response.headers["Access-Control-Expose-Headers"] == "ETag, x-oss-request-id"
    assert response.headers["Access-Control-Max-Age"] == "600"
    wildcard = preflight(store, cors_bucket.bucket_name, "http://shop.example.org", "GET")
    assert wildcard.status_code == 200 and wildcard.headers["Access-Control-Allow-Origin"] == "http://shop.example.org"


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        ("https://evil.example.net", "POST", ""),  # origin no rule names
        (APP_ORIGIN, "PUT", ""),  # method no rule allows for this origin
        (APP_ORIGIN, "POST", "Authorization"),  # a header no rule allows
        ("https://example.org", "GET", ""),  # the wildcard needs a subdomain
    ],
)
def test_refused_preflight_is_403_without_allow_origin(
    store: StoreProcess, cors_bucket: oss2.Bucket, origin: str, method: str, headers: str
) -> None:
    response = preflight(store, cors_bucket.bucket_name, origin, method, headers)
    assert (response.status_code, error_code(response)) == (403, "AccessForbidden")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_on_a_bucket_without_rules_is_refused(store: StoreProcess, bucket: oss2.Bucket) -> None:
    response = preflight(store, bucket.bucket_name, APP_ORIGIN, "POST")
    assert (response.status_code, error_code(response)) == (403, "AccessForbidden")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cross_origin_form_post_can_read_the_callback_json(
    store: StoreProcess, cors_bucket: oss2.Bucket, receiver: Receiver
) -> None:
    receiver.seen.clear()
    name = cors_bucket.bucket_name
    fields = [("key", "from-browser.txt"), *v1_fields(store, [{"bucket": name}])]
    fields.append(("callback", callback_param(receiver.url("/ok"), "object=${object}")))
    headers = {"Origin": APP_ORIGIN, "Referer": APP_ORIGIN + "/upload.html"}
    response = post_form(store.endpoint, name, fields, FilePart("f.txt", b"browser", "text/plain"), headers=headers)
    assert response.status_code == 200 and response.json() == APP_REPLY
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert response.headers["Access-Control-Expose-Headers"] == "ETag, x-oss-request-id"
    assert receiver.seen[0].verified
    assert cors_bucket.get_object("from-browser.txt").read() == b"browser"


def test_cross_origin_errors_carry_cors_headers_but_foreign_origins_get_none(
    store: StoreProcess, cors_bucket: oss2.Bucket
) -> None:
    name = cors_bucket.bucket_name
    fields = [("key", "x"), *v1_fields(store, [{"bucket": name}, ["starts-with", "$key", "user/"]])]
    denied = post_form(store.endpoint, name, fields, FilePart("x", b"x"), headers={"Origin": APP_ORIGIN})
    assert (denied.status_code, error_code(denied)) == (403, "AccessDenied")
    assert denied.headers["Access-Control-Allow-Origin"] == APP_ORIGIN  # the page can read why
    fields = [("key", "y"), *v1_fields(store, [{"bucket": name}])]
    foreign = post_form(
        store.endpoint, name, fields, FilePart("y", b"y"), headers={"Origin": "https://evil.example.net"}
    )
    assert foreign.status_code == 204
    assert "Access-Control-Allow-Origin" not in foreign.headers
