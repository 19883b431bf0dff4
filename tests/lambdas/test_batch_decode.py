"""The batch decode step: matching outputs to images, one row per object, bounded and parallel."""

from __future__ import annotations

import csv
import json

import boto3
import pytest
from batch_decode import handler as decode_handler
from batch_decode.decoding import (
    DELETED_BEFORE_JOB,
    NO_OUTPUT,
    BatchToDecode,
    ResultWriter,
    decode_batch,
)
from batch_decode.outcome import JobFailure
from moto import mock_aws

from grocery_common.batch_layout import BatchPaths, parse_s3_uri

BUCKET = "inference"
LABELS = ["Apple", "Banana", "Carrot"]
OUT = "predictions/b1/run/"


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _batch(images, skipped=(), failure=None):
    return BatchToDecode(
        bucket=BUCKET,
        batch_id="b1",
        model="m1",
        images=images,
        skipped=list(skipped),
        predictions_prefix=OUT,
        failure=failure,
    )


def _rows(writer: ResultWriter) -> list[dict]:
    jsonl, _ = writer.flush()
    with open(jsonl, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _put_out(s3, key: str, body) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{OUT}{key}.out", Body=json.dumps(body).encode())


class TestDecodeBatch:
    def test_one_row_per_object_in_the_record_s_order(self, s3):
        keys = [f"incoming/{n}.jpg" for n in range(7)]
        for n, key in enumerate(keys):
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
            probabilities = [0.1, 0.1, 0.1]
            probabilities[n % 3] = 0.8
            _put_out(s3, key, {"prediction": probabilities})
        writer = ResultWriter()

        summary = decode_batch(
            s3,
            _batch(keys, [{"key": "incoming/n.txt", "reason": "r"}]),
            lambda: LABELS,
            writer,
            workers=3,
            window=2,
        )

        rows = _rows(writer)
        assert [r["image"] for r in rows] == [
            f"s3://{BUCKET}/{k}" for k in [*keys, "incoming/n.txt"]
        ]
        assert [r["label"] for r in rows[:7]] == ["Apple", "Banana", "Carrot"] * 2 + ["Apple"]
        assert rows[-1] == {
            "image": f"s3://{BUCKET}/incoming/n.txt",
            "status": "skipped",
            "label": None,
            "class_id": None,
            "confidence": None,
            "top_k": [],
            "model": "m1",
            "batch_id": "b1",
            "reason": "r",
        }
        assert (summary.images, summary.classified, summary.failed, summary.skipped) == (7, 7, 0, 1)

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ({"scores": [1]}, "no 'prediction' key"),
            (
                {"prediction": [0.5, 0.5]},
                "returned 2 probabilities but its label list has 3 labels",
            ),
        ],
    )
    def test_an_unreadable_output_fails_its_row_only(self, s3, body, reason):
        s3.put_object(Bucket=BUCKET, Key="incoming/a.jpg", Body=b"x")
        s3.put_object(Bucket=BUCKET, Key="incoming/b.jpg", Body=b"x")
        _put_out(s3, "incoming/a.jpg", body)
        _put_out(s3, "incoming/b.jpg", {"prediction": [0.2, 0.7, 0.1]})
        writer = ResultWriter()

        summary = decode_batch(
            s3, _batch(["incoming/a.jpg", "incoming/b.jpg"]), lambda: LABELS, writer
        )

        bad, good = _rows(writer)
        assert bad["status"] == "failed"
        assert bad["reason"].startswith(
            f"unreadable model output s3://{BUCKET}/{OUT}incoming/a.jpg.out"
        )
        assert reason in bad["reason"]
        assert (good["status"], good["label"]) == ("classified", "Banana")
        assert (summary.classified, summary.failed) == (1, 1)

    def test_missing_outputs_say_whether_the_photo_was_deleted_or_the_job_failed(self, s3):
        s3.put_object(Bucket=BUCKET, Key="incoming/still-here.jpg", Body=b"x")
        writer = ResultWriter()

        summary = decode_batch(
            s3,
            _batch(
                ["incoming/deleted.jpg", "incoming/still-here.jpg"],
                failure=JobFailure("States.TaskFailed", "ClientError: bad image"),
            ),
            lambda: pytest.fail("no output: the labels must not be read"),
            writer,
        )

        assert [(r["status"], r["reason"]) for r in _rows(writer)] == [
            ("failed", DELETED_BEFORE_JOB),
            ("failed", f"{NO_OUTPUT} (the job failed: ClientError: bad image)"),
        ]
        assert (summary.without_output, summary.deleted) == (2, 1)

    def test_csv_has_a_header_and_readable_cells(self, s3):
        s3.put_object(Bucket=BUCKET, Key="incoming/a, b.jpg", Body=b"x")
        _put_out(s3, "incoming/a, b.jpg", {"prediction": [0.05, 0.9, 0.05]})
        writer = ResultWriter()
        decode_batch(s3, _batch(["incoming/a, b.jpg"]), lambda: LABELS, writer, top_k=2)
        _, csv_path = writer.flush()
        with open(csv_path, encoding="utf-8", newline="") as handle:
            (row,) = list(csv.DictReader(handle))
        assert row == {
            "image": f"s3://{BUCKET}/incoming/a, b.jpg",
            "status": "classified",
            "label": "Banana",
            "class_id": "1",
            "confidence": "0.900000",
            "top_k": "Banana=0.9000; Apple=0.0500",
            "model": "m1",
            "batch_id": "b1",
            "reason": "",
        }


def test_handler_writes_results_for_a_batch_with_nothing_to_classify(s3):
    paths = BatchPaths(BUCKET, "20261125-132557-0123456789ab")
    record = {"images": [], "skipped": [{"key": "incoming/x.txt", "reason": "not an image"}]}
    s3.put_object(Bucket=BUCKET, Key=paths.record_key, Body=json.dumps(record).encode())
    execution_input = paths.execution_input(image_count=0, skipped_count=1)

    result = decode_handler.handler(
        {
            **{k: execution_input[k] for k in ("batch_id", "bucket", "record_key", "results")},
            "predictions_prefix": f"{paths.predictions_prefix}run/",
            "model": {"name": "none"},
            "labels": {"uri": "none"},
            "transform_error": {},
        },
        None,
    )

    assert result == {
        "batch_id": paths.batch_id,
        "model": "none",
        "images": 0,
        "classified": 0,
        "failed": 0,
        "skipped": 1,
        "results_jsonl": f"s3://{BUCKET}/{paths.results_jsonl_key}",
        "results_csv": f"s3://{BUCKET}/{paths.results_csv_key}",
        "outcome": "SUCCEEDED",
        "rerun": False,
        "failure": "",
        "advice": "",
    }
    body = s3.get_object(Bucket=BUCKET, Key=paths.results_jsonl_key)["Body"].read()
    assert json.loads(body)["reason"] == "not an image"
    header = s3.get_object(Bucket=BUCKET, Key=paths.results_csv_key)["Body"].read().decode()
    assert (
        header.splitlines()[0]
        == "image,status,label,class_id,confidence,top_k,model,batch_id,reason"
    )


@pytest.mark.parametrize("uri", ["", "s3://bucket-only", "https://x/y"])
def test_bad_s3_uris_are_refused(uri):
    with pytest.raises(ValueError, match="not an s3://bucket/key URI"):
        parse_s3_uri(uri)
