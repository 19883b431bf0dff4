"""The review queue as a reviewer sees it, in moto S3: claims, leases, decisions, progress."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from grocery.review.store import AlreadyDecidedError, ReviewStore, s3_client
from grocery_common import review_queue as rq
from tests.review.world import BUCKET, keys, queue


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def s3(aws_credentials):
    with mock_aws():
        client = s3_client(boto3.Session(region_name="us-east-1"))
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def clock():
    return Clock()


def store(s3, clock, reviewer: str) -> ReviewStore:
    return ReviewStore(s3, BUCKET, reviewer=reviewer, lease_seconds=600, clock=clock)


def test_two_reviewers_never_get_the_same_photo(s3, clock):
    items = queue(s3, 3)
    alice, bob = store(s3, clock, "alice"), store(s3, clock, "bob")
    first, second = alice.claim_next(), bob.claim_next()
    assert first.item == items[0]  # oldest first
    assert second.item == items[1]
    claim = json.loads(s3.get_object(Bucket=BUCKET, Key=rq.claim_key(items[0].id))["Body"].read())
    assert claim["reviewer"] == "alice"
    assert claim["expires"] == "2027-01-15T08:10:00Z"  # 600 s after the clock


def test_a_reload_keeps_the_same_photo(s3, clock):
    items = queue(s3, 2)
    alice = store(s3, clock, "alice")
    assert alice.claim_next().item == items[0]
    assert alice.claim(items[0].id)  # its own claim: still alice's


def test_an_expired_lease_is_taken_over_once(s3, clock):
    items = queue(s3, 1)
    alice, bob, carol = (store(s3, clock, name) for name in ("alice", "bob", "carol"))
    assert alice.claim_next().item == items[0]
    assert bob.claim_next() is None  # alice's lease is live
    clock.now += 601
    stale = s3.get_object(Bucket=BUCKET, Key=rq.claim_key(items[0].id))["ETag"]
    assert bob.claim_next().item == items[0]
    # carol read the same expired claim before bob replaced it: her If-Match must fail
    assert not carol._put(rq.claim_key(items[0].id), carol._claim_body(), IfMatch=stale)
    assert carol.claim_next() is None


def test_a_decision_is_saved_and_the_item_leaves_the_queue(s3, clock):
    items = queue(s3, 2)
    alice = store(s3, clock, "alice")
    held = alice.claim_next()
    decision = alice.decide(held.item, rq.LABELLED, "Plantain")
    saved = rq.Decision.from_json(
        s3.get_object(Bucket=BUCKET, Key=rq.decision_key(items[0].id))["Body"].read()
    )
    assert saved == decision
    assert (saved.label, saved.reviewer, saved.item) == ("Plantain", "alice", items[0])
    assert keys(s3, rq.QUEUE_PREFIX) == [rq.queue_key(items[1].id)]
    assert keys(s3, rq.CLAIMS_PREFIX) == []


def test_the_first_decision_wins(s3, clock):
    items = queue(s3, 1)
    alice, bob = store(s3, clock, "alice"), store(s3, clock, "bob")
    held = alice.claim_next()
    bob.decide(items[0], rq.NOT_GROCERY, None)  # bob took it over after alice's lease
    with pytest.raises(AlreadyDecidedError):
        alice.decide(held.item, rq.LABELLED, "Banana")
    kept = rq.Decision.from_json(
        s3.get_object(Bucket=BUCKET, Key=rq.decision_key(items[0].id))["Body"].read()
    )
    assert (kept.reviewer, kept.verdict) == ("bob", rq.NOT_GROCERY)


def test_a_queue_object_left_by_a_crash_is_cleaned_up(s3, clock):
    items = queue(s3, 2)
    decided = rq.Decision(items[0].id, rq.SKIPPED, None, "bob", "2026-12-01T13:00:00Z", items[0])
    s3.put_object(Bucket=BUCKET, Key=rq.decision_key(items[0].id), Body=decided.to_json())
    assert store(s3, clock, "alice").claim_next().item == items[1]
    assert rq.queue_key(items[0].id) not in keys(s3, rq.QUEUE_PREFIX)


def test_release_gives_back_only_its_own_claim(s3, clock):
    items = queue(s3, 1)
    alice, bob = store(s3, clock, "alice"), store(s3, clock, "bob")
    alice.claim_next()
    bob.release(items[0].id)
    assert keys(s3, rq.CLAIMS_PREFIX) == [rq.claim_key(items[0].id)]
    alice.release(items[0].id)
    assert keys(s3, rq.CLAIMS_PREFIX) == []
    assert bob.claim_next().item == items[0]


def test_photo_urls_are_presigned_for_five_minutes(s3, clock):
    items = queue(s3, 1)
    held = store(s3, clock, "alice").claim_next()
    url = urlparse(held.url)
    assert url.path.endswith(items[0].key)
    assert parse_qs(url.query)["X-Amz-Expires"] == ["300"]


def test_progress_counts_done_left_and_agreement(s3, clock):
    queue(s3, 5)
    alice, bob = store(s3, clock, "alice"), store(s3, clock, "bob")
    for verdict, label in ((rq.LABELLED, "Banana"), (rq.LABELLED, "Oatghurt"), (rq.SKIPPED, None)):
        alice.decide(alice.claim_next().item, verdict, label)
    s3.put_object(Bucket=BUCKET, Key=rq.decision_key("broken"), Body=b"{}")
    bob.claim_next()
    progress = alice.progress()
    assert progress.to_dict() == {
        "done": 4,
        "left": 2,
        "held_by_others": 1,
        "labelled": 2,
        "agreed": 1,  # Banana was the model's top-1, Oatghurt its third guess
        "agreement": 0.5,
    }


class Flaky:
    """The moto client, with chosen calls answering an S3 error code once."""

    def __init__(self, s3, **failures: str) -> None:
        self._s3 = s3
        self._failures = dict(failures)

    def __getattr__(self, name):
        call = getattr(self._s3, name)
        code = self._failures.pop(name, None)
        if code is None:
            return call

        def fail(**kwargs):
            raise ClientError({"Error": {"Code": code, "Message": code}}, name)

        return fail


def test_a_claim_deleted_between_two_requests_is_created_again(s3, clock):
    (held,) = queue(s3, 1)
    alice = store(s3, clock, "alice")
    alice.claim_next()
    bob = store(Flaky(s3, get_object="NoSuchKey"), clock, "bob")
    s3.delete_object(Bucket=BUCKET, Key=rq.claim_key(held.id))  # alice's claim went meanwhile
    assert bob.claim(held.id)


def test_an_unreadable_claim_counts_as_expired(s3, clock):
    (held,) = queue(s3, 1)
    s3.put_object(Bucket=BUCKET, Key=rq.claim_key(held.id), Body=b"not json")
    assert store(s3, clock, "bob").claim_next().item == held


def test_an_unreadable_queue_object_is_passed_over(s3, clock):
    items = queue(s3, 2)
    s3.put_object(Bucket=BUCKET, Key=rq.queue_key(items[0].id), Body=b'{"id": "x"}')
    alice = store(s3, clock, "alice")
    assert alice.claim_next().item == items[1]
    assert alice.unreadable == {items[0].id}
    assert keys(s3, rq.CLAIMS_PREFIX) == [rq.claim_key(items[1].id)]


def test_an_item_decided_meanwhile_is_passed_over(s3, clock):
    items = queue(s3, 2)
    s3.delete_object(Bucket=BUCKET, Key=rq.queue_key(items[0].id))
    alice = store(Flaky(s3, list_objects_v2="unused"), clock, "alice")
    alice.queued_ids = lambda: [items[0].id, items[1].id]  # listed before it was removed
    assert alice.claim_next().item == items[1]
    assert keys(s3, rq.CLAIMS_PREFIX) == [rq.claim_key(items[1].id)]


@pytest.mark.parametrize("call", ["put_object", "get_object", "head_object"])
def test_other_s3_errors_are_not_taken_for_a_lost_race(s3, clock, call):
    (held,) = queue(s3, 1)
    if call == "get_object":  # a claim exists: reading it is refused
        s3.put_object(Bucket=BUCKET, Key=rq.claim_key(held.id), Body=b"{}")
    with pytest.raises(ClientError, match="AccessDenied"):
        store(Flaky(s3, **{call: "AccessDenied"}), clock, "bob").claim_next()
