"""The classify API's review queue and confidence metrics (issue 13).

Unsure answers (top-1 below the threshold) are queued with their photo; sure ones are
not; a failing S3 never fails the answer; every answer publishes EMF metrics.
"""

from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from classify_api import handler as handler_module
from classify_api.handler import Classifier, Settings, handler
from classify_api.review import REVIEW_S3_CONFIG, PredictionRecorder, image_key
from moto import mock_aws
from PIL import Image

from grocery_common import confidence_metrics as cm
from grocery_common.review_queue import ReviewItem
from tests.lambdas.emf import dimension_sets, emf_objects, metric_values, namespaces, per_label

LABELS = [f"Grocery-{i:02d}" for i in range(81)]
LABELS[7] = "Banana"
BUCKET = "inference-bucket"
MODEL = "grocery-classifier-v3"
NAMESPACE = "Grocery-Predictions-Test"
NOW = dt.datetime(2026, 12, 3, 14, 5, 9, tzinfo=dt.UTC)


def probabilities(best: int, confidence: float) -> list[float]:
    rest = (1.0 - confidence) / 80
    return [confidence if i == best else rest for i in range(81)]


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def api_event(body: bytes, top_k: str | None = None) -> dict:
    import base64

    return {
        "httpMethod": "POST",
        "path": "/classify",
        "headers": {"Content-Type": "image/jpeg"},
        "queryStringParameters": {"top_k": top_k} if top_k else None,
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
        "requestContext": {
            "requestId": "req-9",
            "identity": {"userArn": "arn:aws:iam::123456789012:user/alice", "sourceIp": "1.2.3.4"},
        },
    }


class Context:
    function_name = "classify"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:classify"
    aws_request_id = "req-9"


class StaticLabels:
    def get(self) -> list[str]:
        return LABELS


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def install(monkeypatch, s3, *, keep_images=True, bucket=BUCKET, threshold=0.6):
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    recorder = PredictionRecorder(
        s3,
        bucket=bucket,
        threshold=threshold,
        keep_images=keep_images,
        namespace=NAMESPACE,
        clock=lambda: NOW,
        new_id=lambda: "0123456789abcdef",
    )
    settings = Settings(endpoint_name="ep", model_name=MODEL, labels_uri="s3://b/labels.json")
    classifier = Classifier(settings, runtime=runtime, s3=None, recorder=recorder)
    classifier.labels = StaticLabels()
    monkeypatch.setattr(handler_module, "_classifier", classifier)
    return runtime


def classify(runtime, answer: list[float], top_k: str | None = None) -> dict:
    raw = json.dumps(answer).encode()
    with Stubber(runtime) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"},
        )
        response = handler(api_event(jpeg(), top_k), Context())
    assert response["statusCode"] == 200
    return json.loads(response["body"])


def keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


ITEM_ID = "a-20261203-140509-0123456789abcdef"


class TestQueue:
    def test_unsure_answer_is_queued_with_its_photo_and_nothing_about_the_caller(
        self, monkeypatch, s3
    ):
        runtime = install(monkeypatch, s3)
        body = classify(runtime, probabilities(12, 0.41), top_k="1")
        assert body["queued_for_review"] is True
        image = f"review/images/2026/12/03/{ITEM_ID}.jpg"
        assert keys(s3) == [image, f"review/queue/{ITEM_ID}.json"]
        photo = s3.get_object(Bucket=BUCKET, Key=image)
        assert photo["Body"].read() == jpeg()
        assert photo["ContentType"] == "image/jpeg"
        raw = s3.get_object(Bucket=BUCKET, Key=f"review/queue/{ITEM_ID}.json")["Body"].read()
        item = ReviewItem.from_json(raw)
        assert (item.bucket, item.key, item.source) == (BUCKET, image, "api")
        assert (item.model_version, item.time) == ("3", "2026-12-03T14:05:09Z")
        # The top 5 for the reviewer, whatever top_k the caller asked for.
        assert [g.label for g in item.top_k] == [
            "Grocery-12",
            "Grocery-00",
            "Grocery-01",
            "Grocery-02",
            "Grocery-03",
        ]
        assert item.confidence == pytest.approx(0.41)
        # Exactly the contract's fields: no request id, caller ARN or IP.
        assert set(json.loads(raw)) == {"id", "image", "top_k", "model_version", "time", "source"}
        assert "alice" not in raw.decode()
        assert "1.2.3.4" not in raw.decode()

    @pytest.mark.parametrize("confidence", [0.6, 0.97])
    def test_sure_answer_at_or_above_the_threshold_is_not_queued(self, monkeypatch, s3, confidence):
        runtime = install(monkeypatch, s3)
        assert classify(runtime, probabilities(7, confidence))["queued_for_review"] is False
        assert keys(s3) == []

    def test_keep_images_off_queues_nothing_for_the_api(self, monkeypatch, s3, capsys):
        runtime = install(monkeypatch, s3, keep_images=False)
        assert classify(runtime, probabilities(12, 0.2))["queued_for_review"] is False
        assert keys(s3) == []
        objects = emf_objects(capsys.readouterr().out)
        # Still counted as unsure; not a queue failure.
        assert metric_values(objects, cm.BELOW_REVIEW_THRESHOLD, ModelVersion="3") == [1.0]
        assert metric_values(objects, cm.REVIEW_QUEUE_FAILURES, ModelVersion="3") == [0.0]

    def test_s3_failure_does_not_fail_the_answer_and_is_counted(
        self, monkeypatch, s3, capsys, caplog
    ):
        runtime = install(monkeypatch, s3, bucket="no-such-bucket")
        body = classify(runtime, probabilities(12, 0.3))
        assert (body["label"], body["queued_for_review"]) == ("Grocery-12", False)
        assert "could not queue an unsure prediction for review" in caplog.text
        objects = emf_objects(capsys.readouterr().out)
        assert metric_values(objects, cm.REVIEW_QUEUE_FAILURES, Source="api") == [1.0]
        assert metric_values(objects, cm.QUEUED_FOR_REVIEW, Source="api") == [0.0]

    def test_metrics_failure_does_not_fail_the_answer(self, monkeypatch, s3, caplog):
        runtime = install(monkeypatch, s3)

        def broken(*args, **kwargs):
            raise RuntimeError("emf broke")

        monkeypatch.setattr(cm, "publish", broken)
        assert classify(runtime, probabilities(7, 0.9))["label"] == "Banana"
        assert "could not publish the prediction metrics" in caplog.text


