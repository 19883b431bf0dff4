"""The batch trigger's cheap header check (grocery_common.image_check): what libjpeg and libpng
give up on is refused before the transform job; anything they decode is never refused."""

from __future__ import annotations

import zlib

import pytest

from grocery_common.image_check import HEADER_BYTES, check_image
from tests.support import images

JPEG = images.jpeg()


def _ok(data: bytes) -> bool:
    verdict = check_image(data, len(data))
    assert not verdict.need_more
    return verdict.ok


@pytest.mark.parametrize(
    "data",
    [
        images.jpeg(),
        images.jpeg(progressive=True),
        images.jpeg(optimize=True, quality=30),
        images.jpeg(exif=b"Exif\x00\x00" + bytes(60_000)),  # a large APP1 segment
        images.png(),
        images.png(mode="RGBA"),
        images.png(mode="P"),
        images.png(mode="1"),
        images.corrupt_body(JPEG),  # damaged image data: libjpeg decodes it with a warning
        JPEG[: len(JPEG) - 2],  # no EOI: libjpeg decodes it with a warning
        JPEG[:20] + b"junk" + JPEG[20:],  # extraneous bytes between segments: skipped
        JPEG[:2] + b"\xff\xff\xff" + JPEG[2:],  # fill bytes before a marker
    ],
    ids=[
        "baseline",
        "progressive",
        "optimized",
        "big-exif",
        "png",
        "png-rgba",
        "png-palette",
        "png-1bit",
        "garbage-after-the-scan-header",
        "no-eoi",
        "extraneous-bytes",
        "fill-bytes",
    ],
)
def test_what_the_decoders_read_is_accepted(data):
    assert _ok(data)


def _ihdr(width: int, height: int, depth: int = 8, color: int = 2, crc: int | None = None) -> bytes:
    fields = b"IHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big")
    fields += bytes([depth, color, 0, 0, 0])
    checksum = zlib.crc32(fields) if crc is None else crc
    return b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + fields + checksum.to_bytes(4, "big")


SOF_AT = JPEG.index(b"\xff\xc0")
HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (HEADER + bytes(200), "the file ends inside its header"),  # a JPEG header, then nothing
        (JPEG[: JPEG.index(b"\xff\xda")], "the file ends inside its header"),
        (HEADER + b"\xff\xd9", "it ends (EOI) before any image data"),
        (HEADER + b"\xff\xd8", "a second start-of-image marker"),
        (HEADER + b"\xff\x52\x00\x04ab", "an unknown marker 0xFF52"),
        (HEADER + b"\xff\xcf\x00\x04ab", "a hierarchical JPEG"),
        (HEADER + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00", "image data (SOS) before the frame"),
        (JPEG[: SOF_AT + 5] + b"\x00\x00" + JPEG[SOF_AT + 7 :], "declares an empty image"),
        (
            JPEG[:SOF_AT] + JPEG[SOF_AT : SOF_AT + 19] + JPEG[SOF_AT:],
            "a second frame header (SOF)",
        ),
        (HEADER + b"\xff\xc4\x00\x13\x25" + bytes(16), "a malformed Huffman table"),
        (HEADER + b"\xff\xdb\x00\x43\x07" + bytes(64), "a malformed quantization table"),
        (HEADER + b"\xff\xdd\x00\x05\x00\x01\x00", "a malformed restart interval"),
        (b"\x89PNG\r\n\x1a\n" + bytes(10), "the file ends inside its header"),
        (_ihdr(16, 12, crc=0), "fails its CRC check"),
        (_ihdr(0, 12), "declares a 0x12 image"),
        (_ihdr(16, 12, depth=3), "invalid bit depth"),
        (
            b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IDAT" + bytes(17),
            "not a 13-byte IHDR",
        ),
        (b"GIF89a" + bytes(40), "neither the JPEG nor the PNG signature"),
    ],
)
def test_what_the_decoders_give_up_on_is_refused_with_the_reason(data, problem):
    verdict = check_image(data, len(data))
    assert problem in verdict.problem
    assert not verdict.ok


def test_a_scan_header_naming_a_missing_component_is_refused():
    at = JPEG.index(b"\xff\xda")
    broken = JPEG[: at + 5] + b"\x09" + JPEG[at + 6 :]  # the first component id of the scan
    assert "names a component the frame does not have" in check_image(broken, len(broken)).problem


def test_a_header_longer_than_what_was_read_asks_for_more():
    big = images.jpeg(exif=b"Exif\x00\x00" + bytes(60_000))
    assert check_image(big[:1000], len(big)).need_more
    assert check_image(big[:HEADER_BYTES], len(big)).ok
