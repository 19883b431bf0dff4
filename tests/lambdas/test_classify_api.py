"""The classify Lambda: every bad input is a clear 4xx, endpoint trouble a retryable 5xx.

Endpoint answers are in the algorithm's real format: a JSON array of 81 probabilities.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import boto3
import pytest
import requests
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from classify_api import handler as handler_module
from classify_api.handler import Classifier, Settings, handler
from classify_api.request import ENDPOINT_MAX_BYTES, MAX_TOP_K
from moto import mock_aws
from PIL import Image

NUM_CLASSES = 81
LABELS = [f"Grocery-{i:02d}" for i in range(NUM_CLASSES)]
LABELS[7] = "Banana"
ENDPOINT = "grocery-classifier"
MODEL = "grocery-model-20260101"
BUCKET = "artifacts-bucket"
LABELS_KEY = "models/grocery-model-20260101/labels.json"


def probabilities(best: int = 7, confidence: float = 0.971) -> list[float]:
    rest = (1.0 - confidence) / (NUM_CLASSES - 1)
    return [confidence if i == best else rest for i in range(NUM_CLASSES)]


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (250, 220, 50)).save(buffer, format=fmt)
    return buffer.getvalue()


def event(
    body: bytes | None = None,
    *,
    content_type: str | None = "image/jpeg",
    top_k: str | None = None,
    base64_encoded: bool = True,
) -> dict:
    """An API Gateway REST (Lambda proxy) event, as the binary media types deliver it."""
    if body is None:
        payload = None
    elif base64_encoded:
        payload = base64.b64encode(body).decode()
    else:
        payload = body.decode("latin-1")
    return {
        "resource": "/classify",
        "path": "/classify",
        "httpMethod": "POST",
        "headers": {"Content-Type": content_type} if content_type else {},
        "queryStringParameters": {"top_k": top_k} if top_k is not None else None,
        "body": payload,
        "isBase64Encoded": base64_encoded and body is not None,
        "requestContext": {"requestId": "req-1", "stage": "v1"},
    }


@dataclasses.dataclass
class LambdaContext:
    function_name: str = "classify"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:classify"
    aws_request_id: str = "req-1"


class StaticLabels:
    def __init__(self, labels: list[str]) -> None:
        self.labels = labels

    def get(self) -> list[str]:
        return self.labels


def settings(**overrides) -> Settings:
    values = {
        "endpoint_name": ENDPOINT,
        "model_name": MODEL,
        "labels_uri": f"s3://{BUCKET}/{LABELS_KEY}",
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(autouse=True)
def _quiet_metrics(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Grocery-Serving-Test")
    monkeypatch.setattr(handler_module, "_classifier", None)


@pytest.fixture
def runtime(aws_credentials):
    return boto3.client("sagemaker-runtime", region_name="us-east-1")


def install(monkeypatch, runtime, *, labels=LABELS, **setting_overrides) -> Classifier:
    classifier = Classifier(settings(**setting_overrides), runtime=runtime, s3=None)
    classifier.labels = StaticLabels(labels)
    monkeypatch.setattr(handler_module, "_classifier", classifier)
    return classifier


def answer(body: list[float] | str) -> dict:
    raw = (body if isinstance(body, str) else json.dumps(body)).encode()
    return {
        "Body": StreamingBody(io.BytesIO(raw), len(raw)),
        "ContentType": "application/json",
        "InvokedProductionVariant": "AllTraffic",
    }


def call(request: dict) -> tuple[int, dict, dict]:
    response = handler(request, LambdaContext())
    return response["statusCode"], response["headers"], json.loads(response["body"])


class TestClassifies:
    def test_label_confidence_top_k_and_model(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        image = image_bytes()
        with Stubber(runtime) as stub:
            stub.add_response(
                "invoke_endpoint",
                answer(probabilities()),
                {
                    "EndpointName": ENDPOINT,
                    "Body": image,
                    "ContentType": "image/jpeg",
                    "Accept": "application/json",
                },
            )
            status, headers, body = call(event(image, top_k="3"))
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert (body["label"], body["class_id"]) == ("Banana", 7)
        assert body["confidence"] == pytest.approx(0.971)
        assert body["sentence"] == "We are 97.1% confident this looks like a Banana."
        assert body["model"] == MODEL
        assert len(body["top_k"]) == 3
        assert body["top_k"][0] == {"label": "Banana", "class_id": 7, "confidence": 0.971}
        # The 80 others tie: the lower class ids come first.
        assert [guess["class_id"] for guess in body["top_k"][1:]] == [0, 1]

    def test_png_is_sent_as_png_whatever_the_declared_type(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        image = image_bytes("PNG")
        with Stubber(runtime) as stub:
            stub.add_response(
                "invoke_endpoint",
                answer(probabilities(best=3)),
                {
                    "EndpointName": ENDPOINT,
                    "Body": image,
                    "ContentType": "image/png",
                    "Accept": "application/json",
                },
            )
            status, _, body = call(event(image, content_type="application/octet-stream"))
        assert status == 200
        assert body["class_id"] == 3
        assert len(body["top_k"]) == 5  # the default

    def test_content_type_parameters_and_case_are_ignored(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        request = event(image_bytes())
        request["headers"] = {"content-type": "IMAGE/JPEG; charset=binary"}
        with Stubber(runtime) as stub:
            stub.add_response("invoke_endpoint", answer(probabilities()))
            status, _, _ = call(request)
        assert status == 200


class TestBadInput:
    """4xx with a JSON message; the endpoint is never called (the stubber has no responses)."""

    @pytest.mark.parametrize(
        ("request_", "status", "code", "fragment"),
        [
            (event(None), 400, "empty_body", "empty"),
            (event(b""), 400, "empty_body", "empty"),
            (event(b"GIF89a not what we take"), 400, "not_an_image", "not a JPEG or PNG"),
            (event(b"%PDF-1.7 ...", content_type="image/jpeg"), 400, "not_an_image", "JPEG or PNG"),
            (
                event(image_bytes(), content_type="text/plain"),
                415,
                "unsupported_content_type",
                "text/plain",
            ),
            (event(image_bytes(), content_type=None), 415, "unsupported_content_type", "(none)"),
            (
                event(image_bytes(), content_type="application/json"),
                415,
                "unsupported_content_type",
                "image/jpeg or image/png",
            ),
            (event(image_bytes(), top_k="0"), 400, "invalid_top_k", f"1 to {MAX_TOP_K}"),
            (event(image_bytes(), top_k=str(MAX_TOP_K + 1)), 400, "invalid_top_k", "top_k"),
            (event(image_bytes(), top_k="three"), 400, "invalid_top_k", "'three'"),
            (event(image_bytes(), top_k="-1"), 400, "invalid_top_k", "top_k"),
            (event(image_bytes(), top_k="\u00b3"), 400, "invalid_top_k", "top_k"),
        ],
        ids=[
            "no-body",
            "empty-body",
            "gif",
            "pdf-declared-jpeg",
            "text-plain",
            "no-content-type",
            "json",
            "top-k-zero",
            "top-k-too-big",
            "top-k-word",
            "top-k-negative",
            "top-k-superscript-digit",
        ],
    )
    def test_refused_with_a_clear_message(  # noqa: PLR0917 - parametrized
        self, monkeypatch, runtime, request_, status, code, fragment
    ):
        install(monkeypatch, runtime)
        with Stubber(runtime):
            got_status, headers, body = call(request_)
        assert (got_status, body["error"]) == (status, code)
        assert fragment in body["message"]
        assert body["retryable"] is False
        assert "Retry-After" not in headers
        assert "Traceback" not in json.dumps(body)

    def test_over_the_endpoint_payload_limit(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        big = b"\xff\xd8\xff\xe0" + b"\0" * ENDPOINT_MAX_BYTES
        with Stubber(runtime):
            status, _, body = call(event(big))
        assert (status, body["error"]) == (413, "payload_too_large")
        assert f"{ENDPOINT_MAX_BYTES:,}" in body["message"]

    def test_exactly_at_the_limit_is_accepted(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        at_limit = b"\xff\xd8\xff\xe0" + b"\0" * (ENDPOINT_MAX_BYTES - 4)
        with Stubber(runtime) as stub:
            stub.add_response("invoke_endpoint", answer(probabilities()))
            status, _, _ = call(event(at_limit))
        assert status == 200

    def test_broken_base64(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        request = event(image_bytes())
        request["body"] = "not base64!!"
        with Stubber(runtime):
            status, _, body = call(request)
        assert (status, body["error"]) == (400, "invalid_body")

    def test_corrupt_image_the_model_cannot_read_is_422(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        with Stubber(runtime) as stub:
            stub.add_client_error(
                "invoke_endpoint",
                service_error_code="ModelError",
                service_message="Received client error (400) from model",
                http_status_code=424,
                response_meta={},
                modeled_fields={"OriginalStatusCode": 400},
            )
            status, _, body = call(event(b"\xff\xd8\xff\xe0 truncated jpeg"))
        assert (status, body["error"]) == (422, "unreadable_image")


class TestEndpointTrouble:
    @pytest.mark.parametrize(
        ("code", "http_status", "status", "error", "retry_after"),
        [
            ("ThrottlingException", 400, 503, "endpoint_busy", "2"),
            ("ServiceUnavailable", 503, 503, "endpoint_busy", "2"),
            ("InternalFailure", 500, 502, "endpoint_error", None),
            ("AccessDeniedException", 403, 502, "endpoint_rejected", None),
        ],
    )
    def test_mapped_to_retryable_5xx(  # noqa: PLR0917 - parametrized
        self, monkeypatch, runtime, code, http_status, status, error, retry_after
    ):
        install(monkeypatch, runtime)
        with Stubber(runtime) as stub:
            for _ in range(2):  # the client may retry once
                stub.add_client_error(
                    "invoke_endpoint", service_error_code=code, http_status_code=http_status
                )
            got_status, headers, body = call(event(image_bytes()))
        assert (got_status, body["error"]) == (status, error)
        assert headers.get("Retry-After") == retry_after
        if status == 503 or code == "InternalFailure":
            assert body["retryable"] is True

    def test_endpoint_not_created_yet(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        with Stubber(runtime) as stub:
            stub.add_client_error(
                "invoke_endpoint",
                service_error_code="ValidationError",
                service_message=f"Endpoint {ENDPOINT} of account 123456789012 not found.",
                http_status_code=400,
            )
            status, headers, body = call(event(image_bytes()))
        assert (status, body["error"], headers["Retry-After"]) == (
            503,
            "endpoint_unavailable",
            "60",
        )
        assert "123456789012" not in body["message"]

    def test_model_server_error_is_502(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        with Stubber(runtime) as stub:
            stub.add_client_error(
                "invoke_endpoint",
                service_error_code="ModelError",
                http_status_code=424,
                modeled_fields={"OriginalStatusCode": 500},
            )
            status, _, body = call(event(image_bytes()))
        assert (status, body["error"], body["retryable"]) == (502, "model_error", True)

    def test_timeout_is_503_with_retry_after(self, monkeypatch):
        class SlowRuntime:
            def invoke_endpoint(self, **_):
                raise ReadTimeoutError(endpoint_url="https://runtime.sagemaker")

        install(monkeypatch, SlowRuntime())
        status, headers, body = call(event(image_bytes()))
        assert (status, body["error"], headers["Retry-After"]) == (503, "endpoint_timeout", "5")

    def test_label_count_mismatch_is_a_clear_502(self, monkeypatch, runtime):
        install(monkeypatch, runtime, labels=LABELS[:80])
        with Stubber(runtime) as stub:
            stub.add_response("invoke_endpoint", answer(probabilities()))
            status, _, body = call(event(image_bytes()))
        assert (status, body["error"]) == (502, "model_label_mismatch")
        assert "returned 81 probabilities but its label list has 80 labels" in body["message"]

    def test_answer_that_is_not_json_is_a_502(self, monkeypatch, runtime):
        install(monkeypatch, runtime)
        with Stubber(runtime) as stub:
            stub.add_response("invoke_endpoint", answer("<html>oops</html>"))
            status, _, body = call(event(image_bytes()))
        assert (status, body["error"]) == (502, "model_label_mismatch")

    def test_unexpected_bug_is_a_500_without_a_traceback(self, monkeypatch):
        class BrokenRuntime:
            def invoke_endpoint(self, **_):
                raise KeyError("Body")

        install(monkeypatch, BrokenRuntime())
        status, _, body = call(event(image_bytes()))
        assert (status, body["error"]) == (500, "internal_error")
        assert "KeyError" not in json.dumps(body)


class TestBeforeTheFirstApproval:
    @pytest.mark.parametrize("field", ["endpoint_name", "model_name", "labels_uri"])
    def test_no_approved_model_is_503_saying_what_to_do(self, monkeypatch, runtime, field):
        install(monkeypatch, runtime, **{field: "none"})
        with Stubber(runtime):
            status, headers, body = call(event(image_bytes()))
        assert (status, body["error"]) == (503, "no_approved_model")
        assert "run the training pipeline" in body["message"]
        assert "Retry-After" not in headers

    def test_bad_input_is_still_4xx(self, monkeypatch, runtime):
        install(monkeypatch, runtime, model_name="none")
        status, _, _ = call(event(b""))
        assert status == 400


@pytest.fixture
def binary_safe_moto(monkeypatch):
    """moto 5.2.5's sagemaker-runtime decodes request bodies as UTF-8, which a JPEG is not:
    keep the raw bytes and hand its result-matching code a text form of them."""
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    original = SageMakerRuntimeResponse.invoke_endpoint

    def invoke_endpoint(self):
        if isinstance(self.body, bytes):
            self.body = base64.b64encode(self.body).decode()
        return original(self)

    monkeypatch.setattr(SageMakerRuntimeResponse, "use_raw_body", True)
    monkeypatch.setattr(SageMakerRuntimeResponse, "invoke_endpoint", invoke_endpoint)


@pytest.fixture
def deployed(aws_credentials, monkeypatch, binary_safe_moto):
    """moto: labels.json in S3, the endpoint's answers queued, the handler built from env."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=LABELS_KEY, Body=json.dumps(LABELS).encode())
        for name, value in {
            "ENDPOINT_NAME": ENDPOINT,
            "MODEL_NAME": MODEL,
            "LABELS_URI": f"s3://{BUCKET}/{LABELS_KEY}",
        }.items():
            monkeypatch.setenv(name, value)
        yield s3


