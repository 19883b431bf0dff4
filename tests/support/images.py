"""Small real images for tests (Pillow): what the batch trigger's header check accepts."""

from __future__ import annotations

import functools
import io

from PIL import Image


@functools.cache
def jpeg(width: int = 16, height: int = 12, **options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 40)).save(buffer, "JPEG", **options)
    return buffer.getvalue()


@functools.cache
def png(width: int = 16, height: int = 12, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def scan_start(data: bytes) -> int:
    """Where a JPEG's first scan header (SOS) starts."""
    return data.index(b"\xff\xda")


def corrupt_body(data: bytes) -> bytes:
    """A JPEG whose header is intact and whose image data is garbage (libjpeg only warns)."""
    header_end = scan_start(data) + 14  # SOS of 3 components: FF DA + 12 bytes
    return data[:header_end] + bytes(range(1, 250)) * 4 + b"\xff\xd9"
