"""`python -m grocery classify`: image preparation, the signed API call, the endpoint path."""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import boto3
import pytest
import requests
from botocore.stub import Stubber
from classify_api import handler as handler_module
from classify_api.handler import Classifier, Settings
from moto import mock_aws
from PIL import Image

import grocery.__main__ as cli
from grocery.classify import (
    API_MAX_IMAGE_BYTES,
    ApiClassifier,
    EndpointClassifier,
    api_region,
    prepare_image,
    run,
)
from grocery.errors import CommandError
from tests.lambdas.test_classify_api import (
    LABELS,
    LambdaContext,
    StaticLabels,
    answer,
    binary_safe_moto,  # noqa: F401 - fixture
    probabilities,
)

API_URL = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1/classify"
MODEL = "grocery-model-1"


def write_image(path: Path, fmt: str = "JPEG", size=(64, 48), noisy: bool = False) -> Path:
    image = Image.new("RGB", size, (240, 200, 40))
    if noisy:  # noise does not compress: a big file from a modest image
        rng = random.Random(7)
        image.putdata(
            [tuple(rng.randrange(256) for _ in range(3)) for _ in range(size[0] * size[1])]
        )
    image.save(path, format=fmt)
    return path


def args(*images: Path, **overrides) -> argparse.Namespace:
    values = {
        "images": list(images),
        "api": None,
        "endpoint": None,
        "top_k": 3,
        "labels": None,
        "prefix": "grocery",
        "json": False,
    }
    return argparse.Namespace(**{**values, **overrides})


@pytest.fixture
def session(aws_credentials):
    return boto3.Session(region_name="us-east-1")


class TestPrepareImage:
    def test_small_jpeg_and_png_are_sent_as_they_are(self, tmp_path):
        for fmt, content_type in (("JPEG", "image/jpeg"), ("PNG", "image/png")):
            path = write_image(tmp_path / f"photo.{fmt.lower()}", fmt)
            prepared = prepare_image(path, API_MAX_IMAGE_BYTES)
            assert prepared.body == path.read_bytes()
            assert (prepared.content_type, prepared.note) == (content_type, "")

    def test_over_the_limit_is_downscaled_below_it(self, tmp_path):
        path = write_image(tmp_path / "big.png", "PNG", size=(400, 300), noisy=True)
        limit = 40_000
        assert path.stat().st_size > limit
        prepared = prepare_image(path, limit)
        assert len(prepared.body) <= limit
        assert prepared.content_type == "image/jpeg"
        assert prepared.note.startswith("downscaled: 400x300")
        with Image.open(io.BytesIO(prepared.body)) as image:
            assert image.format == "JPEG"
            assert image.size[0] < 400
            assert image.size[0] / image.size[1] == pytest.approx(4 / 3, rel=0.02)

    def test_other_formats_are_converted_to_jpeg(self, tmp_path):
        path = write_image(tmp_path / "photo.bmp", "BMP")
        prepared = prepare_image(path, API_MAX_IMAGE_BYTES)
        assert prepared.content_type == "image/jpeg"
        assert prepared.body.startswith(b"\xff\xd8\xff")
        assert prepared.note.startswith("converted to JPEG: 64x48")

    def test_not_an_image(self, tmp_path):
        path = tmp_path / "notes.txt"
        path.write_text("a shopping list")
        with pytest.raises(CommandError, match=r"notes\.txt: not an image") as raised:
            prepare_image(path, API_MAX_IMAGE_BYTES)
        assert "send a JPEG or PNG" in str(raised.value)
        assert "BytesIO" not in str(raised.value)

    def test_heic_is_named_with_what_to_do(self, tmp_path):
        path = tmp_path / "photo.heic"
        path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
        with pytest.raises(CommandError, match=r"photo\.heic: .*convert them to JPEG"):
            prepare_image(path, API_MAX_IMAGE_BYTES)

    def test_missing_file(self, tmp_path):
        with pytest.raises(CommandError, match=r"missing\.jpg: cannot read it"):
            prepare_image(tmp_path / "missing.jpg", API_MAX_IMAGE_BYTES)


