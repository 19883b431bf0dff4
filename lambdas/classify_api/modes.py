"""What the serving mode (SERVING_MODE, set by the serving stack) changes for one request.

realtime: InvokeEndpoint, bodies up to 6 MB (the API's own limit is lower, see request.py).
serverless: InvokeEndpoint, bodies up to 4 MB ("The maximum request and response payload
  size for serverless invocations is 4 MB",
  https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints-invoke.html).
async: POST queues the request and answers 202; GET /classify/results/{id} answers it
  later (classify_api.async_requests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from classify_api.errors import HttpError

REALTIME, SERVERLESS, ASYNC = "realtime", "serverless", "async"
SERVERLESS_MAX_BYTES = 4 * 1024 * 1024


class Accepted(dict):
    """An answer that is not the prediction yet: HTTP 202, with a Retry-After."""

    status = 202
    retry_after = 5


def serving_mode(env: Mapping[str, str] = os.environ) -> str:
    mode = env.get("SERVING_MODE", REALTIME)
    return mode if mode in (REALTIME, SERVERLESS, ASYNC) else REALTIME


def is_result_request(event: Mapping[str, Any]) -> bool:
    """GET /classify/results/{request_id} (async mode's second call)."""
    return event.get("httpMethod") == "GET"


def check_payload(mode: str, image: bytes) -> None:
    if mode == SERVERLESS and len(image) > SERVERLESS_MAX_BYTES:
        raise HttpError(
            413,
            "payload_too_large",
            f"the image is {len(image):,} bytes; this deployment serves from a serverless "
            f"endpoint, which accepts at most {SERVERLESS_MAX_BYTES:,}: downscale it "
            "(python -m grocery classify does this)",
        )
