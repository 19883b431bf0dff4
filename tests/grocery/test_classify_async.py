"""python -m grocery classify against an async deployment: 202, then signed GETs of the result."""

from __future__ import annotations

import json

import boto3
import pytest

from grocery.classify import ApiClassifier
from grocery.classify_wait import wait_for_result
from grocery.errors import CommandError
from grocery.images import PreparedImage

API_URL = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1/classify"
RESULT = {"label": "Banana", "sentence": "We are 97.1% confident this looks like a Banana."}


@pytest.fixture
def session(aws_credentials):
    return boto3.Session(region_name="eu-west-1")


class Transport:
    """The API: POST answers 202 queued; GETs answer `gets` in order."""

    def __init__(self, gets):
        self.gets = list(gets)
        self.calls = []

    def __call__(self, url, body, headers):
        self.calls.append((url, body, headers))
        if body is not None:
            return (
                202,
                {"Retry-After": "5"},
                json.dumps(
                    {"request_id": "ab" * 16, "status": "queued", "result": f"results/{'ab' * 16}"}
                ).encode(),
            )
        status, payload = self.gets.pop(0)
        return status, {"Retry-After": "3"}, json.dumps(payload).encode()


def image() -> PreparedImage:
    return PreparedImage(body=b"\xff\xd8\xff\xe0jpeg", content_type="image/jpeg", note="")


def test_waits_for_the_queued_result_with_signed_gets(session):
    transport = Transport([(202, {"status": "queued"}), (200, RESULT)])
    slept = []
    classifier = ApiClassifier(API_URL, session=session, send=transport, sleep=slept.append)
    assert classifier.classify(image(), 3) == RESULT
    post, *gets = transport.calls
    assert post[0].startswith(API_URL + "?top_k=3")
    assert [url for url, _, _ in gets] == [f"{API_URL}/results/{'ab' * 16}"] * 2
    for _, body, headers in gets:
        assert body is None
        assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert slept == [3.0]  # the result's Retry-After


def test_a_failed_request_is_reported_with_the_apis_message(session):
    transport = Transport([(502, {"message": "the model failed on this request: bad jpeg"})])
    classifier = ApiClassifier(API_URL, session=session, send=transport, sleep=lambda _: None)
    with pytest.raises(CommandError, match="502: the model failed on this request: bad jpeg"):
        classifier.classify(image(), 3)


def test_gives_up_after_the_wait_and_says_where_to_look():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    def fetch(url):
        return 202, {}, json.dumps({"request_id": "r1", "status": "queued"}).encode()

    with pytest.raises(CommandError) as error:
        wait_for_result(
            fetch, "https://x/results/r1", timeout=25, sleep=sleep, clock=lambda: now[0]
        )
    assert "no result after 25 s" in str(error.value)
    assert "https://x/results/r1" in str(error.value)
    assert now[0] == 30  # three polls of 10 s (no Retry-After), then the deadline