class HandlerBehindApiGateway:
    """A fake HTTPS transport: checks the SigV4 signature's shape, then runs the real handler
    on the event API Gateway would build from the request."""

    def __init__(self, monkeypatch, labels=LABELS) -> None:
        self.runtime = boto3.client("sagemaker-runtime", region_name="eu-west-1")
        classifier = Classifier(
            Settings(endpoint_name="grocery-classifier", model_name=MODEL, labels_uri="s3://b/k"),
            runtime=self.runtime,
            s3=None,
        )
        classifier.labels = StaticLabels(labels)
        monkeypatch.setattr(handler_module, "_classifier", classifier)
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # keep stdout the command's
        self.requests: list[tuple[str, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]):
        self.requests.append((url, headers))
        authorization = headers["Authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=")
        assert "/eu-west-1/execute-api/aws4_request" in authorization
        assert "X-Amz-Date" in headers
        parsed = urlparse(url)
        event = {
            "httpMethod": "POST",
            "path": parsed.path,
            "headers": headers,
            "queryStringParameters": dict(parse_qsl(parsed.query)) or None,
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
        response = handler_module.handler(event, LambdaContext())
        return response["statusCode"], response["headers"], response["body"].encode()


class TestThroughTheApi:
    def test_prints_the_sentence_and_the_top_k(self, tmp_path, session, monkeypatch, capsys):
        transport = HandlerBehindApiGateway(monkeypatch)
        image = write_image(tmp_path / "banana.jpg")
        classifier = ApiClassifier(API_URL, session=session, send=transport)
        with Stubber(transport.runtime) as stub:
            stub.add_response("invoke_endpoint", answer(probabilities()))
            code = run(args(image, api=API_URL), session=session, classifier=classifier)
        out, err = capsys.readouterr()
        assert code == 0
        # The in-process handler may print its cold-start metric (EMF): not the command's output.
        lines = [line for line in out.splitlines() if not line.startswith('{"_aws"')]
        assert lines[0] == f"{image}: We are 97.1% confident this looks like a Banana."
        assert lines[1].split() == ["1.", "Banana", "97.1%"]
        assert len(lines) == 4  # the sentence + top 3
        assert f"classified by model {MODEL} via API {API_URL}" in err
        ((url, headers),) = transport.requests
        assert url == f"{API_URL}?top_k=3"
        assert headers["Content-Type"] == "image/jpeg"

    def test_json_lines(self, tmp_path, session, monkeypatch, capsys):
        transport = HandlerBehindApiGateway(monkeypatch)
        image = write_image(tmp_path / "banana.jpg")
        classifier = ApiClassifier(API_URL, session=session, send=transport)
        with Stubber(transport.runtime) as stub:
            stub.add_response("invoke_endpoint", answer(probabilities()))
            run(args(image, api=API_URL, json=True), session=session, classifier=classifier)
        (line,) = capsys.readouterr().out.splitlines()
        row = json.loads(line)
        assert (row["image"], row["label"], row["class_id"], row["model"]) == (
            str(image),
            "Banana",
            7,
            MODEL,
        )
        assert len(row["top_k"]) == 3

    def test_a_refused_image_does_not_stop_the_others(self, tmp_path, session, monkeypatch, capsys):
        transport = HandlerBehindApiGateway(monkeypatch, labels=LABELS[:80])
        good = write_image(tmp_path / "a.jpg")
        text = tmp_path / "b.txt"
        text.write_text("not a photo")
        classifier = ApiClassifier(API_URL, session=session, send=transport)
        with Stubber(transport.runtime) as stub:
            stub.add_response("invoke_endpoint", answer(probabilities()))
            code = run(args(text, good, api=API_URL), session=session, classifier=classifier)
        err = capsys.readouterr().err
        assert code == 1
        assert f"{text}: error: {text}: not an image" in err
        assert "the API answered 502: the model's answer cannot be decoded" in err
        assert "0 of 2 image(s) classified" in err

    def test_retries_a_busy_endpoint_after_retry_after(self, tmp_path, session):
        responses = [
            (503, {"Retry-After": "2"}, b'{"error": "endpoint_busy", "retryable": true}'),
            (200, {}, json.dumps({"label": "Banana"}).encode()),
        ]
        slept = []
        classifier = ApiClassifier(
            API_URL, session=session, send=lambda *_: responses.pop(0), sleep=slept.append
        )
        prepared = prepare_image(write_image(tmp_path / "a.jpg"), API_MAX_IMAGE_BYTES)
        assert classifier.classify(prepared, 3) == {"label": "Banana"}
        assert slept == [2.0]

    def test_gives_up_after_two_retries(self, tmp_path, session):
        busy = (429, {}, b'{"message": "too many requests"}')
        slept = []
        classifier = ApiClassifier(
            API_URL, session=session, send=lambda *_: busy, sleep=slept.append
        )
        prepared = prepare_image(write_image(tmp_path / "a.jpg"), API_MAX_IMAGE_BYTES)
        with pytest.raises(CommandError, match="answered 429: too many requests"):
            classifier.classify(prepared, 3)
        assert slept == [1.0, 1.0]

    def test_no_approved_model_is_not_retried(self, tmp_path, session, monkeypatch):
        transport = HandlerBehindApiGateway(monkeypatch)
        handler_module._classifier.settings = Settings(
            endpoint_name="none", model_name="none", labels_uri="none"
        )
        classifier = ApiClassifier(API_URL, session=session, send=transport)
        prepared = prepare_image(write_image(tmp_path / "a.jpg"), API_MAX_IMAGE_BYTES)
        with pytest.raises(CommandError, match="503: no approved model yet"):
            classifier.classify(prepared, 3)
        assert len(transport.requests) == 1

    def test_default_url_is_the_stack_output(self, tmp_path, session, monkeypatch):
        seen = {}

        def fake_output(stack, key, *, session):
            seen["args"] = (stack, key)
            return API_URL

        monkeypatch.setattr("grocery.classify.stack_output", fake_output)
        from grocery.classify import build_classifier

        classifier = build_classifier(args(tmp_path / "a.jpg"), session)
        assert seen["args"] == ("Grocery-Serving", "ApiUrl")
        assert (classifier.url, classifier.region) == (API_URL, "eu-west-1")

    def test_region_comes_from_the_url(self):
        assert api_region(API_URL, None) == "eu-west-1"
        assert api_region("https://api.example.com/classify", "us-east-2") == "us-east-2"
        with pytest.raises(CommandError, match="cannot tell the region"):
            api_region("https://api.example.com/classify", None)

    def test_plain_http_is_refused(self, session):
        with pytest.raises(CommandError, match="https://"):
            ApiClassifier("http://example.com/classify", session=session)


@pytest.fixture
def deployed(session, binary_safe_moto):  # noqa: F811 - fixture from the handler tests
    with mock_aws():
        s3 = session.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key="m/labels.json", Body=json.dumps(LABELS).encode())
        ssm = session.client("ssm")
        ssm.put_parameter(Name="/grocery/approved-model/model-name", Value=MODEL, Type="String")
        ssm.put_parameter(
            Name="/grocery/approved-model/labels-uri",
            Value="s3://artifacts/m/labels.json",
            Type="String",
        )
        yield ssm


