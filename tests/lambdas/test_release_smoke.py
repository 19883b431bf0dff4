"""The serverless smoke request (lambdas/release_smoke) on moto's SageMaker Runtime: the
answers moto gives are queued through its API, as docs.getmoto.org describes for
sagemaker-runtime."""

from __future__ import annotations

import io
import json

import botocore.session
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.validate import ParamValidator
from moto import mock_aws
from PIL import Image
from release_smoke import handler as smoke

from tests.support.sagemaker_runtime import binary_bodies, queue_answers


@pytest.fixture
def runtime(aws_credentials):
    with mock_aws(), binary_bodies() as received:
        yield received


def test_the_smoke_image_is_a_tiny_valid_jpeg():
    data = smoke.SMOKE_IMAGE.read_bytes()
    assert len(data) < 1000
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.verify()


def test_a_good_answer_passes(runtime):
    queue_answers(json.dumps([0.7, 0.2, 0.1]))
    result = smoke.handler({"endpoint_name": "grocery-classifier", "classes": 3}, None)
    assert result == {"ok": True, "reason": "", "classes": 3, "answered": 3}
    assert runtime == [smoke.SMOKE_IMAGE.read_bytes()]  # the JPEG, byte for byte


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            json.dumps([0.5, 0.5]),
            "the model answered 2 probabilities, but the version has 3 labels",
        ),
        ("<html>oops</html>", "the model's output is not JSON"),
        (json.dumps([1.5, -0.3, 0.1]), "values outside 0..1"),
        (json.dumps({"error": "no"}), "no 'prediction' key"),
    ],
)
def test_a_bad_answer_fails_and_says_why(runtime, body, reason):
    queue_answers(body)
    result = smoke.handler({"endpoint_name": "grocery-classifier", "classes": 3}, None)
    assert result["ok"] is False
    assert reason in result["reason"]


class _Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def invoke_endpoint(self, **request):
        self.request = request
        raise self.error


def test_an_endpoint_error_is_an_answer_too():
    client = _Failing(
        ClientError(
            {"Error": {"Code": "ModelError", "Message": "Received server error (500)"}},
            "InvokeEndpoint",
        )
    )
    result = smoke.smoke(client, "grocery-classifier", 3)
    assert result == {
        "ok": False,
        "classes": 3,
        "answered": 0,
        "reason": "InvokeEndpoint failed: ModelError: Received server error (500)",
    }


def test_a_timeout_is_an_answer_too():
    client = _Failing(ReadTimeoutError(endpoint_url="https://runtime.sagemaker"))
    result = smoke.smoke(client, "grocery-classifier", 3)
    assert result["ok"] is False
    assert result["reason"].startswith("InvokeEndpoint failed: Read timeout")


def test_the_request_is_valid_for_sagemaker_runtime():
    client = _Failing(ClientError({"Error": {}}, "InvokeEndpoint"))
    assert (
        smoke.smoke(client, "grocery-classifier", 3)["reason"] == "InvokeEndpoint failed: error: "
    )
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = model.operation_model("InvokeEndpoint").input_shape
    report = ParamValidator().validate(client.request, shape)
    assert not report.has_errors(), report.generate_report()
    assert client.request["ContentType"] == "image/jpeg"
    assert client.request["Body"] == smoke.SMOKE_IMAGE.read_bytes()
