"""OSS XML bodies: building responses (no namespace, §5.1 / trap 2) and parsing the few request bodies.

Request bodies are parsed with ``defusedxml`` (no entity expansion or external DTDs). DeleteMultipleObjects needs
a lenient reader because the SDKs send control characters in keys that strict XML refuses (§12).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - used only to build documents; parsing goes through defusedxml
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET

from ossdrop.core.errors import OSSError

Children = Iterable[tuple[str, "str | int | bool | None | Children"]]

# Characters XML 1.0 cannot carry even as references; real OSS emits them, we must too (keys may contain them).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def build(root: str, children: Children) -> bytes:
    """Serialise ``(tag, value)`` pairs (values nest as further pair lists) into an XML document."""
    elem = ET.Element(root)
    _fill(elem, children)
    body = ET.tostring(elem, encoding="unicode", short_empty_elements=False)
    body = _XML_INVALID.sub(lambda m: f"&#{ord(m.group())};", body)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.encode("utf-8")


def build_text(root: str, value: str) -> bytes:
    """A document whose root element holds only text (GetBucketLocation)."""
    elem = ET.Element(root)
    elem.text = value
    body: bytes = ET.tostring(elem, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _fill(parent: ET.Element, children: Children) -> None:
    for tag, value in children:
        child = ET.SubElement(parent, tag)
        if value is None:
            continue
        if isinstance(value, bool):
            child.text = "true" if value else "false"
        elif isinstance(value, int | str):
            child.text = str(value)
        else:
            _fill(child, value)


def error_document(code: str, message: str, request_id: str, host: str, extra: Mapping[str, str], ec: str) -> bytes:
    """The error body of §1.7/§5.1."""
    children: list[tuple[str, str | int | bool | None | Children]] = [
        ("Code", code),
        ("Message", message),
        ("RequestId", request_id),
        ("HostId", host),
    ]
    children.extend(extra.items())
    if ec:
        children.append(("EC", ec))
    return build("Error", children)


def parse(body: bytes) -> ET.Element:
    """Parse a request body safely; malformed -> ``MalformedXML``."""
    try:
        root = SafeET.fromstring(body)
    except Exception as exc:  # defusedxml raises ParseError and its own DTD/entity errors
        raise OSSError("MalformedXML") from exc
    if not isinstance(root, ET.Element):
        raise OSSError("MalformedXML")
    _strip_namespaces(root)
    return root


def _strip_namespaces(elem: ET.Element) -> None:
    for node in elem.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]


def text(elem: ET.Element, path: str, default: str = "") -> str:
    found = elem.find(path)
    return default if found is None or found.text is None else found.text


@dataclass(frozen=True)
class DeleteRequest:
    """The body of DeleteMultipleObjects."""

    quiet: bool
    keys: list[str]


_KEY_RE = re.compile(rb"<Key>(.*?)</Key>", re.S)
_QUIET_RE = re.compile(rb"<Quiet>\s*(true|false)\s*</Quiet>", re.I)
_REF_RE = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def parse_delete(body: bytes) -> DeleteRequest:
    """Read ``<Delete><Quiet/><Object><Key/>...`` leniently (control characters allowed, §12)."""
    if not body.lstrip().startswith((b"<?xml", b"<Delete")) or b"<Delete" not in body:
        raise OSSError("MalformedXML")
    keys = [_unescape(m.group(1).decode("utf-8", "strict")) for m in _KEY_RE.finditer(body)]
    if not keys or len(keys) > 1000:
        raise OSSError("MalformedXML", "The number of objects to delete must be between 1 and 1000.")
    quiet = _QUIET_RE.search(body)
    return DeleteRequest(quiet=bool(quiet and quiet.group(1).lower() == b"true"), keys=keys)


def _unescape(value: str) -> str:
    def repl(m: re.Match[str]) -> str:
        ref = m.group(1)
        if ref.startswith("#x"):
            return chr(int(ref[2:], 16))
        if ref.startswith("#"):
            return chr(int(ref[1:]))
        return _NAMED[ref]

    return _REF_RE.sub(repl, value)
