"""Invokes the endpoint (InvokeEndpoint; InvokeEndpointAsync in async mode) and turns its
failures into answers a client can act on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from classify_api.errors import HttpError

# One retry at most: the caller gets a Retry-After instead of retries piling up behind
# a saturated endpoint. Worst case 2 x (2 s + 8 s) stays under the Lambda timeout.
RUNTIME_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=8, retries={"total_max_attempts": 2, "mode": "standard"}
)
BUSY_CODES = frozenset(
    {"ThrottlingException", "ServiceUnavailable", "ModelNotReadyException", "TooManyRequests"}
)
SERVER_CODES = frozenset({"InternalFailure", "InternalDependencyException", "InternalServerError"})


def invoke(client: Any, *, endpoint_name: str, image: bytes, content_type: str) -> bytes:
    """The endpoint's raw answer (a JSON array of probabilities), or an HttpError (502/503/422)."""
    with _endpoint_errors(endpoint_name):
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=image,
            ContentType=content_type,
            Accept="application/json",
        )
        return response["Body"].read()


def invoke_async(
    client: Any, *, endpoint_name: str, input_location: str, content_type: str, inference_id: str
) -> dict[str, str]:
    """Queues one request (serving_mode=async): {'output', 'failure'} S3 URIs of its answer.

    The image is already in S3 (InputLocation): bodies inline are limited to 128,000 bytes.
    https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-invoke-endpoint.html
    """
    with _endpoint_errors(endpoint_name):
        response = client.invoke_endpoint_async(
            EndpointName=endpoint_name,
            InputLocation=input_location,
            ContentType=content_type,
            Accept="application/json",
            InferenceId=inference_id,
        )
    return {"output": response["OutputLocation"], "failure": response.get("FailureLocation", "")}


@contextlib.contextmanager
def _endpoint_errors(endpoint_name: str) -> Iterator[None]:
    """SageMaker Runtime failures as the API's answers (one mapping for both invoke calls)."""
    try:
        yield
    except ClientError as error:
        raise _from_client_error(error, endpoint_name) from error
    except (ReadTimeoutError, ConnectTimeoutError, BotoConnectionError) as error:
        raise HttpError(
            503, "endpoint_timeout", "the endpoint did not answer in time; retry", retry_after=5
        ) from error
    except BotoCoreError as error:
        raise HttpError(
            502, "endpoint_error", "calling the endpoint failed; retry", retryable=True
        ) from error


def _from_client_error(error: ClientError, endpoint_name: str) -> HttpError:
    details = error.response.get("Error", {})
    code = details.get("Code", "")
    message = details.get("Message", "")
    if code in BUSY_CODES:
        return HttpError(
            503, "endpoint_busy", "the endpoint is busy (throttled); retry", retry_after=2
        )
    if code == "ValidationError" and ("not found" in message or "Could not find" in message):
        return HttpError(
            503,
            "endpoint_unavailable",
            f"endpoint {endpoint_name} does not exist (yet): it is created when a model is "
            "promoted; retry later",
            retry_after=60,
        )
    if code == "ModelError":
        status = int(error.response.get("OriginalStatusCode") or 0)
        if 400 <= status < 500:
            return HttpError(
                422,
                "unreadable_image",
                "the model could not read this image: send an uncorrupted JPEG or PNG",
            )
        return HttpError(
            502, "model_error", "the model failed on this request; retry", retryable=True
        )
    if code in SERVER_CODES:
        return HttpError(502, "endpoint_error", "the endpoint failed; retry", retryable=True)
    # AccessDenied, other validation errors: a deployment problem, not the caller's.
    return HttpError(
        502, "endpoint_rejected", "the endpoint rejected the call; operators: see the API's logs"
    )
