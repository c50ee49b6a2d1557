"""The hand-read body and pre-serialised answer of ``POST /api/uploads/policy`` behave as FastAPI's own would."""

from __future__ import annotations

from typing import Any

import pytest

from ossdrop.appserver.present import policy_out, upload_json
from ossdrop.services.uploads import UploadTicket
from tests.appserver.conftest import Stack, new_user

POLICY = "/api/uploads/policy"


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    found: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_openapi_documents_request_and_answers(stack: Stack) -> None:
    with stack.client() as c:
        doc = c.get("/openapi.json").json()
    op = doc["paths"][POLICY]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    body = resolve(doc, body["$ref"]) if "$ref" in body else body  # inline, or FastAPI's component
    assert op["requestBody"]["required"] is True and body["required"] == ["filename"]
    assert {"filename", "size", "md5", "content_type", "proof"} <= set(body["properties"])
    answers = {r.rsplit("/", 1)[1] for r in refs(op["responses"]["200"])}
    assert {"UploadOut", "ExistsOut", "ProofOut"} <= answers
    for ref in refs(doc["paths"]):  # every reference resolves, the body's ProofIn included
        resolve(doc, ref)
    assert "ProofIn" in {r.rsplit("/", 1)[1] for r in refs(body)}


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_upload_json_is_the_models_json(version: str) -> None:
    seed: dict[str, str | int] = (
        {"accessid": "AK", "host": "http://h", "policy": "cG9s", "signature": "c2ln", "expire": 5, "dir": "d/"}
        if version == "v1"
        else {}
    )
    ticket = UploadTicket(
        "http://h", {"key": "k/\u2028", "Content-Type": 'a/"b"\n é\x00\x1f\x7f\\ 😀'}, "k", "abcd1234", 5, seed
    )
    model = policy_out(ticket, None, 60, version)  # type: ignore[arg-type] - no store needed for a ticket
    assert upload_json(ticket, version) == model.model_dump_json().encode()


@pytest.mark.parametrize(
    ("content", "headers", "token", "status", "code"),
    [
        (
            b'{"filename": "a", "md5": "' + b"0" * 32 + b'"}',
            {"Content-Type": "text/plain"},
            True,
            422,
            "invalid_request",
        ),
        (b"", {"Content-Type": "application/json"}, True, 422, "invalid_request"),
        (b'{"filename": "a"}', {}, True, 422, "invalid_request"),  # no content type: not JSON (strict)
        (b"{not json", {"Content-Type": "application/json"}, False, 422, "invalid_request"),  # before auth
        (b'{"filename": ""}', {"Content-Type": "application/json"}, False, 401, "unauthorized"),  # auth first
        (b'{"filename": "a", "size": "ten"}', {"Content-Type": "application/vnd.x+json"}, True, 422, "invalid_request"),
    ],
)
def test_body_errors_in_fastapis_order(
    stack: Stack, content: bytes, headers: dict[str, str], token: bool, status: int, code: str
) -> None:
    with stack.client(new_user() if token else None) as c:
        r = c.post(POLICY, content=content, headers=headers)
    assert (r.status_code, r.json()["error"]) == (status, code), r.text


def test_json_suffix_content_type_is_accepted(stack: Stack) -> None:
    with stack.client(new_user()) as c:
        r = c.post(
            POLICY,
            content=b'{"filename": "a.bin", "size": 3}',
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 200 and r.json()["status"] == "upload", r.text
