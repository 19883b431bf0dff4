"""The batch trigger: reading S3 events, judging objects, one deterministic batch per window."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from batch_trigger import handler as trigger
from batch_trigger.batching import (
    MAX_IMAGE_BYTES,
    Probe,
    Reason,
    batch_id_for,
    build_batch,
    judge,
    prefilter,
    s3_probe,
    unique_events,
)
from batch_trigger.events import MessageError, ObjectEvent, parse_message
from botocore.exceptions import ClientError
from moto import mock_aws

from grocery_common.image_check import HEADER_BYTES
from tests.support import images

BUCKET = "inference"
JPEG = images.jpeg()
PNG = images.png()
# A JPEG header (SOI, APP0), then nothing the decoder can read: it would fail the transform job.
BROKEN_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(500)
# 3 APP2 segments of 64 KiB before the frame: a header longer than the first read.
LONG_HEADER = JPEG[:2] + (b"\xff\xe2\xff\xff" + bytes(65533)) * 3 + JPEG[2:]


def eventbridge(key: str, *, size: int = 100, sequencer: str = "0A", detail_type="Object Created"):
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": "111122223333",
        "time": "2026-11-25T13:25:57Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": key,
                "size": size,
                "etag": "b1946ac92492d2347c6235b4d2611184",
                "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                "sequencer": sequencer,
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def notification(encoded_key: str, size: int = 100):
    """An S3 event notification (keys URL-encoded, form style)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-25T13:25:57.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": {
                        "key": encoded_key,
                        "size": size,
                        "eTag": "0123456789abcdef0123456789abcdef",
                        "versionId": "v1",
                        "sequencer": "0A1B2C3D4E5F678901",
                    },
                },
            }
        ]
    }


def event(key: str, size: int = 100, sequencer: str = "0A", time="2026-11-25T13:25:57Z"):
    return ObjectEvent(BUCKET, key, size, "v1", sequencer, time)


class TestParseMessage:
    @pytest.mark.parametrize(
        "key", ["incoming/apple 1.jpg", "incoming/c++/a+b.jpg", "incoming/frühstück/äpfel-🍎.jpg"]
    )
    def test_eventbridge_keys_are_taken_as_stored(self, key):
        (parsed,) = parse_message(json.dumps(eventbridge(key)))
        assert parsed.key == key
        assert parsed.candidate_keys[0] == key

    def test_a_plus_in_an_eventbridge_key_also_offers_its_decoded_form_second(self):
        (parsed,) = parse_message(json.dumps(eventbridge("incoming/my+photo.jpg")))
        assert parsed.candidate_keys == ("incoming/my+photo.jpg", "incoming/my photo.jpg")

    @pytest.mark.parametrize(
        "key", ["incoming/apple 1.jpg", "incoming/c++/a+b.jpg", "incoming/frühstück/äpfel-🍎.jpg"]
    )
    def test_notification_keys_are_url_decoded(self, key):
        encoded = quote_plus(key, safe="/")
        (parsed,) = parse_message(json.dumps(notification(encoded)))
        assert parsed.key == key
        assert parsed.candidate_keys == (key,)

    def test_fields_are_read(self):
        (parsed,) = parse_message(json.dumps(eventbridge("incoming/a.jpg", size=42)))
        assert (parsed.bucket, parsed.size, parsed.version_id, parsed.sequencer) == (
            BUCKET,
            42,
            "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            "0A",
        )
        assert parsed.event_time == "2026-11-25T13:25:57Z"

    @pytest.mark.parametrize(
        "body",
        [
            eventbridge("incoming/a.jpg", detail_type="Object Deleted"),
            {"Event": "s3:TestEvent", "Bucket": BUCKET},
            {
                **notification("incoming/a.jpg"),
                "Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete"}],
            },
        ],
    )
    def test_other_s3_events_are_ignored(self, body):
        assert parse_message(json.dumps(body)) == []

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("not json", "not JSON"),
            ("[1, 2]", "not a JSON object"),
            ('{"hello": 1}', "neither an EventBridge event nor an S3 event notification"),
            (json.dumps({**eventbridge("k"), "detail": {}}), "malformed EventBridge S3 event"),
            (
                json.dumps(
                    {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}
                ),
                "malformed S3 event notification",
            ),
        ],
    )
    def test_unreadable_messages_are_explained(self, body, message):
        with pytest.raises(MessageError, match=message):
            parse_message(body)


