"""images.conform: copy, convert, rotate, resize, reject."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from preprocessing import images
from preprocessing.images import Settings, conform

from .conftest import DATA, unique_image, write_jpeg

SETTINGS = Settings(size=348, min_side=224, quality=95)


def _open(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


def _assert_conforming_output(path: Path, size: int = 348) -> Image.Image:
    image = _open(path)
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (size, size))
    return image


def test_conforming_jpeg_is_copied_byte_for_byte(tmp_path):
    src = write_jpeg(tmp_path / "a.jpg", progressive=True)
    result = conform(src, tmp_path / "out" / "a.jpg", SETTINGS)
    assert result.status == images.COPIED
    assert (tmp_path / "out" / "a.jpg").read_bytes() == src.read_bytes()
    assert len(result.sha256) == 64


def test_real_square_sample_is_copied_and_real_portrait_is_squashed(tmp_path):
    square = conform(DATA / "Golden-Delicious_001.jpg", tmp_path / "sq.jpg", SETTINGS)
    portrait = conform(DATA / "Golden-Delicious_007.jpg", tmp_path / "po.jpg", SETTINGS)
    assert square.status == images.COPIED
    assert (tmp_path / "sq.jpg").read_bytes() == (DATA / "Golden-Delicious_001.jpg").read_bytes()
    assert portrait.status == images.CONVERTED
    _assert_conforming_output(tmp_path / "po.jpg")


def test_non_square_is_resized_whole_without_cropping(tmp_path):
    # 348x464 portrait: red band on the top 48 rows, blue band on the bottom 48 rows.
    image = Image.new("RGB", (348, 464), (0, 200, 0))
    image.paste((255, 0, 0), (0, 0, 348, 48))
    image.paste((0, 0, 255), (0, 416, 348, 464))
    src = tmp_path / "portrait.png"
    image.save(src)
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED
    out = _assert_conforming_output(tmp_path / "o.jpg")
    # A centre crop would cut 58 rows off each end and lose both bands; a squash keeps them
    # (48 * 348/464 = 36 rows each) exactly where the algorithm's inference resize puts them.
    r, g, b = out.getpixel((174, 10))
    assert r > 200
    assert g < 60
    assert b < 60
    r, g, b = out.getpixel((174, 337))
    assert b > 200
    assert r < 60
    assert g < 60
    r, g, b = out.getpixel((174, 174))
    assert g > 150
    assert r < 60
    expected = image.resize((348, 348), images.RESAMPLE)
    assert _mean_abs_diff(out, expected) < 3


def test_landscape_is_squashed_too(tmp_path):
    src = write_jpeg(tmp_path / "land.jpg", size=(464, 348))
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED
    _assert_conforming_output(tmp_path / "o.jpg")


@pytest.mark.parametrize(
    ("orientation", "top", "bottom"),
    [
        (6, (255, 0, 0), (0, 0, 255)),  # rotate 90 CW to display: left half -> top
        (8, (0, 0, 255), (255, 0, 0)),  # rotate 90 CCW to display: right half -> top
        (3, (0, 0, 255), (255, 0, 0)),  # rotate 180: left/right swap (checked via columns)
    ],
)
def test_exif_orientation_is_applied(tmp_path, orientation, top, bottom):
    image = Image.new("RGB", (464, 348), (255, 0, 0))
    image.paste((0, 0, 255), (232, 0, 464, 348))  # left half red, right half blue
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = orientation
    src = tmp_path / "rot.jpg"
    image.save(src, "JPEG", exif=exif, quality=95)
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED
    out = _assert_conforming_output(tmp_path / "o.jpg")
    if orientation == 3:
        first, second = out.getpixel((20, 174)), out.getpixel((327, 174))
    else:
        first, second = out.getpixel((174, 20)), out.getpixel((174, 327))
    assert _close(first, top)
    assert _close(second, bottom)


def test_square_jpeg_with_rotation_is_not_copied(tmp_path):
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = 6
    src = write_jpeg(tmp_path / "sq.jpg", exif=exif)
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED
    assert images._orientation(_open(tmp_path / "o.jpg")) == 1


@pytest.mark.parametrize(
    ("mode", "fmt", "suffix"),
    [
        ("L", "JPEG", "jpg"),
        ("CMYK", "JPEG", "jpg"),
        ("P", "PNG", "png"),
        ("RGBA", "PNG", "png"),
        ("LA", "PNG", "png"),
        ("I;16", "PNG", "png"),
        ("1", "PNG", "png"),
        ("RGB", "PNG", "png"),
    ],
)
def test_modes_are_converted_to_rgb_jpeg(tmp_path, mode, fmt, suffix):
    src = tmp_path / f"in.{suffix}"
    unique_image((348, 348), mode).save(src, fmt)
    result = conform(src, tmp_path / "o.jpg", SETTINGS)
    assert result.status == images.CONVERTED
    _assert_conforming_output(tmp_path / "o.jpg")


def test_transparent_pixels_become_white_not_black(tmp_path):
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    image.paste((10, 120, 10, 255), (100, 100, 200, 200))
    src = tmp_path / "t.png"
    image.save(src)
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED
    out = _open(tmp_path / "o.jpg")
    assert _close(out.getpixel((5, 5)), (255, 255, 255))
    assert _close(out.getpixel((174, 174)), (10, 120, 10))


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (300, 300), 0)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    image.paste(1, (0, 0, 150, 300))
    src = tmp_path / "p.png"
    image.save(src, transparency=0)
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED
    out = _open(tmp_path / "o.jpg")
    assert _close(out.getpixel((300, 174)), (255, 255, 255))
    assert _close(out.getpixel((40, 174)), (200, 30, 30))


def test_sixteen_bit_grayscale_keeps_its_range(tmp_path):
    image = Image.new("I;16", (300, 300), 32768)
    src = tmp_path / "g16.png"
    image.save(src)
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED
    value = _open(tmp_path / "o.jpg").getpixel((150, 150))
    assert all(120 <= channel <= 135 for channel in value)  # mid grey, not clipped white


def test_large_jpeg_uses_reduced_decoding_and_still_conforms(tmp_path):
    src = write_jpeg(tmp_path / "big.jpg", size=(1600, 1200))
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED
    _assert_conforming_output(tmp_path / "o.jpg")


def test_other_size_setting(tmp_path):
    src = write_jpeg(tmp_path / "a.jpg")
    settings = Settings(size=256, min_side=224)
    assert conform(src, tmp_path / "o.jpg", settings).status == images.CONVERTED
    _assert_conforming_output(tmp_path / "o.jpg", 256)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(path: Path) -> Path:
    data = write_jpeg(path.with_suffix(".full.jpg")).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt(path: Path) -> Path:
    data = bytearray(write_jpeg(path.with_suffix(".full.jpg")).read_bytes())
    huffman = data.index(b"\xff\xc4")
    data[huffman + 5 : huffman + 21] = b"\xff" * 16  # an impossible Huffman table
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: _write(p, b""), images.EMPTY_FILE),
        (lambda p: _write(p, b"hello, not a picture"), images.NOT_AN_IMAGE),
        (_truncated, images.TRUNCATED),
        (_corrupt, images.CORRUPT),
        (lambda p: write_jpeg(p, size=(200, 400)), images.TOO_SMALL),
        (lambda p: write_jpeg(p, size=(223, 223)), images.TOO_SMALL),
    ],
)
def test_bad_inputs_are_rejected_with_a_reason(tmp_path, make, reason):
    src = make(tmp_path / "bad.jpg")
    dst = tmp_path / "out" / "bad.jpg"
    result = conform(src, dst, SETTINGS)
    assert (result.status, result.reason) == (images.REJECTED, reason)
    assert result.detail
    assert not dst.exists()


def test_truncated_png_is_rejected(tmp_path):
    buffer = io.BytesIO()
    unique_image((348, 348)).save(buffer, "PNG")
    src = tmp_path / "t.png"
    data = buffer.getvalue()
    src.write_bytes(data[: len(data) // 2])
    result = conform(src, tmp_path / "o.jpg", SETTINGS)
    assert (result.status, result.reason) == (images.REJECTED, images.TRUNCATED)


def test_png_with_bad_checksum_is_rejected_as_corrupt(tmp_path):
    buffer = io.BytesIO()
    unique_image((348, 348)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 4
    data[start : start + 2] = b"\x00\x00"  # an invalid zlib header
    src = tmp_path / "c.png"
    src.write_bytes(bytes(data))
    result = conform(src, tmp_path / "o.jpg", SETTINGS)
    assert (result.status, result.reason) == (images.REJECTED, images.CORRUPT)


def test_min_side_is_checked_after_rotation(tmp_path):
    # Stored 230x400, displayed 400x230: shorter side 230 >= 224 either way: accepted.
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = 6
    src = write_jpeg(tmp_path / "r.jpg", size=(230, 400), exif=exif)
    assert conform(src, tmp_path / "o.jpg", SETTINGS).status == images.CONVERTED


def test_unreadable_path_is_rejected(tmp_path):
    result = conform(tmp_path / "missing.jpg", tmp_path / "o.jpg", SETTINGS)
    assert (result.status, result.reason) == (images.REJECTED, images.UNREADABLE)


def _close(pixel, expected, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def _mean_abs_diff(first: Image.Image, second: Image.Image) -> float:
    a, b = first.tobytes(), second.tobytes()
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)