class TestMetrics:
    def test_every_answer_publishes_confidence_and_class_per_version_and_source(
        self, monkeypatch, s3, capsys
    ):
        runtime = install(monkeypatch, s3)
        classify(runtime, probabilities(7, 0.9))
        classify(runtime, probabilities(12, 0.5))
        objects = emf_objects(capsys.readouterr().out)
        assert NAMESPACE in namespaces(objects)
        ours = [o for o in objects if o["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE]
        assert dimension_sets(ours, cm.TOP1_CONFIDENCE) == {(("ModelVersion",), ("Source",))}
        assert dimension_sets(ours, cm.CLASS_PREDICTIONS) == {(("ModelVersion", "Label"),)}
        assert all("service" not in o for o in ours)
        assert metric_values(ours, cm.TOP1_CONFIDENCE, ModelVersion="3", Source="api") == [
            pytest.approx(0.9),
            pytest.approx(0.5),
        ]
        assert metric_values(ours, cm.BELOW_REVIEW_THRESHOLD, ModelVersion="3") == [0.0, 1.0]
        assert metric_values(ours, cm.PREDICTIONS, Source="api") == [1.0, 1.0]
        assert metric_values(ours, cm.QUEUED_FOR_REVIEW, Source="api") == [0.0, 1.0]
        assert per_label(ours, cm.CLASS_PREDICTIONS) == {"Banana": 1.0, "Grocery-12": 1.0}


class TestUnits:
    @pytest.mark.parametrize(
        ("name", "version"),
        [
            ("grocery-classifier-v3", "3"),
            ("shop-classifier-v12", "12"),
            ("grocery-model-20260101", "grocery-model-20260101"),
            ("", "unknown"),
        ],
    )
    def test_model_version_of(self, name, version):
        assert cm.model_version_of(name) == version

    def test_png_key_and_unknown_type(self):
        assert image_key(NOW, "x", "image/png") == "review/images/2026/12/03/x.png"
        assert image_key(NOW, "x", "image/gif").endswith("x.bin")

    def test_from_environment(self, aws_credentials):
        env = {
            "REVIEW_BUCKET": BUCKET,
            "REVIEW_THRESHOLD": "0.45",
            "REVIEW_KEEP_IMAGES": "false",
            "PREDICTION_METRICS_NAMESPACE": "Shop-Predictions",
        }
        recorder = PredictionRecorder.from_environment(env)
        assert (recorder.bucket, recorder.threshold, recorder.keep_images) == (BUCKET, 0.45, False)
        assert recorder.namespace == "Shop-Predictions"
        assert not recorder.queues
        assert recorder.s3.meta.config.read_timeout == REVIEW_S3_CONFIG.read_timeout

    def test_without_a_bucket_nothing_is_queued(self):
        recorder = PredictionRecorder.from_environment({})
        assert (recorder.s3, recorder.queues, recorder.threshold) == (None, False, 0.6)
        assert recorder.namespace == cm.DEFAULT_NAMESPACE

    def test_big_tallies_are_split_into_objects_of_at_most_100_values(self, capsys):
        tally = cm.Tally(threshold=0.6)
        for i in range(250):
            tally.add("Banana" if i % 2 else "Apple", 0.5 if i < 50 else 0.9)
        cm.publish(tally, model_version="4", source="batch", namespace=NAMESPACE)
        objects = emf_objects(capsys.readouterr().out)
        values = metric_values(objects, cm.TOP1_CONFIDENCE, Source="batch")
        assert len(values) == 250
        assert all(len(o.get(cm.TOP1_CONFIDENCE, [])) <= 100 for o in objects)
        assert sum(metric_values(objects, cm.BELOW_REVIEW_THRESHOLD, ModelVersion="4")) == 50
        assert metric_values(objects, cm.PREDICTIONS, ModelVersion="4") == [250.0]
        assert per_label(objects, cm.CLASS_PREDICTIONS) == {"Apple": 125.0, "Banana": 125.0}

    def test_an_empty_tally_publishes_nothing(self, capsys):
        cm.publish(cm.Tally(threshold=0.6), model_version="4", source="batch", namespace="N")
        assert emf_objects(capsys.readouterr().out) == []
