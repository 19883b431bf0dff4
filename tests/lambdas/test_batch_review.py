"""Batch decode's review queue and confidence metrics (issue 13)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from batch_decode.review import BatchReview, item_id
from botocore.exceptions import ClientError
from moto import mock_aws

from grocery_common import confidence_metrics as cm
from grocery_common.review_queue import ReviewItem
from tests.lambdas.emf import emf_objects, metric_values, per_label

BUCKET = "inference"
BATCH = "20261125-132557-0123456789ab"
NOW = dt.datetime(2026, 11, 25, 13, 40, tzinfo=dt.UTC)


def row(key: str, status: str = "classified", guesses=()) -> dict:
    top_k = [
        {"label": label, "class_id": i, "confidence": c} for i, (label, c) in enumerate(guesses)
    ]
    return {
        "image": f"s3://{BUCKET}/{key}",
        "status": status,
        "label": top_k[0]["label"] if top_k else None,
        "class_id": 0 if top_k else None,
        "confidence": top_k[0]["confidence"] if top_k else None,
        "top_k": top_k,
        "model": "grocery-classifier-v7",
        "batch_id": BATCH,
        "reason": None if top_k else "r",
    }


ROWS = [
    row("incoming/sure.jpg", guesses=[("Banana", 0.93), ("Apple", 0.05)]),
    row("incoming/unsure.jpg", guesses=[("Apple", 0.42), ("Pear", 0.40), ("Banana", 0.18)]),
    row("incoming/at-threshold.jpg", guesses=[("Pear", 0.6), ("Apple", 0.4)]),
    row("incoming/also unsure.png", guesses=[("Apple", 0.3), ("Banana", 0.3)]),
    row("incoming/failed.jpg", status="failed"),
    row("incoming/notes.txt", status="skipped"),
]


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n", encoding="utf-8")
    return str(path)


def review(s3) -> BatchReview:
    return BatchReview(
        s3,
        batch_id=BATCH,
        model_name="grocery-classifier-v7",
        threshold=0.6,
        namespace="Test-Predictions",
        clock=lambda: NOW,
    )


def queued(s3) -> dict[str, ReviewItem]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="review/queue/").get("Contents", [])
    return {
        o["Key"]: ReviewItem.from_json(s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())
        for o in listing
    }


def test_unsure_classified_rows_are_queued_pointing_at_the_upload_in_place(s3, results):
    summary = review(s3).record(results)
    assert summary.to_dict() == {"unsure": 2, "queued": 2, "already_decided": 0, "failed": 0}
    items = queued(s3)
    unsure_id = item_id(BATCH, "incoming/unsure.jpg")
    assert sorted(items) == sorted(
        f"review/queue/{item_id(BATCH, k)}.json"
        for k in ("incoming/unsure.jpg", "incoming/also unsure.png")
    )
    item = items[f"review/queue/{unsure_id}.json"]
    assert (item.bucket, item.key, item.source) == (BUCKET, "incoming/unsure.jpg", "batch")
    assert (item.model_version, item.time) == ("7", "2026-11-25T13:40:00Z")
    assert [(g.label, g.confidence) for g in item.top_k] == [
        ("Apple", 0.42),
        ("Pear", 0.40),
        ("Banana", 0.18),
    ]
    assert unsure_id.startswith(f"b-{BATCH}-")
    # Nothing is copied: the only objects written are the two items.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == sorted(items)


def test_a_rerun_writes_the_same_ids_and_skips_decided_items(s3, results):
    review(s3).record(results)
    decided = item_id(BATCH, "incoming/unsure.jpg")
    # A reviewer decided one: the page deletes the queue object and writes the decision.
    s3.delete_object(Bucket=BUCKET, Key=f"review/queue/{decided}.json")
    s3.put_object(Bucket=BUCKET, Key=f"review/decisions/{decided}.json", Body=b"{}")
    summary = review(s3).record(results)
    assert summary.to_dict() == {"unsure": 2, "queued": 1, "already_decided": 1, "failed": 0}
    assert list(queued(s3)) == [f"review/queue/{item_id(BATCH, 'incoming/also unsure.png')}.json"]


def test_s3_failures_are_counted_and_never_raise(s3, results, caplog, capsys):
    broken = review(s3)

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    broken.s3 = type("S3", (), {"put_object": staticmethod(refuse), "head_object": s3.head_object})
    summary = broken.record(results)
    assert summary.to_dict() == {"unsure": 2, "queued": 0, "already_decided": 0, "failed": 2}
    assert "could not queue an unsure prediction for review" in caplog.text
    objects = emf_objects(capsys.readouterr().out)
    assert metric_values(objects, cm.REVIEW_QUEUE_FAILURES, Source="batch") == [2.0]


def test_a_refused_decision_check_counts_as_a_failure(s3, results):
    broken = review(s3)

    def forbidden(**kwargs):
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    broken.s3 = type(
        "S3", (), {"put_object": s3.put_object, "head_object": staticmethod(forbidden)}
    )
    assert broken.record(results).failed == 2


def test_the_batch_publishes_its_confidence_metrics(s3, results, capsys):
    review(s3).record(results)
    objects = emf_objects(capsys.readouterr().out)
    # Classified rows only: failed and skipped ones have no confidence.
    assert metric_values(objects, cm.PREDICTIONS, ModelVersion="7", Source="batch") == [4.0]
    assert metric_values(objects, cm.TOP1_CONFIDENCE, ModelVersion="7") == [0.93, 0.42, 0.6, 0.3]
    assert metric_values(objects, cm.BELOW_REVIEW_THRESHOLD, Source="batch") == [0, 1, 0, 1]
    assert metric_values(objects, cm.QUEUED_FOR_REVIEW, Source="batch") == [2.0]
    assert per_label(objects, cm.CLASS_PREDICTIONS) == {"Apple": 2.0, "Banana": 1.0, "Pear": 1.0}


def test_metrics_failure_does_not_fail_the_batch(s3, results, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("emf broke")

    monkeypatch.setattr(cm, "publish", broken)
    assert review(s3).record(results).queued == 2
    assert "could not publish the prediction metrics" in caplog.text


def test_settings_from_the_environment(s3):
    built = BatchReview.from_environment(
        s3,
        batch_id=BATCH,
        model_name="grocery-model-1",
        env={"REVIEW_THRESHOLD": "0.75", "PREDICTION_METRICS_NAMESPACE": "Shop-Predictions"},
    )
    assert (built.threshold, built.namespace, built.version) == (
        0.75,
        "Shop-Predictions",
        "grocery-model-1",
    )
