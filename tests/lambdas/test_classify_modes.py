"""The classify Lambda in each serving mode: serverless's 4 MB limit, async's queue and results.

S3 is moto; the SageMaker runtime a botocore Stubber (which also checks every call's
parameters against botocore's model).
"""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.stub import Stubber
from classify_api import handler as handler_module
from classify_api.handler import Classifier
from classify_api.modes import SERVERLESS_MAX_BYTES
from moto import mock_aws

from tests.lambdas.test_classify_api import (
    ENDPOINT,
    LABELS,
    MODEL,
    answer,
    call,
    event,
    image_bytes,
    probabilities,
    settings,
)

INFERENCE = "inference-bucket"
ARTIFACTS = "artifacts-bucket"
LABELS_KEY = "training-jobs/job-1/labels.json"
OUTPUT = f"s3://{INFERENCE}/async-output/abc.out"
FAILURE = f"s3://{INFERENCE}/async-failures/abc-error.out"


@pytest.fixture(autouse=True)
def _quiet_metrics(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Grocery-Serving-Test")
    monkeypatch.setattr(handler_module, "_classifier", None)


@pytest.fixture
def world(aws_credentials, monkeypatch):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (INFERENCE, ARTIFACTS):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=ARTIFACTS, Key=LABELS_KEY, Body=json.dumps(LABELS).encode())
        yield s3


def install(monkeypatch, mode: str, s3, runtime) -> Classifier:
    monkeypatch.setenv("SERVING_MODE", mode)
    monkeypatch.setenv("INFERENCE_BUCKET", INFERENCE)
    classifier = Classifier(
        settings(labels_uri=f"s3://{ARTIFACTS}/{LABELS_KEY}"), runtime=runtime, s3=s3
    )
    monkeypatch.setattr(handler_module, "_classifier", classifier)
    return classifier


@pytest.fixture
def runtime(aws_credentials):
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


def big_jpeg(size: int) -> bytes:
    """Passes the API's JPEG sniffing; the endpoint is never reached with it."""
    return b"\xff\xd8\xff\xe0" + b"\0" * (size - 4)


class TestServerless:
    def test_a_body_over_4_mb_is_refused_naming_serverless(self, monkeypatch, world, runtime):
        install(monkeypatch, "serverless", world, runtime)
        with Stubber(runtime):  # no response queued: the endpoint must not be called
            status, _, body = call(event(big_jpeg(SERVERLESS_MAX_BYTES + 1)))
        assert status == 413
        assert body["error"] == "payload_too_large"
        assert "serverless" in body["message"]
        assert "4,194,304" in body["message"]

    def test_the_same_body_fits_a_realtime_endpoint(self, monkeypatch, world, runtime):
        install(monkeypatch, "realtime", world, runtime)
        image = big_jpeg(SERVERLESS_MAX_BYTES + 1)
        with Stubber(runtime) as stub:
            stub.add_response("invoke_endpoint", answer(probabilities()))
            status, _, body = call(event(image))
        assert status == 200
        assert body["label"] == "Banana"

    def test_serverless_invokes_like_realtime(self, monkeypatch, world, runtime):
        install(monkeypatch, "serverless", world, runtime)
        image = image_bytes()
        with Stubber(runtime) as stub:
            stub.add_response(
                "invoke_endpoint",
                answer(probabilities(best=3)),
                {
                    "EndpointName": ENDPOINT,
                    "Body": image,
                    "ContentType": "image/jpeg",
                    "Accept": "application/json",
                },
            )
            status, _, body = call(event(image))
        assert status == 200
        assert body["class_id"] == 3


def _queue(monkeypatch, world, runtime, image: bytes) -> dict:
    """POSTs in async mode; returns the 202 body (the stub checks InvokeEndpointAsync)."""
    install(monkeypatch, "async", world, runtime)
    with Stubber(runtime) as stub:
        stub.add_response(
            "invoke_endpoint_async",
            {"InferenceId": "x", "OutputLocation": OUTPUT, "FailureLocation": FAILURE},
        )
        status, headers, body = call(event(image, top_k="2"))
        stub.assert_no_pending_responses()
    assert status == 202, body
    assert headers["Retry-After"] == "5"
    return body


def result_event(request_id: str) -> dict:
    return {
        "resource": "/classify/results/{request_id}",
        "httpMethod": "GET",
        "headers": {},
        "pathParameters": {"request_id": request_id},
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {"requestId": "req-2", "stage": "v1"},
    }


