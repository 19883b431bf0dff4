"""The review queue in S3 as one reviewer sees it: claim a photo, decide, count progress.

Layout and object formats: lambdas/grocery_common/review_queue.py. Two reviewers never get
the same photo because a claim is created with a conditional write (PutObject If-None-Match
'*': S3 answers 412 Precondition Failed when the object exists, or 409 when a concurrent
conditional write won; https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
A claim is a lease: after `lease_seconds` another reviewer may take it over with If-Match on
the expired claim's ETag, so of two reviewers taking over the same claim only one succeeds.
A decision is saved with If-None-Match '*' too (the first decision of an item wins), then
the queue object and the claim are deleted: a closed browser loses nothing.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from grocery.aws import error_code
from grocery_common import review_queue as rq

DEFAULT_LEASE_SECONDS = 600
DEFAULT_URL_SECONDS = 300  # presigned photo URLs: long enough to look, short enough to leak little
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


def s3_client(session: boto3.Session):
    """S3 with SigV4 presigning: photos under SSE-KMS are served only to SigV4-signed GETs
    (https://repost.aws/knowledge-center/s3-kms-signature-version-error)."""
    return session.client("s3", config=Config(signature_version="s3v4"))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclasses.dataclass(frozen=True)
class Claimed:
    """An item this reviewer holds, with a short-lived URL of its photo."""

    item: rq.ReviewItem
    url: str
    expires: str


@dataclasses.dataclass(frozen=True)
class Progress:
    done: int  # decisions in S3, by anyone
    left: int  # items still queued (including those others hold)
    held_by_others: int
    labelled: int
    agreed: int  # labelled decisions whose label is the model's top-1

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.labelled if self.labelled else None

    def to_dict(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "agreement": self.agreement}


class AlreadyDecidedError(Exception):
    """Another reviewer decided this item first (their decision is kept)."""


class ReviewStore:
    def __init__(
        self,
        s3,
        bucket: str,
        *,
        reviewer: str,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        url_seconds: int = DEFAULT_URL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.reviewer = reviewer
        self.lease_seconds = lease_seconds
        self.url_seconds = url_seconds
        self.clock = clock
        self.session_id = uuid.uuid4().hex  # tells this server's claims from a namesake's
        self._decisions: dict[str, tuple[bool, bool]] = {}  # id -> (labelled, agreed)
        self._held: set[str] = set()  # items this session has claimed and not decided
        self.unreadable: set[str] = set()  # queue objects that are not a ReviewItem

    # ------------------------------------------------------------------ listing

    def _keys(self, prefix: str) -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for entry in page.get("Contents", []):
                if entry["Key"].endswith(".json"):
                    yield entry["Key"]

    def queued_ids(self) -> list[str]:
        """Queued item ids, oldest first (ids start with their UTC time)."""
        return sorted(rq.item_id_of(key) for key in self._keys(rq.QUEUE_PREFIX))

    # ------------------------------------------------------------------ claims

    def _claim_body(self) -> bytes:
        now = self.clock()
        return json.dumps(
            {
                "reviewer": self.reviewer,
                "session": self.session_id,
                "claimed": _iso(now),
                "expires": _iso(now + self.lease_seconds),
                "nonce": uuid.uuid4().hex,  # every claim's ETag differs, even for the same second
            }
        ).encode()

    def _put(self, key: str, body: bytes, **condition: str) -> bool:
        """True when written; False when the condition failed (someone else was first)."""
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **condition
            )
        except ClientError as error:
            if error_code(error) in _LOST_RACE:
                return False
            raise
        return True

    def _read_claim(self, item_id: str) -> tuple[dict, str] | None:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=rq.claim_key(item_id))
        except ClientError as error:
            if error_code(error) in _MISSING:
                return None
            raise
        try:
            return json.loads(response["Body"].read()), response["ETag"]
        except ValueError:
            return {}, response["ETag"]  # unreadable: treated as expired

    def claim(self, item_id: str) -> bool:
        """Take the lease on one item; False when another reviewer holds a live one."""
        key = rq.claim_key(item_id)
        for _ in range(2):  # a claim deleted between our two requests: try creating again
            if self._put(key, self._claim_body(), IfNoneMatch="*"):
                self._held.add(item_id)
                return True
            current = self._read_claim(item_id)
            if current is None:
                continue
            claim, etag = current
            if claim.get("session") == self.session_id:
                self._held.add(item_id)
                return True  # ours already (a page reload)
            try:
                live = _seconds(claim["expires"]) > self.clock()
            except (KeyError, TypeError, ValueError):
                live = False
            if live:
                return False
            if self._put(key, self._claim_body(), IfMatch=etag):
                self._held.add(item_id)
                return True
            return False
        return False

    def release(self, item_id: str) -> None:
        """Give an item back (the server stops): only a claim of this session is deleted."""
        current = self._read_claim(item_id)
        if current and current[0].get("session") == self.session_id:
            self.s3.delete_object(Bucket=self.bucket, Key=rq.claim_key(item_id))
        self._held.discard(item_id)

    def _item(self, item_id: str) -> rq.ReviewItem | None:
        key = rq.queue_key(item_id)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error_code(error) in _MISSING:
                return None
            raise
        return rq.ReviewItem.from_json(body, where=f"s3://{self.bucket}/{key}")

    def _decided(self, item_id: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=rq.decision_key(item_id))
        except ClientError as error:
            if error_code(error) in _MISSING:
                return False
            raise
        return True

    def _forget(self, item_id: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=rq.queue_key(item_id))
        self.s3.delete_object(Bucket=self.bucket, Key=rq.claim_key(item_id))
        self._held.discard(item_id)

    def claim_next(self) -> Claimed | None:
        """The oldest queued item nobody else holds, claimed for this reviewer; None if none."""
        for item_id in self.queued_ids():
            if item_id in self.unreadable or not self.claim(item_id):
                continue
            if self._decided(item_id):  # decided, but its queue object outlived a crash
                self._forget(item_id)
                continue
            try:
                item = self._item(item_id)
            except rq.ReviewQueueError:  # a writer's bug: not this reviewer's to fix, skip it
                self.unreadable.add(item_id)
                self.release(item_id)
                continue
            if item is None:  # decided and removed meanwhile
                self._forget(item_id)
                continue
            return self.claimed(item)
        return None

    def claimed(self, item: rq.ReviewItem) -> Claimed:
        url = self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": item.bucket, "Key": item.key},
            ExpiresIn=self.url_seconds,
        )
        return Claimed(item=item, url=url, expires=_iso(self.clock() + self.url_seconds))

    # ------------------------------------------------------------------ decisions

    def decide(self, item: rq.ReviewItem, verdict: str, label: str | None) -> rq.Decision:
        decision = rq.Decision(
            id=item.id,
            verdict=verdict,
            label=label if verdict == rq.LABELLED else None,
            reviewer=self.reviewer,
            time=_iso(self.clock()),
            item=item,
        )
        key = rq.decision_key(item.id)
        if not self._put(key, decision.to_json().encode(), IfNoneMatch="*"):
            self._forget(item.id)
            raise AlreadyDecidedError(item.id)
        self._forget(item.id)
        self._decisions[item.id] = (decision.verdict == rq.LABELLED, decision.agrees_with_model)
        return decision

    def _summarise(self, key: str) -> tuple[bool, bool]:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            decision = rq.Decision.from_json(body)
        except rq.ReviewQueueError:
            return False, False  # counted as done, not in the agreement
        return decision.verdict == rq.LABELLED, decision.agrees_with_model

    def progress(self) -> Progress:
        """Decisions are immutable: each is read once, later calls read only new ones."""
        keys = {rq.item_id_of(key): key for key in self._keys(rq.DECISIONS_PREFIX)}
        new = [item_id for item_id in keys if item_id not in self._decisions]
        with ThreadPoolExecutor(max_workers=8) as pool:
            for item_id, summary in zip(
                new, pool.map(self._summarise, [keys[i] for i in new]), strict=True
            ):
                self._decisions[item_id] = summary
        queued = self.queued_ids()
        claims = {rq.item_id_of(key) for key in self._keys(rq.CLAIMS_PREFIX)}
        held = len((claims & set(queued)) - self._held)
        counted = [self._decisions[i] for i in keys]
        return Progress(
            done=len(keys),
            left=len(queued),
            held_by_others=held,
            labelled=sum(1 for labelled, _ in counted if labelled),
            agreed=sum(1 for _, agreed in counted if agreed),
        )
