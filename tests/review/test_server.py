"""The review server over HTTP (moto S3 in-process): loopback only, Host and token checks,
the page's headers, decisions through the API and their error answers."""

from __future__ import annotations

import http.client
import json
import threading

import boto3
import pytest
from moto import mock_aws

from grocery.errors import CommandError
from grocery.review.server import ReviewApp, ReviewServer, check_loopback, image_origin
from grocery.review.store import ReviewStore, s3_client
from grocery_common import review_queue as rq
from tests.review.world import BUCKET, FixedLabels, keys, queue


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = s3_client(boto3.Session(region_name="us-east-1"))
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def server(s3):
    app = ReviewApp(ReviewStore(s3, BUCKET, reviewer="tester"), FixedLabels())
    running = ReviewServer(app)
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def call(server, method="GET", path="/api/state", body=None, **headers):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    sent = {"Host": f"127.0.0.1:{server.port}", "X-Review-Token": server.token, **headers}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=data, headers=sent)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response, payload


def decide(server, **body):
    response, payload = call(server, "POST", "/api/decide", body)
    return response.status, json.loads(payload)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "localhost", ""])
def test_anything_but_loopback_is_refused(host):
    with pytest.raises(CommandError, match="loopback address only"):
        check_loopback(host)


def test_ipv6_loopback_is_allowed():
    assert check_loopback("::1") == "::1"


def test_the_page_and_its_headers(server):
    response, body = call(server, path="/")
    assert response.status == 200
    assert b'<script src="/static/app.js"' in body
    csp = response.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp
    assert f"img-src {image_origin(server.app.store.s3)}" in csp
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert (
        call(server, path="/static/app.js")[0]
        .getheader("Content-Type")
        .startswith("text/javascript")
    )
    assert call(server, path="/static/secrets.txt")[0].status == 404


@pytest.mark.parametrize(
    ("headers", "error"),
    [({"X-Review-Token": "guess"}, "wrong token"), ({"Host": "evil.example:80"}, "Host header")],
)
def test_requests_without_the_token_or_from_another_host_are_refused(server, headers, error):
    response, body = call(server, **headers)
    assert response.status == 403
    assert error in json.loads(body)["error"]


def test_state_and_decisions_through_the_api(s3, server):
    items = queue(s3, 2)
    _response, body = call(server)
    state = json.loads(body)
    assert state["item"]["id"] == items[0].id
    assert state["item"]["labels"] == FixedLabels().labels
    assert state["item"]["top_k"][0] == {"label": "Banana", "confidence": 0.41}
    assert state["progress"]["left"] == 2

    status, after = decide(server, id=items[0].id, verdict="not_grocery", label=None)
    assert (status, after["notice"]) == (200, "saved: not a grocery product")
    assert after["item"]["id"] == items[1].id
    status, stale = decide(server, id=items[0].id, verdict="skip")
    assert stale["notice"].startswith("that photo is no longer yours")
    status, last = decide(server, id=items[1].id, verdict="label", label="Oat-Milk")
    assert (last["notice"], last["item"]) == ("saved: Oat-Milk", None)
    assert last["progress"]["done"] == 2
    assert keys(s3, rq.QUEUE_PREFIX) == []


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ({"verdict": "maybe"}, "application/json", (400, "verdict must be one of")),
        ({"verdict": "label", "label": "Kiwi"}, "application/json", (400, "not in the label list")),
        (b"[1]", "application/json", (400, "JSON object")),
        (b"{}", "text/plain", (415, "application/json")),
        (b"", "application/json", (400, "1-4096 bytes")),
    ],
)
def test_bad_decisions_are_answered_with_the_reason(s3, server, body, content_type, expected):
    status, error = expected
    (held,) = queue(s3, 1)
    call(server)  # claims the photo
    if isinstance(body, dict):
        body = json.dumps({"id": held.id, **body}).encode()
    response, payload = call(server, "POST", "/api/decide", body, **{"Content-Type": content_type})
    assert response.status == status
    assert error in json.loads(payload)["error"]
    assert keys(s3, rq.DECISIONS_PREFIX) == []


def test_another_reviewer_deciding_first_is_said(s3, server):
    (held,) = queue(s3, 1)
    call(server)
    other = ReviewStore(s3, BUCKET, reviewer="bob")
    other.decide(held, rq.SKIPPED, None)
    _status, state = decide(server, id=held.id, verdict="label", label="Banana")
    assert state["notice"].startswith("another reviewer decided that photo first")
    assert (
        rq.Decision.from_json(
            s3.get_object(Bucket=BUCKET, Key=rq.decision_key(held.id))["Body"].read()
        ).reviewer
        == "bob"
    )


def test_aws_errors_and_unknown_routes(s3, server):
    s3.delete_bucket(Bucket=BUCKET)
    response, body = call(server)
    assert response.status == 502
    assert "NoSuchBucket" in json.loads(body)["error"]
    assert call(server, "POST", "/api/other", {})[0].status == 404


def test_close_gives_the_photo_back(s3, server):
    queue(s3, 1)
    call(server)
    assert len(keys(s3, rq.CLAIMS_PREFIX)) == 1
    server.app.close()
    assert keys(s3, rq.CLAIMS_PREFIX) == []


def test_image_origin_on_aws_and_elsewhere():
    class Meta:
        def __init__(self, url):
            self.endpoint_url = url

    class Client:
        def __init__(self, url):
            self.meta = Meta(url)

    assert image_origin(Client("https://s3.eu-west-1.amazonaws.com")) == "https://*.amazonaws.com"
    assert image_origin(Client("https://s3.cn-north-1.amazonaws.com.cn")) == (
        "https://*.amazonaws.com.cn"
    )
    assert image_origin(Client("http://127.0.0.1:5000")) == "http://127.0.0.1:5000"