class TestJudging:
    @pytest.mark.parametrize(
        ("key", "size", "reason"),
        [
            ("incoming/folder/", 0, Reason.FOLDER_MARKER),
            ("incoming/notes.txt", 10, "not an image: '.txt' is not one of .jpg, .jpeg, .png"),
            ("incoming/README", 10, "not an image: 'no extension' is not one of .jpg, .jpeg, .png"),
            ("incoming/empty.jpg", 0, Reason.EMPTY),
            (
                "incoming/huge.png",
                MAX_IMAGE_BYTES + 1,
                "larger than the transform's 6 MB payload limit (6.0 MB)",
            ),
            ("incoming/ok.JPG", MAX_IMAGE_BYTES, ""),
            ("incoming/ok.jpeg", 1, ""),
        ],
    )
    def test_prefilter(self, key, size, reason):
        assert prefilter(event(key, size)) == reason

    @pytest.mark.parametrize(
        ("probe", "reason"),
        [
            (Probe("k", exists=False), Reason.DELETED),
            (Probe("k", exists=True, size=0), Reason.EMPTY),
            (Probe("k", exists=True, size=7_000_000, head=JPEG), Reason.too_large(7_000_000)),
            (Probe("k", exists=True, size=50, head=b"GIF89a"), Reason.NOT_IMAGE_CONTENT),
            (Probe("k", exists=True, size=50, head=JPEG[:16]), ""),
            (Probe("k", exists=True, size=50, head=PNG[:16]), ""),
            (Probe("k", exists=True, size=len(JPEG), head=JPEG), ""),
            (
                Probe("k", exists=True, size=len(BROKEN_JPEG), head=BROKEN_JPEG),
                "a broken JPEG that the algorithm cannot decode: "
                "the file ends inside its header (a truncated upload?)",
            ),
            (
                Probe("k", exists=True, size=33, head=PNG[:29] + bytes(4)),
                "a broken PNG that the algorithm cannot decode: its IHDR chunk fails its CRC check",
            ),
        ],
    )
    def test_judge_what_is_stored(self, probe, reason):
        assert judge(probe) == reason


class TestBatchIdentity:
    def test_same_events_in_any_order_and_number_give_the_same_id(self):
        a, b = event("incoming/a.jpg"), event("incoming/b.jpg")
        assert batch_id_for([a, b]) == batch_id_for([b, a, b])

    def test_other_objects_give_another_id(self):
        a, b = event("incoming/a.jpg"), event("incoming/b.jpg")
        assert batch_id_for([a]) != batch_id_for([a, b])

    def test_id_starts_with_the_earliest_event_time(self):
        early = event("incoming/a.jpg", time="2026-01-02T03:04:05Z")
        late = event("incoming/b.jpg", time="2026-01-02T04:00:00Z")
        assert batch_id_for([late, early]).startswith("20260102-030405-")

    def test_a_re_upload_in_the_window_keeps_the_latest_version(self):
        old = event("incoming/a.jpg", sequencer="00F")
        new = event("incoming/a.jpg", sequencer="0100")  # longer hex, larger number
        assert unique_events([new, old, old]) == [new]


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


class TestBuildBatch:
    def test_objects_outside_incoming_or_the_bucket_never_make_a_batch(self, s3):
        events = [event("results/x.jsonl"), ObjectEvent("other", "incoming/a.jpg", 1, "", "", "t")]
        assert build_batch(events, bucket=BUCKET, probe=s3_probe(s3)) is None

    def test_images_and_skipped_objects(self, s3):
        s3.put_object(Bucket=BUCKET, Key="incoming/a.jpg", Body=JPEG)
        s3.put_object(Bucket=BUCKET, Key="incoming/fake.png", Body=b"<html>")
        events = [
            event("incoming/a.jpg", len(JPEG)),
            event("incoming/fake.png", 6),
            event("incoming/gone.jpg", 10),
            event("incoming/doc.pdf", 10),
        ]

        batch = build_batch(events, bucket=BUCKET, probe=s3_probe(s3))

        assert [(i.key, i.size) for i in batch.images] == [("incoming/a.jpg", len(JPEG))]
        assert {s.key: s.reason for s in batch.skipped} == {
            "incoming/doc.pdf": "not an image: '.pdf' is not one of .jpg, .jpeg, .png",
            "incoming/fake.png": Reason.NOT_IMAGE_CONTENT,
            "incoming/gone.jpg": Reason.DELETED,
        }
        assert batch.manifest() == [{"prefix": f"s3://{BUCKET}/"}, "incoming/a.jpg"]
        assert batch.execution_input()["image_count"] == 1
        assert batch.execution_input()["skipped_count"] == 3

    def test_a_jpeg_whose_header_breaks_off_is_skipped_before_the_job(self, s3):
        s3.put_object(Bucket=BUCKET, Key="incoming/broken.jpg", Body=BROKEN_JPEG)
        s3.put_object(Bucket=BUCKET, Key="incoming/fine.jpg", Body=images.corrupt_body(JPEG))
        events = [event("incoming/broken.jpg", len(BROKEN_JPEG)), event("incoming/fine.jpg", 900)]

        batch = build_batch(events, bucket=BUCKET, probe=s3_probe(s3))

        # Damage after the header only makes libjpeg warn: that photo is classified.
        assert [i.key for i in batch.images] == ["incoming/fine.jpg"]
        ((key, reason),) = [(s.key, s.reason) for s in batch.skipped]
        assert key == "incoming/broken.jpg"
        assert reason.startswith("a broken JPEG that the algorithm cannot decode: the file ends")

    @pytest.mark.parametrize("classified", [True, False], ids=["whole", "cut-inside-the-header"])
    def test_a_header_longer_than_the_first_read_is_read_whole(self, s3, classified):
        body = LONG_HEADER if classified else LONG_HEADER[: 3 * 65537 - 1000]
        s3.put_object(Bucket=BUCKET, Key="incoming/long.jpg", Body=body)
        reads = []
        real_get = s3.get_object

        def get_object(**kwargs):
            reads.append(kwargs.get("Range", "whole"))
            return real_get(**kwargs)

        s3.get_object = get_object
        assert len(body) > HEADER_BYTES

        batch = build_batch(
            [event("incoming/long.jpg", len(body))], bucket=BUCKET, probe=s3_probe(s3)
        )

        assert reads == [f"bytes=0-{HEADER_BYTES - 1}", "whole"]
        assert bool(batch.images) is classified

    def test_a_form_encoded_eventbridge_key_falls_back_to_the_stored_key(self, s3):
        s3.put_object(Bucket=BUCKET, Key="incoming/my photo.jpg", Body=JPEG)
        (parsed,) = parse_message(json.dumps(eventbridge("incoming/my+photo.jpg", size=len(JPEG))))

        batch = build_batch([parsed], bucket=BUCKET, probe=s3_probe(s3))

        assert [i.key for i in batch.images] == ["incoming/my photo.jpg"]

    def test_a_key_with_a_real_plus_is_never_mangled(self, s3):
        s3.put_object(Bucket=BUCKET, Key="incoming/a+b.jpg", Body=JPEG)
        s3.put_object(Bucket=BUCKET, Key="incoming/a b.jpg", Body=PNG)
        (parsed,) = parse_message(json.dumps(eventbridge("incoming/a+b.jpg", size=len(JPEG))))

        batch = build_batch([parsed], bucket=BUCKET, probe=s3_probe(s3))

        assert [i.key for i in batch.images] == ["incoming/a+b.jpg"]

    def test_the_stored_size_wins_over_the_event(self, s3):
        s3.put_object(Bucket=BUCKET, Key="incoming/a.jpg", Body=b"")  # overwritten empty since
        batch = build_batch([event("incoming/a.jpg", 100)], bucket=BUCKET, probe=s3_probe(s3))
        assert [(s.key, s.reason) for s in batch.skipped] == [("incoming/a.jpg", Reason.EMPTY)]


