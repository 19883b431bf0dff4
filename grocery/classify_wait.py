"""serving_mode=async: the API answers 202 with a request id; the result is fetched later.

`wait_for_result` polls GET <ApiUrl>/results/<id> (signed like the POST) until the
prediction is there, the request failed, or the time is up. A scaled-to-zero endpoint
starts an instance first, which takes minutes (docs/serving.md, "Serving modes").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from grocery.errors import FAILED, CommandError

DEFAULT_WAIT_SECONDS = 900
POLL_SECONDS = 10

# (status, headers, body) of one GET.
Fetch = Callable[[str], tuple[int, dict[str, str], bytes]]


def _body(raw: bytes) -> dict[str, Any]:
    try:
        return json.loads(raw or b"{}")
    except json.JSONDecodeError:
        return {"message": raw[:200].decode("utf-8", "replace")}


def wait_for_result(
    fetch: Fetch,
    url: str,
    *,
    timeout: float = DEFAULT_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    deadline = clock() + timeout
    while True:
        status, headers, raw = fetch(url)
        body = _body(raw)
        if status == 200:
            return body
        if status != 202:
            message = body.get("message") or body.get("Message") or "no message"
            raise CommandError(f"the API answered {status}: {message}", exit_code=FAILED)
        if clock() >= deadline:
            raise CommandError(
                f"no result after {timeout:g} s (request {body.get('request_id', '?')} is still "
                "queued; the endpoint may be starting from zero instances): raise --wait, or "
                f"fetch it later from {url}",
                exit_code=FAILED,
            )
        wait = {k.lower(): v for k, v in headers.items()}.get("retry-after", "")
        sleep(min(float(wait) if wait.isdigit() else POLL_SECONDS, POLL_SECONDS))
