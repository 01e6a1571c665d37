"""Tell what an upload is from its first bytes, never from its name or Content-Type.

A PDF or a text file renamed ``scan.jpg`` is recognised as what it is, so the answer can say so.
"""

from __future__ import annotations

from enum import StrEnum

from ..errors import BadUpload, ErrorCode

SUPPORTED = "JPEG, PNG or DICOM"
_DICOM_PREAMBLE = 128


class UploadFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    DICOM = "dicom"


# Formats we recognise but do not accept, so the message can name them.
_KNOWN_OTHERS: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, "a PDF document"),
    (b"GIF87a", 0, "a GIF image"),
    (b"GIF89a", 0, "a GIF image"),
    (b"BM", 0, "a BMP image"),
    (b"II*\x00", 0, "a TIFF image"),
    (b"MM\x00*", 0, "a TIFF image"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", 0, "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", 0, "a JPEG 2000 codestream"),
    (b"PK\x03\x04", 0, "a ZIP archive (or an office document)"),
    (b"\x1f\x8b", 0, "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"\x5c\x01\x00\x00", 0, "a NIfTI-1 volume"),
    (b"\x00\x00\x01\x5c", 0, "a NIfTI-1 volume"),
    (b"\x1c\x02\x00\x00", 0, "a NIfTI-2 volume"),
    (b"<?xml", 0, "an XML or SVG file"),
    (b"<svg", 0, "an SVG image"),
)


def _is_webp_or_riff(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[:4] == b"RIFF":
        return "a RIFF media file"
    return None


def _is_heif(head: bytes) -> str | None:
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"avif", b"heif"):
        return "a HEIF/AVIF image"
    return None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return False
    return True


def detect_format(head: bytes) -> UploadFormat:
    """The upload's format from its first bytes (at least 132 of them when the file has them)."""
    if not head:
        raise BadUpload(ErrorCode.EMPTY_FILE, "the uploaded file is empty (0 bytes)")
    if head.startswith(b"\xff\xd8\xff"):
        return UploadFormat.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return UploadFormat.PNG
    if head[_DICOM_PREAMBLE : _DICOM_PREAMBLE + 4] == b"DICM":
        return UploadFormat.DICOM
    described = _describe_other(head)
    raise BadUpload(
        ErrorCode.UNSUPPORTED_FORMAT,
        f"the file is {described}, not a supported image: send {SUPPORTED} "
        "(the format is read from the file's content, not its name)",
        status=415,
    )


def _describe_other(head: bytes) -> str:
    for magic, offset, description in _KNOWN_OTHERS:
        if head[offset : offset + len(magic)] == magic:
            return description
    riff_or_heif = _is_webp_or_riff(head) or _is_heif(head)
    if riff_or_heif:
        return riff_or_heif
    if head.lstrip()[:1] in (b"{", b"[") and _looks_like_text(head):
        return "a JSON or text file"
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if _looks_like_text(head):
        return "a text file"
    return "in an unknown format"


def describe(head: bytes) -> str:
    """What a file is, in words ("a DICOM file", "a PNG image", "a PDF document", ...)."""
    if not head:
        return "empty (0 bytes)"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image"
    if head[_DICOM_PREAMBLE : _DICOM_PREAMBLE + 4] == b"DICM":
        return "a DICOM file"
    return _describe_other(head)