class _Sfn:
    def __init__(self, error_code: str = "") -> None:
        self.error_code = error_code
        self.calls = []

    def start_execution(self, **kwargs):
        self.calls.append(kwargs)
        if self.error_code:
            raise ClientError(
                {"Error": {"Code": self.error_code, "Message": "x"}}, "StartExecution"
            )
        return {"executionArn": "arn"}


class TestRecordAndStart:
    def _batch(self, s3):
        s3.put_object(Bucket=BUCKET, Key="incoming/a.jpg", Body=JPEG)
        return build_batch([event("incoming/a.jpg", len(JPEG))], bucket=BUCKET, probe=s3_probe(s3))

    def test_the_execution_is_named_after_the_batch(self, s3):
        batch, sfn = self._batch(s3), _Sfn()
        trigger.start_batch(sfn, "arn:sm", batch)
        (call,) = sfn.calls
        assert call["name"] == batch.batch_id
        assert json.loads(call["input"]) == batch.execution_input()

    def test_an_execution_that_already_exists_is_success(self, s3):
        trigger.start_batch(_Sfn("ExecutionAlreadyExists"), "arn:sm", self._batch(s3))

    def test_other_start_errors_fail_the_invocation(self, s3):
        with pytest.raises(ClientError):
            trigger.start_batch(_Sfn("ThrottlingException"), "arn:sm", self._batch(s3))

    def test_an_existing_record_is_left_as_it_is(self, s3):
        batch = self._batch(s3)
        s3.put_object(Bucket=BUCKET, Key=batch.paths.record_key, Body=b'{"rerun": true}')
        trigger.record_batch(s3, batch)
        body = s3.get_object(Bucket=BUCKET, Key=batch.paths.record_key)["Body"].read()
        assert body == b'{"rerun": true}'
        assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=batch.paths.manifest_key)

    def test_the_record_holds_images_skipped_objects_and_the_execution_input(self, s3):
        batch = self._batch(s3)
        trigger.record_batch(s3, batch)
        record = json.loads(s3.get_object(Bucket=BUCKET, Key=batch.paths.record_key)["Body"].read())
        assert record["images"][0]["key"] == "incoming/a.jpg"
        assert record["skipped"] == []
        assert record["execution_input"] == batch.execution_input()


def test_a_window_of_only_unreadable_messages_fails_the_invocation(s3, monkeypatch):
    monkeypatch.setenv("INFERENCE_BUCKET", BUCKET)
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:x")
    records = {
        "Records": [
            {
                "messageId": "1",
                "body": "nope",
                "receiptHandle": "r",
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn",
                "awsRegion": "us-east-1",
            }
        ]
    }
    with pytest.raises(BatchProcessingError):
        trigger.handler(records, None)
