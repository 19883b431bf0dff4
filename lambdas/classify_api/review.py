"""What the API does with each answer besides returning it: confidence metrics, and the
review queue for unsure predictions (grocery_common.review_queue).

An unsure answer (top-1 confidence below REVIEW_THRESHOLD) is queued when REVIEW_BUCKET
is set and REVIEW_KEEP_IMAGES is true: the request's photo goes to
`review/images/<yyyy>/<mm>/<dd>/<id>.<ext>` (lifecycle expiry, storage stack), then the
ReviewItem to `review/queue/<id>.json`. With REVIEW_KEEP_IMAGES false nothing is stored
and API answers are never queued: an item without its photo cannot be reviewed.

The item holds the top 5, the model version, the time and the source "api": nothing
about the caller (the id is random). Queueing never fails a classification: an S3
error is logged and counted (ReviewQueueFailures), and the answer says it was not queued.
Both objects are encrypted by the bucket's default SSE-KMS with its bucket key, so no
encryption headers are sent (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from grocery_common import confidence_metrics as cm
from grocery_common.labels import Prediction
from grocery_common.review_queue import IMAGES_PREFIX, ReviewItem, queue_key, top_k_of

logger = Logger(child=True)

SOURCE = "api"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}
# Tighter than the labels client: two PUTs at worst 2 x 2 x (1 + 2) s = 12 s, inside the
# function's 25 s with the endpoint call; a slow S3 costs a queue entry, not the answer.
REVIEW_S3_CONFIG = Config(
    connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2, "mode": "standard"}
)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _true(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def image_key(when: dt.datetime, item_id: str, content_type: str) -> str:
    return f"{IMAGES_PREFIX}{when:%Y/%m/%d}/{item_id}.{EXTENSIONS.get(content_type, 'bin')}"


class PredictionRecorder:
    """Publishes every answer's metrics; queues the unsure ones when enabled."""

    def __init__(
        self,
        s3: Any,
        *,
        bucket: str | None,
        threshold: float,
        keep_images: bool,
        namespace: str,
        clock: Callable[[], dt.datetime] = _utc_now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:16],
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.threshold = threshold
        self.keep_images = keep_images
        self.namespace = namespace
        self.clock = clock
        self.new_id = new_id

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> PredictionRecorder:
        bucket = env.get("REVIEW_BUCKET") or None
        return cls(
            boto3.client("s3", config=REVIEW_S3_CONFIG) if bucket else None,
            bucket=bucket,
            threshold=cm.threshold_from(env),
            keep_images=_true(env.get("REVIEW_KEEP_IMAGES", "true")),
            namespace=env.get(cm.NAMESPACE_VARIABLE, cm.DEFAULT_NAMESPACE),
        )

    @property
    def queues(self) -> bool:
        return bool(self.bucket) and self.keep_images

    def record(self, image: bytes, content_type: str, ranked: Prediction, model_name: str) -> bool:
        """Metrics for this answer; True when it was queued for review. Never raises."""
        version = cm.model_version_of(model_name)
        tally = cm.Tally(threshold=self.threshold)
        unsure = tally.add(ranked.label, ranked.confidence)
        queued = False
        if unsure and self.queues:
            queued = self._queue(image, content_type, ranked, version)
            tally.queued, tally.queue_failures = int(queued), int(not queued)
        try:
            cm.publish(tally, model_version=version, source=SOURCE, namespace=self.namespace)
        except Exception:  # metrics must never fail an answer
            logger.exception("could not publish the prediction metrics")
        return queued

    def _queue(self, image: bytes, content_type: str, ranked: Prediction, version: str) -> bool:
        now = self.clock()
        item_id = f"a-{now:%Y%m%d-%H%M%S}-{self.new_id()}"
        key = image_key(now, item_id, content_type)
        item = ReviewItem(
            id=item_id,
            bucket=self.bucket,
            key=key,
            top_k=top_k_of([(g.label, g.confidence) for g in ranked.top_k]),
            model_version=version,
            time=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            source=SOURCE,
        )
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=image, ContentType=content_type)
            self.s3.put_object(
                Bucket=self.bucket,
                Key=queue_key(item_id),
                Body=item.to_json().encode(),
                ContentType="application/json",
            )
        except (BotoCoreError, ClientError) as error:
            logger.warning(
                "could not queue an unsure prediction for review",
                extra={"item": item_id, "error": str(error)},
            )
            return False
        logger.info("queued for review", extra={"item": item_id, "confidence": item.confidence})
        return True
