"""The bytes `classify` sends for one photo: as it is when it fits, else a JPEG that fits."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from classify_api.request import sniff_image_type

from grocery.errors import CommandError

JPEG_QUALITY = 90


@dataclass(frozen=True)
class PreparedImage:
    body: bytes
    content_type: str
    note: str = ""  # what was done to fit the limit, if anything


def prepare_image(path: Path, max_bytes: int) -> PreparedImage:
    """The bytes to send: the file itself if it is a JPEG/PNG within `max_bytes`, else a
    JPEG re-encoded (and downscaled as needed) from whatever Pillow can read."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CommandError(f"{path}: cannot read it ({error.strerror or error})") from None
    kind = sniff_image_type(data)
    if kind and len(data) <= max_bytes:
        return PreparedImage(data, kind)
    from PIL import Image, ImageOps, UnidentifiedImageError  # only when conversion is needed

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except UnidentifiedImageError:
        # Pillow's own message names its BytesIO buffer, which means nothing to the user.
        raise CommandError(
            f"{path}: not an image this command can read: send a JPEG or PNG "
            "(HEIC/HEIF photos: export or convert them to JPEG first)"
        ) from None
    except OSError as error:  # a truncated or damaged file of a known format
        raise CommandError(f"{path}: the image is damaged ({error})") from None
    original = image.size
    scale = 1.0
    for _ in range(12):
        size = (max(1, round(original[0] * scale)), max(1, round(original[1] * scale)))
        resized = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        resized.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        body = buffer.getvalue()
        if len(body) <= max_bytes:
            what = "converted to JPEG" if scale == 1.0 else "downscaled"
            note = (
                f"{what}: {original[0]}x{original[1]}, {len(data):,} bytes -> "
                f"{size[0]}x{size[1]}, {len(body):,} bytes"
            )
            return PreparedImage(body, "image/jpeg", note)
        # JPEG size grows roughly with the pixel count: shrink both sides by sqrt(ratio).
        scale *= min(0.9, math.sqrt(max_bytes / len(body)) * 0.95)
    raise CommandError(f"{path}: cannot bring it under {max_bytes:,} bytes")
