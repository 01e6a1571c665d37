"""Test images made in memory: MRI-like slices as PNG, JPEG and DICOM, and bad files."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def mri_like(size: int = 96, seed: int = 0) -> np.ndarray:
    """A grey 'head' on black: an ellipse with texture and a bright blob, uint8 [size, size]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    head = ((xx - 0.5) / 0.38) ** 2 + ((yy - 0.5) / 0.45) ** 2 < 1
    tissue = 90 + 40 * np.sin(xx * 17) * np.cos(yy * 13) + rng.normal(0, 8, (size, size))
    blob = ((xx - 0.62) ** 2 + (yy - 0.4) ** 2) < 0.006
    pixels = np.where(head, tissue, 0) + np.where(blob, 90, 0)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_bytes(size: int = 96, mode: str = "L") -> bytes:
    return encode(Image.fromarray(mri_like(size)).convert(mode), "PNG")


def jpeg_bytes(size: int = 96, mode: str = "RGB", **options) -> bytes:
    return encode(Image.fromarray(mri_like(size)).convert(mode), "JPEG", quality=92, **options)


def png_bomb(side: int = 20_000) -> bytes:
    """A 1-bit PNG: a few kilobytes on disk, side*side pixels once decoded."""
    return encode(Image.new("1", (side, side), 0), "PNG", optimize=True)


def png_header_bomb(width: int, height: int, bit_depth: int = 16) -> bytes:
    """A valid grey PNG of zeros, compressed row by row without holding the pixels in memory."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    row = bytes(1 + width * bit_depth // 8)  # filter byte + zero samples
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
