"""serving_mode=async: queue a request, and answer it once SageMaker wrote the result.

POST /classify -> the image goes to s3://<inference>/async-input/<id>/image.<ext> with a
request record beside it (request.json: model, labels, top k, where SageMaker will write
the answer), then InvokeEndpointAsync -> 202 {"request_id", "status": "queued", "result"}.
GET /classify/results/<id> -> 200 with the prediction (decoded with the labels of the model
that was serving when the request was queued), 202 while it waits (a scaled-to-zero
endpoint starts an instance first: minutes), 502 when the model failed on it, 404 for an
unknown id. https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from classify_api.endpoint import invoke_async
from classify_api.errors import HttpError
from classify_api.labels_store import parse_s3_uri
from classify_api.modes import Accepted
from classify_api.request import ClassifyRequest
from grocery_common.labels import LabelError, decode, parse_probabilities

INPUT_PREFIX = "async-input/"  # stacks/names.py ASYNC_INPUT_PREFIX
RECORD = "request.json"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}
_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
FAILURE_TEXT_LIMIT = 300


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


def _unavailable(error: Exception) -> HttpError:
    return HttpError(
        503, "storage_unavailable", "the request store cannot be reached; retry", retry_after=5
    )


class AsyncRequests:
    def __init__(self, *, s3: Any, runtime: Any, bucket: str, endpoint_name: str) -> None:
        self.s3, self.runtime = s3, runtime
        self.bucket, self.endpoint_name = bucket, endpoint_name

    def submit(self, request: ClassifyRequest, *, model: str, labels_uri: str) -> Accepted:
        request_id = uuid.uuid4().hex
        folder = f"{INPUT_PREFIX}{request_id}/"
        image_key = f"{folder}image.{EXTENSIONS[request.content_type]}"
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=image_key,
                Body=request.image,
                ContentType=request.content_type,
            )
        except (ClientError, BotoCoreError) as error:
            raise _unavailable(error) from error
        where = invoke_async(
            self.runtime,
            endpoint_name=self.endpoint_name,
            input_location=f"s3://{self.bucket}/{image_key}",
            content_type=request.content_type,
            inference_id=request_id,
        )
        record = {
            "request_id": request_id,
            "model": model,
            "endpoint": self.endpoint_name,
            "labels_uri": labels_uri,
            "top_k": request.top_k,
            "output_location": where["output"],
            "failure_location": where["failure"],
            "queued_at": int(time.time()),
        }
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=f"{folder}{RECORD}",
                Body=json.dumps(record).encode(),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as error:
            raise _unavailable(error) from error
        return Accepted(
            request_id=request_id,
            status="queued",
            result=f"results/{request_id}",
            message="queued: GET the result path below the API URL (python -m grocery "
            "classify waits for it); a scaled-to-zero endpoint takes minutes to start",
            model=model,
        )

    def _read(self, uri_or_key: str) -> bytes | None:
        bucket, key = parse_s3_uri(uri_or_key) if "://" in uri_or_key else (self.bucket, uri_or_key)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if _missing(error):
                return None
            raise _unavailable(error) from error
        except BotoCoreError as error:
            raise _unavailable(error) from error

    def result(
        self, event: Mapping[str, Any], labels_for: Callable[[str], list[str]]
    ) -> dict[str, Any]:
        request_id = ((event.get("pathParameters") or {}).get("request_id") or "").strip()
        if not _REQUEST_ID.match(request_id):
            raise HttpError(
                400,
                "invalid_request_id",
                f"{request_id[:40]!r} is not a request id: use the request_id the POST answered",
            )
        raw_record = self._read(f"{INPUT_PREFIX}{request_id}/{RECORD}")
        if raw_record is None:
            raise HttpError(404, "unknown_request", f"no request {request_id} in this deployment")
        record = json.loads(raw_record)
        output = self._read(record["output_location"])
        if output is None:
            failure = self._read(record["failure_location"]) if record["failure_location"] else None
            if failure is not None:
                text = failure[:FAILURE_TEXT_LIMIT].decode("utf-8", "replace")
                raise HttpError(502, "model_error", f"the model failed on this request: {text}")
            return Accepted(request_id=request_id, status="queued", model=record["model"])
        try:
            prediction = decode(
                parse_probabilities(output), labels_for(record["labels_uri"]), k=record["top_k"]
            )
        except LabelError as error:
            raise HttpError(
                502, "model_label_mismatch", f"the model's answer cannot be decoded: {error}"
            ) from None
        return {
            **prediction.to_dict(),
            "sentence": prediction.sentence(),
            "model": record["model"],
            "endpoint": record["endpoint"],
            "request_id": request_id,
        }
