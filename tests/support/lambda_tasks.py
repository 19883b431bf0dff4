"""TEST-ONLY: a state machine's Lambda tasks run the real handler in process, in moto.

moto runs Lambda functions in Docker (not here) or echoes a queued answer. With
`handlers_answer({function_arn: handler})`, a `lambda:invoke` task of a state machine
running in moto calls `handler(payload, None)` when the execution reaches it, so the
handler sees the world (moto) as it is at that moment; other functions go to moto unchanged.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@contextlib.contextmanager
def handlers_answer(handlers: Mapping[str, Handler]) -> Iterator[list[dict[str, Any]]]:
    """Yields the payloads the handlers were called with, in order."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils as lambda_eval,
    )

    original = lambda_eval._invoke_lambda_function
    calls: list[dict[str, Any]] = []

    def invoke(parameters: dict, region: str, state_credentials: Any):
        handler = handlers.get(parameters["FunctionName"])
        if handler is None:
            return original(
                parameters=parameters, region=region, state_credentials=state_credentials
            )
        payload = parameters.get("Payload") or {}
        if isinstance(payload, (bytes, str)):
            payload = json.loads(payload)
        calls.append(payload)
        return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": handler(payload, None)}

    lambda_eval._invoke_lambda_function = invoke
    try:
        yield calls
    finally:
        lambda_eval._invoke_lambda_function = original
