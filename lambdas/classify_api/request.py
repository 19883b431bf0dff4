"""Reads and validates an API Gateway (REST, Lambda proxy) request before the endpoint sees it."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping
from typing import Any

from classify_api.errors import HttpError

# InvokeEndpoint's Body limit (botocore's service model: max 6291456 bytes).
ENDPOINT_MAX_BYTES = 6 * 1024 * 1024
MAX_TOP_K = 20
# What the built-in algorithm accepts (image/jpeg, image/png, application/x-image),
# plus octet-stream for clients that cannot set an image type. The body is sniffed anyway.
ACCEPTED_CONTENT_TYPES = frozenset(
    {"image/jpeg", "image/png", "application/x-image", "application/octet-stream"}
)
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class ClassifyRequest:
    image: bytes
    content_type: str  # what the bytes are (sniffed), sent to the endpoint
    top_k: int


def sniff_image_type(data: bytes) -> str | None:
    """'image/jpeg' or 'image/png' from the magic bytes, else None."""
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    if data.startswith(PNG_MAGIC):
        return "image/png"
    return None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def parse_top_k(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_TOP_K:
        raise HttpError(
            400,
            "invalid_top_k",
            f"top_k must be a whole number from 1 to {MAX_TOP_K}, got {raw[:20]!r}",
        )
    return int(text)


def _body_bytes(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if not body:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise HttpError(400, "invalid_body", "the request body is not valid base64") from None
    # A text body: API Gateway passes media types outside binaryMediaTypes as UTF-8 text.
    return body.encode("utf-8", errors="surrogateescape")


def parse_request(event: Mapping[str, Any], *, default_top_k: int) -> ClassifyRequest:
    """The validated request, or an HttpError (4xx) that says what to change."""
    top_k = parse_top_k((event.get("queryStringParameters") or {}).get("top_k"), default_top_k)
    image = _body_bytes(event)
    if not image:
        raise HttpError(
            400, "empty_body", "the request body is empty: send one JPEG or PNG image as the body"
        )
    declared = (_header(event.get("headers"), "content-type") or "").split(";")[0].strip().lower()
    if declared not in ACCEPTED_CONTENT_TYPES:
        raise HttpError(
            415,
            "unsupported_content_type",
            f"unsupported Content-Type {declared or '(none)'!r}: use image/jpeg or image/png",
        )
    if len(image) > ENDPOINT_MAX_BYTES:
        raise HttpError(
            413,
            "payload_too_large",
            f"the image is {len(image):,} bytes; the endpoint accepts at most "
            f"{ENDPOINT_MAX_BYTES:,}: downscale it (python -m grocery classify does this)",
        )
    sniffed = sniff_image_type(image)
    if sniffed is None:
        raise HttpError(
            400, "not_an_image", "the request body is not a JPEG or PNG image (by its first bytes)"
        )
    return ClassifyRequest(image=image, content_type=sniffed, top_k=top_k)
