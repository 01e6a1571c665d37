"""multipart/related bodies (RFC 2387) of DICOM instances, as STOW-RS sends them (PS3.18 10.5).

Read whole: the body has passed the size limit before it gets here, and every instance is
classified from memory anyway. The parser is strict about the framing (a boundary, delimiters,
a close delimiter, part headers) and names the part that is wrong; it never quotes a part's
bytes, which may be a patient's header.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from email.message import Message

from ..errors import ErrorCode, GatewayError

DICOM = "application/dicom"
RELATED = "multipart/related"
DICOM_JSON = "application/dicom+json"

_MAX_PART_HEADER_BYTES = 8192
_MAX_BOUNDARY = 200


@dataclass(frozen=True)
class Part:
    """One body part: its Content-Type (lower case, no parameters; "" when absent) and bytes."""

    content_type: str
    content: bytes


def unsupported_media_type(message: str) -> GatewayError:
    return GatewayError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, message, 415)


def malformed(message: str) -> GatewayError:
    return GatewayError(ErrorCode.MALFORMED_MULTIPART, message, 400)


def _parsed(content_type: str) -> Message:
    message = Message()
    message["Content-Type"] = content_type
    return message


def boundary_of(content_type: str | None) -> str:
    """The boundary of a ``multipart/related; type="application/dicom"`` request, else a 415
    (another media type) or a 400 (no usable boundary)."""
    expected = f'send {RELATED}; type="{DICOM}" with one DICOM instance (Part 10 file) per part'
    if not content_type:
        raise unsupported_media_type(f"the request has no Content-Type: {expected}")
    message = _parsed(content_type)
    if message.get_content_type() != RELATED:
        raise unsupported_media_type(
            f"the request's Content-Type is not {RELATED}: STOW-RS takes {expected}"
        )
    kind = message.get_param("type")
    if kind is not None and str(kind).strip().lower() != DICOM:
        raise unsupported_media_type(
            f'only DICOM instances are accepted (type="{DICOM}"), not metadata and bulk data '
            f"(application/dicom+json, application/dicom+xml): {expected}"
        )
    boundary = message.get_param("boundary")
    # RFC 2046 allows 70 characters; Orthanc sends 73 (two UUIDs), so a little more is taken.
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= _MAX_BOUNDARY:
        raise malformed(
            f"the Content-Type {RELATED} has no boundary parameter (1 to {_MAX_BOUNDARY} "
            "characters), so its parts cannot be told apart"
        )
    return boundary


def split(body: bytes, boundary: str, max_parts: int) -> list[Part]:
    """The body's parts, in order; a 400 naming what is wrong with the framing, a 413 after
    ``max_parts`` parts (before the rest is looked at)."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    # The first delimiter may open the body without a CRLF before it.
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 2:
        raise malformed(f"the body holds no {RELATED} boundary delimiter: it has no parts")
    parts: list[Part] = []
    for number, piece in enumerate(pieces[1:], start=1):
        if piece.startswith(b"--"):  # the close delimiter; what follows is the epilogue
            if not parts:
                raise malformed(f"the {RELATED} body has no parts: send one DICOM instance each")
            return parts
        if len(parts) == max_parts:
            raise GatewayError(
                ErrorCode.TOO_MANY_INSTANCES,
                f"the request holds more than {max_parts} instances, the most one request may "
                "carry: send the study in several requests",
                413,
            )
        parts.append(_part(piece, number))
    raise malformed(
        f"the {RELATED} body ends without its close delimiter (--boundary--): it is truncated"
    )


def _part(piece: bytes, number: int) -> Part:
    # After the delimiter: optional transport padding (spaces, tabs), then CRLF.
    line_end = piece.find(b"\r\n")
    if line_end < 0 or piece[:line_end].strip(b" \t"):
        raise malformed(f"part {number}: the boundary delimiter is not followed by a line break")
    rest = piece[line_end + 2 :]
    if rest.startswith(b"\r\n"):
        headers, content = b"", rest[2:]
    else:
        end = rest.find(b"\r\n\r\n")
        if end < 0 or end > _MAX_PART_HEADER_BYTES:
            raise malformed(f"part {number}: its headers do not end with an empty line")
        headers, content = rest[:end], rest[end + 4 :]
    content_type = ""
    for line in headers.split(b"\r\n") if headers else []:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise malformed(f"part {number}: a header line is not 'Name: value'")
        if name.strip().lower() == b"content-type":
            content_type = _parsed(value.decode("latin-1").strip()).get_content_type()
    return Part(content_type, content)


def encode(instances: list[bytes]) -> tuple[bytes, str]:
    """A ``multipart/related; type="application/dicom"`` body of ``instances`` and its
    Content-Type, as a STOW-RS client sends them."""
    boundary = "brainscan-" + secrets.token_hex(16)
    chunks: list[bytes] = []
    for instance in instances:
        chunks += [f"--{boundary}\r\nContent-Type: {DICOM}\r\n\r\n".encode(), instance, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'{RELATED}; type="{DICOM}"; boundary={boundary}'