def queue_endpoint_answers(*answers: list[float]) -> None:
    response = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={
            "results": [{"Body": json.dumps(a), "ContentType": "application/json"} for a in answers]
        },
        timeout=5,
    )
    assert response.status_code == 201


class TestWithMoto:
    def test_cold_start_reads_labels_once_and_answers(self, deployed, monkeypatch):
        queue_endpoint_answers(probabilities(best=7), probabilities(best=12, confidence=0.6))
        status, _, first = call(event(image_bytes(size=(32, 32))))
        assert (status, first["label"], first["model"]) == (200, "Banana", MODEL)
        # The label list is cached: a changed object is not re-read by this environment.
        deployed.put_object(Bucket=BUCKET, Key=LABELS_KEY, Body=b"[]")
        status, _, second = call(event(image_bytes(size=(40, 40)), top_k="1"))
        assert (status, second["label"], len(second["top_k"])) == (200, "Grocery-12", 1)
        assert second["confidence"] == pytest.approx(0.6)

    def test_missing_labels_object_is_503_and_retried_next_time(self, deployed):
        deployed.delete_object(Bucket=BUCKET, Key=LABELS_KEY)
        status, headers, body = call(event(image_bytes()))
        assert (status, body["error"], headers["Retry-After"]) == (503, "labels_unavailable", "5")
        deployed.put_object(Bucket=BUCKET, Key=LABELS_KEY, Body=json.dumps(LABELS).encode())
        queue_endpoint_answers(probabilities())
        status, _, body = call(event(image_bytes()))
        assert (status, body["label"]) == (200, "Banana")

    def test_invalid_labels_object_is_502(self, deployed):
        deployed.put_object(Bucket=BUCKET, Key=LABELS_KEY, Body=b'{"not": "a list"}')
        status, _, body = call(event(image_bytes()))
        assert (status, body["error"]) == (502, "labels_invalid")

    def test_labels_uri_that_is_not_s3_is_502(self, deployed, monkeypatch):
        monkeypatch.setenv("LABELS_URI", "https://example.com/labels.json")
        status, _, body = call(event(image_bytes()))
        assert (status, body["error"]) == (502, "labels_invalid")
