"""Validate one input image and write it as an RGB JPEG of exactly SIZE x SIZE.

Policy (see docs/preprocessing.md):

* An input that is already an RGB JPEG of exactly SIZE x SIZE with no EXIF rotation is
  copied byte for byte (no second JPEG generation loss, and fast) once its structure is
  checked (jpeg.is_intact; anything unusual is fully decoded first).
* Anything else is decoded, EXIF-rotated, converted to RGB (grayscale, CMYK, palette,
  16-bit, and transparent images composited on white) and resized to SIZE x SIZE
  *without* keeping the aspect ratio and without cropping: the algorithm resizes to
  image_shape the same way at inference, so train and serve see the same distortion.
* Empty, non-image, corrupt, truncated and too-small inputs are rejected with a reason; the
  function never raises for a bad image.

This module runs inside worker processes: keep it free of global state.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from preprocessing import jpeg

COPIED = "copied"
CONVERTED = "converted"
REJECTED = "rejected"

# Rejection reasons decided by looking at the file's content.
EMPTY_FILE = "empty_file"
UNREADABLE = "unreadable"
NOT_AN_IMAGE = "not_an_image"
CORRUPT = "corrupt"
TRUNCATED = "truncated"
TOO_SMALL = "too_small"
TOO_LARGE = "too_large"

EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}
RESAMPLE = Image.Resampling.BICUBIC  # antialiased when downscaling; close to LANCZOS, 2x faster


@dataclass(frozen=True)
class Settings:
    size: int = 348
    min_side: int = 224
    quality: int = 95


@dataclass(frozen=True, slots=True)
class Result:
    status: str  # COPIED, CONVERTED or REJECTED
    sha256: str = ""
    reason: str = ""
    detail: str = ""


def conform(src: Path, dst: Path, settings: Settings) -> Result:
    """Write ``src`` to ``dst`` as an RGB JPEG of settings.size squared, or reject it."""
    try:
        data = src.read_bytes()
    except OSError as exc:
        return Result(REJECTED, reason=UNREADABLE, detail=_one_line(exc))
    if not data:
        return Result(REJECTED, reason=EMPTY_FILE, detail="0 bytes")
    digest = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            # DecompressionBombWarning becomes an error; EXIF warnings stay quiet.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)
            status = _conform_bytes(data, dst, settings)
    except _RejectError as rej:
        return Result(REJECTED, digest, rej.reason, rej.detail)
    return Result(status, digest)


class _RejectError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _conform_bytes(data: bytes, dst: Path, settings: Settings) -> str:
    size = settings.size
    with _open(data) as image:
        stored_size, stored_format, stored_mode = image.size, image.format, image.mode
        # JPEG EXIF is parsed at open; other formats (PNG) may read it while decoding.
        orientation = _orientation(image) if stored_format == "JPEG" else None
        conforming = (
            stored_format == "JPEG"
            and stored_mode == "RGB"
            and stored_size == (size, size)
            and orientation == 1
        )
        if conforming and jpeg.is_intact(data):
            # Well-formed and complete (markers, tables, EOI): copy without decoding pixels.
            _write(dst, data)
            return COPIED
        if conforming:
            # Something looked unusual: let libjpeg decide. A 1/8-scale decode still reads
            # every entropy-coded byte (catches truncation and corrupt data) at half the cost.
            image.draft("RGB", (max(1, size // 8), max(1, size // 8)))
        elif stored_format == "JPEG" and min(stored_size) >= 2 * size:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: still >= size on both sides.
            image.draft("RGB", (size, size))
        _decode(image)
        if orientation is None:
            orientation = _orientation(image)
        width, height = stored_size
        if orientation in _SWAPS_AXES:
            width, height = height, width
        if min(width, height) < settings.min_side:
            raise _RejectError(
                TOO_SMALL, f"{width}x{height} is smaller than the minimum side {settings.min_side}"
            )
        output = data if conforming else _encode(image, settings)
    _write(dst, output)
    return COPIED if conforming else CONVERTED


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise _RejectError(NOT_AN_IMAGE, "not a format Pillow can decode") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _RejectError(TOO_LARGE, _one_line(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _RejectError(CORRUPT, _one_line(exc)) from None


def _decode(image: Image.Image) -> None:
    """Decode every pixel: the check that catches truncated and corrupt data."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = _one_line(exc)
        reason = TRUNCATED if "truncated" in message.lower() else CORRUPT
        raise _RejectError(reason, message) from None


def _encode(image: Image.Image, settings: Settings) -> bytes:
    """EXIF-rotate, convert to RGB, resize to size x size (no crop), JPEG-encode."""
    size = settings.size
    try:
        rgb = to_rgb(ImageOps.exif_transpose(image))
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), RESAMPLE, reducing_gap=3.0)
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=settings.quality)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _RejectError(CORRUPT, _one_line(exc)) from None
    return buffer.getvalue()


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited onto white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16/32-bit grayscale: scale to 8 bits instead of clipping everything above 255.
        image = image.convert("I") if mode != "I" else image
        peak = image.getextrema()[1] or 1
        scale = 255 / 65535 if peak > 255 else 1
        return image.point(lambda value: value * scale).convert("L").convert("RGB")
    if mode == "F":
        return image.convert("L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # broken EXIF blocks must not reject an otherwise good image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _write(dst: Path, data: bytes) -> None:
    # No temp file + rename: prepare writes manifest.json last, so an interrupted run is
    # visibly incomplete anyway, and file creation is the costliest syscall here.
    try:
        handle = dst.open("wb")
    except FileNotFoundError:
        dst.parent.mkdir(parents=True, exist_ok=True)
        handle = dst.open("wb")
    with handle:
        handle.write(data)


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]
