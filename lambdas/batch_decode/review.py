"""Batch decode's part of the review loop: confidence metrics of the batch, and a
ReviewItem for every classified row whose top-1 confidence is below REVIEW_THRESHOLD.

Read back from the results `.jsonl` the decode step has just written (one row at a time:
memory stays bounded). Items point at the upload itself, `incoming/...`, in place: the
system never moves or deletes uploads (no lifecycle rule or code path touches
`incoming/`), so a copy under review/images/ would only double the storage and the
writes; an upload its owner deletes before review shows as missing on the review page.

Item ids are `b-<batch id>-<12 hex of the key's SHA-256>`: a re-run of the same batch
writes the same ids (no duplicates), and an item that already has a decision is not
queued again. Queueing never fails the batch: errors are logged and counted
(ReviewQueueFailures).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from grocery_common import confidence_metrics as cm
from grocery_common.batch_layout import is_missing, parse_s3_uri
from grocery_common.review_queue import ReviewItem, decision_key, queue_key, top_k_of

logger = Logger(child=True)

SOURCE = "batch"
WORKERS = 16
CLASSIFIED = "classified"  # batch_decode.decoding.Status.CLASSIFIED


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def item_id(batch_id: str, key: str) -> str:
    return f"b-{batch_id}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


@dataclasses.dataclass(frozen=True)
class BatchReviewSummary:
    unsure: int
    queued: int
    already_decided: int
    failed: int

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _rows(jsonl_path: str) -> Iterator[dict[str, Any]]:
    with open(jsonl_path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


class BatchReview:
    def __init__(
        self,
        s3: Any,
        *,
        batch_id: str,
        model_name: str,
        threshold: float,
        namespace: str,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.s3 = s3
        self.batch_id = batch_id
        self.version = cm.model_version_of(model_name)
        self.threshold = threshold
        self.namespace = namespace
        self.clock = clock

    @classmethod
    def from_environment(
        cls, s3: Any, *, batch_id: str, model_name: str, env: Mapping[str, str] = os.environ
    ) -> BatchReview:
        return cls(
            s3,
            batch_id=batch_id,
            model_name=model_name,
            threshold=cm.threshold_from(env),
            namespace=env.get(cm.NAMESPACE_VARIABLE, cm.DEFAULT_NAMESPACE),
        )

    def record(self, jsonl_path: str) -> BatchReviewSummary:
        """Publishes the batch's metrics and queues its unsure rows. Never raises for S3."""
        tally = cm.Tally(threshold=self.threshold)
        unsure: list[dict[str, Any]] = []
        for row in _rows(jsonl_path):
            if row.get("status") == CLASSIFIED and tally.add(row["label"], row["confidence"]):
                unsure.append(row)
        now = self.clock().isoformat(timespec="seconds").replace("+00:00", "Z")
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            outcomes = list(pool.map(lambda row: self._queue(row, now), unsure))
        tally.queued = outcomes.count("queued")
        tally.queue_failures = outcomes.count("failed")
        try:
            cm.publish(tally, model_version=self.version, source=SOURCE, namespace=self.namespace)
        except Exception:  # metrics must never fail the batch
            logger.exception("could not publish the prediction metrics")
        return BatchReviewSummary(
            unsure=len(unsure),
            queued=tally.queued,
            already_decided=outcomes.count("decided"),
            failed=tally.queue_failures,
        )

    def _queue(self, row: dict[str, Any], now: str) -> str:
        bucket, key = parse_s3_uri(row["image"])
        identifier = item_id(self.batch_id, key)
        item = ReviewItem(
            id=identifier,
            bucket=bucket,
            key=key,
            top_k=top_k_of([(g["label"], g["confidence"]) for g in row["top_k"]]),
            model_version=self.version,
            time=now,
            source=SOURCE,
        )
        try:
            if self._decided(bucket, identifier):
                return "decided"
            self.s3.put_object(
                Bucket=bucket,
                Key=queue_key(identifier),
                Body=item.to_json().encode(),
                ContentType="application/json",
            )
        except (BotoCoreError, ClientError) as error:
            logger.warning(
                "could not queue an unsure prediction for review",
                extra={"item": identifier, "image": row["image"], "error": str(error)},
            )
            return "failed"
        return "queued"

    def _decided(self, bucket: str, identifier: str) -> bool:
        """A re-run must not bring back an item a reviewer has already decided."""
        try:
            self.s3.head_object(Bucket=bucket, Key=decision_key(identifier))
        except ClientError as error:
            if is_missing(error):
                return False
            raise
        return True
