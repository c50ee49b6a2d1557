"""Streaming multipart/form-data parser for PostObject (oss-protocol.md §1.1, §1.2).

Built on ``python-multipart``'s push parser rather than ``streaming-form-data``: it is typed
(``py.typed``), already used by Starlette, and its per-header callbacks let us hand the file part to the
caller the moment its headers end, with the fields seen so far, instead of registering targets by name
up front. File bytes go straight to a sink; only text fields are buffered, bounded by the §1.1 limits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Protocol

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ossdrop.core.errors import OSSError

KEY_MESSAGE = (
    "The bucket POST must contain the specified 'key'. If it is specified, please check the order of the fields"
)
_MAX_BOUNDARY = 70  # RFC 2046 §5.1.1


class ByteSink(Protocol):
    """Where the file part's bytes go, in order, as they arrive."""

    def write(self, data: bytes) -> None: ...


@dataclass
class PostForm:
    """A parsed PostObject form.

    ``fields`` maps each text field name *as sent* to its value, for the parts before ``file`` only
    (§1.2: later parts are ignored); use :func:`field` for case-insensitive lookup. ``filename`` and
    ``file_content_type`` come from the file part's headers; ``file_size`` counts the bytes written.
    """

    fields: dict[str, str] = dc_field(default_factory=dict)
    filename: str | None = None
    file_content_type: str | None = None
    file_size: int = 0


def field(form: PostForm, name: str) -> str | None:
    """The value of form field ``name`` matched case-insensitively (§1.2), or None when absent."""
    low = name.lower()
    return next((v for k, v in form.fields.items() if k.lower() == low), None)


def _malformed(detail: str = "") -> OSSError:
    message = "The body of your POST request is not well-formed multipart/form-data."
    return OSSError("MalformedPOSTRequest", f"{message} {detail}".strip())


def _text(raw: bytes) -> str:
    # Browsers send UTF-8 in header parameters and field values (HTML §4.10.21.8).
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("Form data is not valid UTF-8.") from None


def boundary_of(content_type_header: str) -> bytes:
    """The multipart boundary of a PostObject ``Content-Type``; MalformedPOSTRequest if there is none."""
    ctype, params = parse_options_header(content_type_header)
    boundary = params.get(b"boundary", b"")
    if ctype != b"multipart/form-data" or not boundary or len(boundary) > _MAX_BOUNDARY:
        raise _malformed("Content-Type must be multipart/form-data with a boundary.")
    return boundary


class _Collector:
    """The parser callbacks: buffers text fields, streams the file part, enforces limits and order."""

    def __init__(self, open_file: Callable[[PostForm], ByteSink], max_names: int, max_values: int) -> None:
        self.form = PostForm()
        self.open_file = open_file
        self.max_names, self.max_values = max_names, max_values
        self.names_total = self.values_total = 0
        self.mode = "field"  # "field" | "file" | "ignore"
        self.sink: ByteSink | None = None
        self.name = ""
        self.buffer = bytearray()
        self.headers: dict[str, bytes] = {}
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.seen: set[str] = set()
        self.file_done = False
        self.ended = False

    def on_part_begin(self) -> None:
        self.headers.clear()
        self.buffer.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_name.decode("latin-1").strip().lower()] = bytes(self.header_value).strip()
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        if self.file_done:
            self.mode = "ignore"  # §1.2: fields after file are ignored
            return
        disposition, params = parse_options_header(self.headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise _malformed("Each part needs Content-Disposition: form-data with a name.")
        self.name = _text(params[b"name"])
        self._count_name(self.name)
        if self.name.lower() != "file":
            self.mode = "field"
            return
        if field(self.form, "key") is None:
            raise OSSError("InvalidArgument", KEY_MESSAGE, {"ArgumentName": "key"})
        filename = params.get(b"filename")
        self.form.filename = _text(filename) if filename is not None else None
        ctype = self.headers.get("content-type")
        self.form.file_content_type = ctype.decode("latin-1") if ctype else None
        self.mode = "file"
        self.sink = self.open_file(self.form)

    def _count_name(self, name: str) -> None:
        low = name.lower()
        if low in self.seen:
            raise OSSError("InvalidArgument", f"Duplicate form field: {name}", {"ArgumentName": name})
        self.seen.add(low)
        self.names_total += len(name.encode("utf-8"))
        if self.names_total > self.max_names:
            raise OSSError("FieldItemTooLong", "Your form field names total more than the allowed size.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.mode == "file" and self.sink is not None:
            self.sink.write(bytes(data[start:end]))
            self.form.file_size += end - start
        elif self.mode == "field":
            self.values_total += end - start
            if self.values_total > self.max_values:
                raise OSSError("FieldItemTooLong", "Your form field values total more than the allowed size.")
            self.buffer += data[start:end]

    def on_part_end(self) -> None:
        if self.mode == "file":
            self.file_done = True
        elif self.mode == "field":
            self.form.fields[self.name] = _text(bytes(self.buffer))
        self.mode = "ignore" if self.file_done else "field"

    def on_end(self) -> None:
        self.ended = True


async def parse_post_form(
    content_type_header: str,
    body: AsyncIterator[bytes],
    open_file: Callable[[PostForm], ByteSink],
    *,
    max_field_names: int = 8 * 1024,
    max_field_values: int = 2 * 1024 * 1024,
) -> PostForm:
    """Parse a PostObject body chunk by chunk, streaming the ``file`` part into a sink.

    ``open_file`` is called once, when the ``file`` part's headers end, with the form so far (so the
    caller can check key, policy and signature before accepting bytes; whatever it raises propagates).
    Its sink then receives the file bytes as they arrive. Parts after ``file`` are parsed but ignored
    (§1.2). On any error the sink may already hold a partial file: the caller must discard it.

    Raises ``MalformedPOSTRequest`` (not multipart, bad boundary, bad part headers, truncated body),
    ``FieldItemTooLong`` (field names / values over the §1.1 totals; the file part's name counts, its
    content does not), ``InvalidArgument`` (no ``key`` before ``file``, with the §1.2 message, or two
    field names equal ignoring case) and ``IncorrectNumberOfFilesInPOSTRequest`` (no ``file`` part; this
    code names the real defect, whereas InvalidArgument is kept for the key rule).
    """
    collector = _Collector(open_file, max_field_names, max_field_values)
    parser = _make_parser(boundary_of(content_type_header), collector)
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise _malformed() from exc
    if not collector.ended:
        raise _malformed("The body ended before the closing boundary.")
    if not collector.file_done:
        if field(collector.form, "key") is None:
            raise OSSError("InvalidArgument", KEY_MESSAGE, {"ArgumentName": "key"})
        raise OSSError("IncorrectNumberOfFilesInPOSTRequest")
    return collector.form


def _make_parser(boundary: bytes, c: _Collector) -> MultipartParser:
    try:
        return MultipartParser(
            boundary,
            {
                "on_part_begin": c.on_part_begin,
                "on_part_data": c.on_part_data,
                "on_part_end": c.on_part_end,
                "on_header_field": c.on_header_field,
                "on_header_value": c.on_header_value,
                "on_header_end": c.on_header_end,
                "on_headers_finished": c.on_headers_finished,
                "on_end": c.on_end,
            },
        )
    except FormParserError as exc:
        raise _malformed() from exc
