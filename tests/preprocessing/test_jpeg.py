"""jpeg.is_intact: the structural check that lets prepare copy JPEGs without decoding them."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from preprocessing import images, jpeg
from preprocessing.images import Settings, conform

from .conftest import DATA, unique_image


def _jpeg(mode="RGB", **save) -> bytes:
    buffer = io.BytesIO()
    unique_image((348, 348), mode).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def _segments(data: bytes):
    """(marker, start, end) of each header segment up to SOS."""
    pos = 2
    while data[pos + 1] != jpeg.SOS:
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        yield data[pos + 1], pos, pos + 2 + length
        pos += 2 + length


@pytest.mark.parametrize(
    "data",
    [
        _jpeg(),
        _jpeg(progressive=True),
        _jpeg(optimize=True),
        _jpeg(restart_marker_blocks=1),
        _jpeg(quality=100, subsampling=0),
        _jpeg("L"),
        _jpeg("CMYK"),
        _jpeg(exif=Image.Exif()),
        (DATA / "Golden-Delicious_001.jpg").read_bytes(),
        (DATA / "Golden-Delicious_007.jpg").read_bytes(),
    ],
    ids=[
        "baseline",
        "progressive",
        "optimized",
        "restart",
        "q100",
        "gray",
        "cmyk",
        "exif",
        "real1",
        "real2",
    ],
)
def test_well_formed_jpegs_are_intact(data):
    assert jpeg.is_intact(data)
    assert jpeg.is_intact(data + b"\x00trailing bytes after EOI are ignored by decoders")


def test_every_truncation_is_detected():
    data = _jpeg(progressive=True)
    cuts = sorted({*range(0, len(data), max(1, len(data) // 200)), len(data) - 1, len(data) - 2})
    assert not any(jpeg.is_intact(data[:cut]) for cut in cuts)


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"GIF89a....", b"\x89PNG\r\n\x1a\n0000"])
def test_non_jpeg_bytes(data):
    assert not jpeg.is_intact(data)


def _with_dht(data: bytes, edit) -> bytes:
    _, start, end = next(s for s in _segments(data) if s[0] == jpeg.DHT)
    segment = bytearray(data[start:end])
    edit(segment)
    return data[:start] + bytes(segment) + data[end:]


def test_bad_huffman_tables_are_not_intact():
    data = _jpeg()

    def overfull(seg):
        # Two 1-bit codes use up the code space (same symbol count): libjpeg rejects it.
        counts = seg[5:21]
        longest = max(range(16), key=lambda i: counts[i])
        seg[5] += 2
        seg[5 + longest] -= 2

    assert not jpeg.is_intact(_with_dht(data, overfull))
    assert jpeg.is_intact(_with_dht(data, lambda seg: None))

    # A DC table symbol above 15.
    def big_symbol(seg):
        seg[5 + 16] = 200

    assert not jpeg.is_intact(_with_dht(data, big_symbol))


def test_missing_tables_fall_back_to_a_real_decode(tmp_path):
    # Motion-JPEG style: no DHT at all. Not "intact" by our rules, but libjpeg supplies the
    # standard tables, so conform decodes it, finds it fine, and still copies it unchanged.
    data = _jpeg()
    stripped = data[:2] + b"".join(
        data[start:end] for marker, start, end in _segments(data) if marker != jpeg.DHT
    )
    stripped += data[max(end for _, _, end in _segments(data)) :]
    assert not jpeg.is_intact(stripped)
    src = tmp_path / "mjpeg.jpg"
    src.write_bytes(stripped)
    result = conform(src, tmp_path / "o.jpg", Settings())
    assert result.status == images.COPIED
    assert (tmp_path / "o.jpg").read_bytes() == stripped


def test_unsupported_coding_is_left_to_the_decoder():
    data = bytearray(_jpeg())
    _, start, _ = next(s for s in _segments(bytes(data)) if s[0] in jpeg.SOF_SUPPORTED)
    data[start + 1] = 0xC9  # arithmetic coding
    assert not jpeg.is_intact(bytes(data))