def queue_endpoint_answer(answer_: list[float]) -> None:
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": json.dumps(answer_), "ContentType": "application/json"}]},
        timeout=5,
    )


class TestStraightAtTheEndpoint:
    def test_uses_the_approved_models_labels(self, tmp_path, session, deployed, capsys):
        queue_endpoint_answer(probabilities(best=7, confidence=0.5))
        image = write_image(tmp_path / "banana.png", "PNG")
        code = run(args(image, endpoint="grocery-classifier", top_k=2), session=session)
        out, err = capsys.readouterr()
        assert code == 0
        assert out.splitlines()[0] == f"{image}: We are 50.0% confident this looks like a Banana."
        assert len(out.splitlines()) == 3
        assert f"by model {MODEL} via endpoint grocery-classifier" in err

    def test_labels_from_a_local_file(self, tmp_path, session, deployed, capsys):
        queue_endpoint_answer(probabilities(best=0))
        labels = tmp_path / "labels.json"
        labels.write_text(json.dumps(["Apple", *LABELS[1:]]))
        image = write_image(tmp_path / "apple.jpg")
        code = run(args(image, endpoint="grocery-classifier", labels=str(labels)), session=session)
        assert code == 0
        assert "looks like a Apple." in capsys.readouterr().out

    def test_no_approved_model_yet(self, tmp_path, session, deployed):
        deployed.put_parameter(
            Name="/grocery/approved-model/labels-uri", Value="none", Type="String", Overwrite=True
        )
        image = write_image(tmp_path / "a.jpg")
        with pytest.raises(CommandError, match=r"no approved model yet.*or pass --labels"):
            run(args(image, endpoint="grocery-classifier"), session=session)

    def test_broken_labels_file(self, tmp_path, session, deployed):
        labels = tmp_path / "labels.json"
        labels.write_text("{")
        image = write_image(tmp_path / "a.jpg")
        with pytest.raises(CommandError, match=r"labels\.json is not valid JSON"):
            run(args(image, endpoint="grocery-classifier", labels=str(labels)), session=session)


class TestCommandLine:
    def test_top_k_out_of_range_is_a_one_line_error(self, tmp_path, capsys):
        code = cli.main(["classify", str(tmp_path / "a.jpg"), "--top-k", "0"])
        assert code == 2
        assert capsys.readouterr().err == "error: --top-k must be from 1 to 20, got 0\n"

    def test_labels_without_endpoint(self, tmp_path, session):
        with pytest.raises(CommandError, match="--labels applies to --endpoint only"):
            run(args(tmp_path / "a.jpg", api=API_URL, labels="labels.json"), session=session)

    def test_api_and_endpoint_exclude_each_other(self, capsys):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(
                ["classify", "a.jpg", "--api", API_URL, "--endpoint", "e"]
            )


