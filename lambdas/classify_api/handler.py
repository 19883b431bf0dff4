"""POST /classify: one JPEG or PNG body in, the grocery label, its confidence and the top k out.

Environment (set by the serving stack): ENDPOINT_NAME, MODEL_NAME and LABELS_URI, each
"none" until a model is approved and promoted; DEFAULT_TOP_K; for the review loop and the
confidence metrics REVIEW_BUCKET, REVIEW_THRESHOLD, REVIEW_KEEP_IMAGES and
PREDICTION_METRICS_NAMESPACE (classify_api.review).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from classify_api.async_requests import AsyncRequests
from classify_api.endpoint import RUNTIME_CLIENT_CONFIG, invoke
from classify_api.errors import HttpError
from classify_api.labels_store import S3_CLIENT_CONFIG, LabelsStore
from classify_api.modes import ASYNC, check_payload, is_result_request, serving_mode
from classify_api.request import parse_request
from classify_api.review import PredictionRecorder
from grocery_common.labels import DEFAULT_TOP_K, LabelError, decode, parse_probabilities

NO_APPROVED_MODEL = "none"  # stacks/names.py: the pointer's value before the first approval

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Grocery-Serving"))


@dataclasses.dataclass(frozen=True)
class Settings:
    endpoint_name: str
    model_name: str
    labels_uri: str
    default_top_k: int = DEFAULT_TOP_K

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            endpoint_name=env.get("ENDPOINT_NAME", NO_APPROVED_MODEL),
            model_name=env.get("MODEL_NAME", NO_APPROVED_MODEL),
            labels_uri=env.get("LABELS_URI", NO_APPROVED_MODEL),
            default_top_k=int(env.get("DEFAULT_TOP_K", DEFAULT_TOP_K)),
        )

    @property
    def has_model(self) -> bool:
        return NO_APPROVED_MODEL not in (self.endpoint_name, self.model_name, self.labels_uri)


class Classifier:
    """Everything a request needs; built once per execution environment."""

    def __init__(
        self,
        settings: Settings,
        *,
        runtime: Any,
        s3: Any,
        recorder: PredictionRecorder | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.labels = LabelsStore(s3, settings.labels_uri)
        # Confidence metrics always; the review queue only when the environment enables it.
        self.recorder = recorder or PredictionRecorder.from_environment()
        # SERVING_MODE (classify_api.modes): async queues requests instead of invoking.
        self.mode = serving_mode()
        self.queue = (
            AsyncRequests(
                s3=s3,
                runtime=runtime,
                bucket=os.environ.get("INFERENCE_BUCKET", ""),
                endpoint_name=settings.endpoint_name,
            )
            if self.mode == ASYNC
            else None
        )
        self._s3 = s3

    @classmethod
    def from_environment(cls) -> Classifier:
        settings = Settings.from_environment()
        return cls(
            settings,
            runtime=boto3.client("sagemaker-runtime", config=RUNTIME_CLIENT_CONFIG),
            s3=boto3.client("s3", config=S3_CLIENT_CONFIG),
        )

    def _labels_of(self, uri: str) -> list[str]:
        return self.labels.get() if uri == self.labels.uri else LabelsStore(self._s3, uri).get()

    def classify(self, event: Mapping[str, Any]) -> dict[str, Any]:
        if self.queue and is_result_request(event):
            return self.queue.result(event, self._labels_of)
        request = parse_request(event, default_top_k=self.settings.default_top_k)
        if not self.settings.has_model:
            raise HttpError(
                503,
                "no_approved_model",
                "no approved model yet: run the training pipeline, then promote the model "
                "(python -m grocery promote)",
            )
        check_payload(self.mode, request.image)
        if self.queue:
            return self.queue.submit(
                request, model=self.settings.model_name, labels_uri=self.settings.labels_uri
            )
        labels = self.labels.get()
        started = time.perf_counter()
        raw = invoke(
            self.runtime,
            endpoint_name=self.settings.endpoint_name,
            image=request.image,
            content_type=request.content_type,
        )
        metrics.add_metric(
            "EndpointLatency", MetricUnit.Milliseconds, (time.perf_counter() - started) * 1000
        )
        try:
            probabilities = parse_probabilities(raw)
            prediction = decode(probabilities, labels, k=request.top_k)
        except LabelError as error:
            logger.error("the model's answer does not fit its labels", extra={"error": str(error)})
            raise HttpError(
                502,
                "model_label_mismatch",
                f"the model's answer cannot be decoded: {error}",
            ) from None
        logger.info(
            "classified",
            extra={"label": prediction.label, "confidence": prediction.confidence},
        )
        queued = self.recorder.record(
            request.image,
            request.content_type,
            decode(probabilities, labels),
            self.settings.model_name,
        )
        return {
            **prediction.to_dict(),
            "sentence": prediction.sentence(),
            "model": self.settings.model_name,
            "endpoint": self.settings.endpoint_name,
            "queued_for_review": queued,
        }


_classifier: Classifier | None = None


def _get_classifier() -> Classifier:
    global _classifier  # noqa: PLW0603 - one per execution environment, reused across requests
    if _classifier is None:
        _classifier = Classifier.from_environment()
    return _classifier


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict:
    return {
        "statusCode": status,
        "headers": {
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            **(headers or {}),
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def error_response(error: HttpError) -> dict[str, Any]:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
    body = {"error": error.code, "message": error.message, "retryable": error.retryable}
    return _response(error.status, body, headers)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        answer = _get_classifier().classify(event)
    except HttpError as error:
        log = logger.warning if error.status < 500 else logger.error
        log(
            "request refused",
            extra={"status": error.status, "error": error.code, "cause": repr(error.__cause__)},
        )
        metrics.add_metric(
            "ClientErrors" if error.status < 500 else "ServerErrors", MetricUnit.Count, 1
        )
        return error_response(error)
    except Exception:
        # A bug of ours: logged with its traceback, answered without one.
        logger.exception("unexpected failure")
        metrics.add_metric("ServerErrors", MetricUnit.Count, 1)
        return error_response(
            HttpError(500, "internal_error", "internal error; operators: see the API's logs")
        )
    metrics.add_metric("Classified", MetricUnit.Count, 1)
    # async mode: 202 (queued) until the answer is in S3 (classify_api.modes.Accepted).
    status = getattr(answer, "status", 200)
    retry = {"Retry-After": str(answer.retry_after)} if status == 202 else None
    return _response(status, answer, retry)
