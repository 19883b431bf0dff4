"""One smoke request to the endpoint a serverless release just updated (serving_mode=serverless).

The built-in image-classification container has not been shown to run on Serverless
Inference, so the release workflow asks the endpoint once, with a tiny valid JPEG
(smoke.jpg, 32x32, a few hundred bytes), and rolls back unless the answer is a JSON list of
probabilities with one value per label of the released version.

Input (built by the release state machine): {"endpoint_name": "...", "classes": 3}
Output: {"ok": true|false, "reason": "...", "classes": 3, "answered": <values or 0>}; the
state machine rolls back on "ok": false and says `reason`. A failed call is an answer too
("ok": false): the version is on the endpoint and must come off it.

Why a Lambda and not an `aws-sdk:sagemakerruntime:invokeEndpoint` task: InvokeEndpoint's
Body is a binary blob, the algorithm accepts only encoded images (image/jpeg, image/png,
application/x-image; https://docs.aws.amazon.com/sagemaker/latest/dg/image-classification.html),
and Step Functions passes parameters as JSON text, with no documented way to give a blob
parameter binary bytes (https://docs.aws.amazon.com/step-functions/latest/dg/
supported-services-awssdk.html). A JPEG is not valid UTF-8 text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from grocery_common.labels import LabelError, parse_probabilities

logger = Logger()
SMOKE_IMAGE = Path(__file__).with_name("smoke.jpg")
# A serverless endpoint may start cold; its container must answer within 60 s and AWS advises
# a 70 s socket timeout (InvokeEndpoint, API reference). Two attempts stay under the
# function's timeout (stacks/release/smoke.py).
CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=70, retries={"total_max_attempts": 2, "mode": "standard"}
)


def check_answer(body: bytes, classes: int) -> str:
    """'' when `body` is one probability per class, else what is wrong with it."""
    try:
        probabilities = parse_probabilities(body)
    except LabelError as error:
        return str(error)
    if len(probabilities) != classes:
        return (
            f"the model answered {len(probabilities)} probabilities, but the version has "
            f"{classes} labels"
        )
    outside = [p for p in probabilities if not 0.0 <= p <= 1.0]
    if outside:
        return f"the model's answer is not probabilities (values outside 0..1: {outside[:3]})"
    return ""


def smoke(client: Any, endpoint_name: str, classes: int) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": False, "classes": classes, "answered": 0}
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=SMOKE_IMAGE.read_bytes(),
            ContentType="image/jpeg",
            Accept="application/json",
        )
        body = response["Body"].read()
    except ClientError as error:
        details = error.response.get("Error", {})
        result["reason"] = (
            f"InvokeEndpoint failed: {details.get('Code', 'error')}: {details.get('Message', '')}"
        )
        return result
    except BotoCoreError as error:
        result["reason"] = f"InvokeEndpoint failed: {error}"
        return result
    problem = check_answer(body, classes)
    if problem:
        result["reason"] = problem
        return result
    result.update(ok=True, reason="", answered=classes)
    return result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    client = boto3.client("sagemaker-runtime", config=CLIENT_CONFIG)
    result = smoke(client, str(event["endpoint_name"]), int(event["classes"]))
    logger.info("smoke request answered", extra=result)
    return result