class TestStopsEarly:
    """Local mistakes before AWS is reached; account-wide errors once, not once per image."""

    @pytest.fixture
    def no_credentials(self, monkeypatch, tmp_path):
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_REGION", "eu-west-1")

    def test_a_missing_image_is_refused_before_aws(self, tmp_path, monkeypatch, capsys):
        def no_aws(*_args, **_kwargs):
            raise AssertionError("AWS reached")

        monkeypatch.setattr("grocery.classify.build_classifier", no_aws)
        good = write_image(tmp_path / "a.jpg")
        code = cli.main(["classify", str(good), "/nonexistent.jpg", "--endpoint", "ep"])
        assert code == 2
        assert capsys.readouterr().err == (
            "error: no such image file: /nonexistent.jpg (1 of 2); check the paths\n"
        )

    def test_a_missing_labels_file_is_refused_before_aws(self, tmp_path, monkeypatch, capsys):
        monkeypatch.setattr("grocery.classify.build_classifier", None)
        image = write_image(tmp_path / "a.jpg")
        code = cli.main(["classify", str(image), "--endpoint", "ep", "--labels", "nope.json"])
        assert code == 2
        assert "--labels nope.json: no such file" in capsys.readouterr().err

    @pytest.mark.parametrize("target", [["--endpoint", "ep", "--labels", "L"], []])
    def test_no_credentials_is_one_line_for_many_images(
        self, target, tmp_path, no_credentials, capsys
    ):
        labels = tmp_path / "labels.json"
        labels.write_text(json.dumps(LABELS))
        images = [str(write_image(tmp_path / f"{name}.jpg")) for name in "abc"]
        target = [str(labels) if arg == "L" else arg for arg in target]
        assert cli.main(["classify", *images, *target]) == 2
        err = capsys.readouterr().err
        assert err == (
            "error: Unable to locate credentials: set AWS_REGION (or AWS_DEFAULT_REGION) and AWS "
            "credentials (aws configure, or AWS_PROFILE) for the account the stacks are "
            "deployed in.\n"
        )

    @pytest.mark.parametrize(
        "refusal",
        [
            ("ValidationError", "Endpoint ep of account 123456789012 not found.", "--endpoint"),
            ("ExpiredTokenException", "The security token included in the request is expired", ""),
        ],
    )
    def test_an_account_wide_endpoint_error_stops_at_the_first_image(
        self, refusal, tmp_path, session, capsys
    ):
        code, message, expected = refusal
        classifier = EndpointClassifier("ep", labels=LABELS, model=MODEL, session=session)
        images = [write_image(tmp_path / f"{name}.jpg") for name in "abc"]
        with Stubber(classifier.runtime) as stub:
            stub.add_client_error("invoke_endpoint", code, message)
            with pytest.raises(CommandError, match=expected or "AWS refused the call") as error:
                run(args(*images, endpoint="ep"), session=session, classifier=classifier)
            stub.assert_no_pending_responses()
        assert message in str(error.value)
        assert capsys.readouterr().err == ""  # no per-image error lines

    def test_a_model_error_is_per_image(self, tmp_path, session, capsys):
        classifier = EndpointClassifier("ep", labels=LABELS, model=MODEL, session=session)
        images = [write_image(tmp_path / f"{name}.jpg") for name in "ab"]
        with Stubber(classifier.runtime) as stub:
            for _ in images:
                stub.add_client_error("invoke_endpoint", "ModelError", "cannot decode the image")
            assert run(args(*images, endpoint="ep"), session=session, classifier=classifier) == 1
        err = capsys.readouterr().err
        assert err.count("the endpoint refused it: cannot decode the image") == 2
        assert "0 of 2 image(s) classified" in err

    @pytest.mark.parametrize("status", [403, 404])
    def test_an_api_refusal_of_the_caller_stops_at_the_first_image(
        self, status, tmp_path, session, capsys
    ):
        sent = []

        def send(url, body, headers):
            sent.append(url)
            return status, {}, b'{"message": "Forbidden"}'

        classifier = ApiClassifier(API_URL, session=session, send=send)
        images = [write_image(tmp_path / f"{name}.jpg") for name in "abc"]
        with pytest.raises(CommandError, match=f"the API answered {status}: Forbidden"):
            run(args(*images, api=API_URL), session=session, classifier=classifier)
        assert len(sent) == 1
        assert capsys.readouterr().err == ""