class TestAsync:
    def test_post_stores_the_image_and_its_record_then_queues_it(self, monkeypatch, world, runtime):
        image = image_bytes("PNG")
        install(monkeypatch, "async", world, runtime)
        with Stubber(runtime) as stub:
            stub.add_response(
                "invoke_endpoint_async",
                {"InferenceId": "x", "OutputLocation": OUTPUT, "FailureLocation": FAILURE},
                {
                    "EndpointName": ENDPOINT,
                    "InputLocation": stub_any_png_location(),
                    "ContentType": "image/png",
                    "Accept": "application/json",
                    "InferenceId": stub_any(),
                },
            )
            status, _, body = call(event(image))
        assert status == 202
        request_id = body["request_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        assert body["result"] == f"results/{request_id}"
        assert body["status"] == "queued"
        assert body["model"] == MODEL
        folder = f"async-input/{request_id}/"
        stored = world.get_object(Bucket=INFERENCE, Key=f"{folder}image.png")
        assert stored["Body"].read() == image
        record = json.loads(
            world.get_object(Bucket=INFERENCE, Key=f"{folder}request.json")["Body"].read()
        )
        assert record["output_location"] == OUTPUT
        assert record["failure_location"] == FAILURE
        assert record["labels_uri"] == f"s3://{ARTIFACTS}/{LABELS_KEY}"
        assert record["top_k"] == 5

    def test_get_waits_then_answers_with_the_queued_models_labels(
        self, monkeypatch, world, runtime
    ):
        request_id = _queue(monkeypatch, world, runtime, image_bytes())["request_id"]
        status, headers, body = call(result_event(request_id))
        assert (status, body["status"], headers["Retry-After"]) == (202, "queued", "5")
        world.put_object(
            Bucket=INFERENCE, Key="async-output/abc.out", Body=json.dumps(probabilities())
        )
        status, _, body = call(result_event(request_id))
        assert status == 200
        assert body["label"] == "Banana"
        assert body["request_id"] == request_id
        assert len(body["top_k"]) == 2  # the top_k of the POST
        assert body["sentence"] == "We are 97.1% confident this looks like a Banana."

    def test_a_failed_inference_is_a_502_with_sagemakers_text(self, monkeypatch, world, runtime):
        request_id = _queue(monkeypatch, world, runtime, image_bytes())["request_id"]
        world.put_object(
            Bucket=INFERENCE, Key="async-failures/abc-error.out", Body=b"unable to decode image"
        )
        status, _, body = call(result_event(request_id))
        assert status == 502
        assert body["error"] == "model_error"
        assert "unable to decode image" in body["message"]

    def test_an_answer_that_does_not_fit_the_labels_is_a_502(self, monkeypatch, world, runtime):
        request_id = _queue(monkeypatch, world, runtime, image_bytes())["request_id"]
        world.put_object(Bucket=INFERENCE, Key="async-output/abc.out", Body=b"[0.5, 0.5]")
        status, _, body = call(result_event(request_id))
        assert status == 502
        assert body["error"] == "model_label_mismatch"

    @pytest.mark.parametrize(
        "case",
        [("0" * 32, 404, "unknown_request"), ("../etc", 400, "invalid_request_id")],
    )
    def test_unknown_and_malformed_ids(self, monkeypatch, world, runtime, case):
        request_id, status, code = case
        install(monkeypatch, "async", world, runtime)
        got, _, body = call(result_event(request_id))
        assert (got, body["error"]) == (status, code)

    def test_a_throttled_endpoint_is_a_retryable_503(self, monkeypatch, world, runtime):
        install(monkeypatch, "async", world, runtime)
        with Stubber(runtime) as stub:
            stub.add_client_error("invoke_endpoint_async", "ThrottlingException", "slow down")
            status, headers, body = call(event(image_bytes()))
        assert status == 503
        assert body["retryable"] is True
        assert "Retry-After" in headers

    def test_storage_trouble_is_a_retryable_503(self, monkeypatch, world, runtime):
        install(monkeypatch, "async", world, runtime)
        monkeypatch.setenv("INFERENCE_BUCKET", "no-such-bucket")
        handler_module._classifier = Classifier(settings(), runtime=runtime, s3=world)
        status, _, body = call(event(image_bytes()))
        assert status == 503
        assert body["error"] == "storage_unavailable"


def stub_any():
    from botocore.stub import ANY

    return ANY


class _PngLocation(str):
    """Equal to any s3://<inference>/async-input/<32 hex>/image.png (Stubber compares with ==)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(
            re.fullmatch(rf"s3://{INFERENCE}/async-input/[0-9a-f]{{32}}/image\.png", other)
        )

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


def stub_any_png_location() -> str:
    return _PngLocation("s3://inference-bucket/async-input/<id>/image.png")
