"""Reads the S3 "object created" events that reach the batch queue.

Two shapes are understood:

- EventBridge events (what the stack wires: bucket -> EventBridge -> SQS), where
  `detail.object.key` is the key as stored: NOT URL-encoded
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html);
- S3 event notifications (`{"Records": [...]}`, should someone point a bucket's
  notification straight at the queue), where `s3.object.key` IS URL-encoded in
  the form style (`red flower.jpg` -> `red+flower.jpg`) and is decoded with
  `unquote_plus`.

Some libraries (e.g. Powertools' S3EventBridgeNotificationObject.key) decode
EventBridge keys too. The trigger therefore looks the raw key up first and
falls back to its decoded form only when the raw key does not exist
(`ObjectEvent.candidate_keys`): a key that really contains `+` is never mangled.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import unquote_plus


class MessageError(ValueError):
    """The message is not an S3 event this trigger understands; the message says why."""


@dataclasses.dataclass(frozen=True)
class ObjectEvent:
    bucket: str
    key: str
    size: int
    version_id: str
    sequencer: str
    event_time: str  # ISO-8601, UTC
    # Keys to try, in order, when reading the object (see the module docstring).
    alternative_key: str = ""

    @property
    def candidate_keys(self) -> tuple[str, ...]:
        return (self.key, self.alternative_key) if self.alternative_key else (self.key,)

    @property
    def identity(self) -> str:
        """What makes two events the same upload (duplicate deliveries share it)."""
        return f"{self.bucket}\n{self.key}\n{self.version_id or self.sequencer}"


def parse_message(body: str) -> list[ObjectEvent]:
    """The object-created events in one SQS message body ([] for other S3 events)."""
    try:
        message = json.loads(body)
    except (TypeError, json.JSONDecodeError) as error:
        raise MessageError(f"the message body is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise MessageError("the message body is not a JSON object")
    if "detail-type" in message:
        return _from_eventbridge(message)
    if "Records" in message:
        return _from_notification(message)
    if message.get("Event") == "s3:TestEvent":
        return []  # sent once when a notification configuration is saved
    raise MessageError(
        "the message is neither an EventBridge event nor an S3 event notification "
        f"(keys: {sorted(message)[:10]})"
    )


def _from_eventbridge(event: dict[str, Any]) -> list[ObjectEvent]:
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return []
    try:
        detail = event["detail"]
        key = detail["object"]["key"]
        decoded = unquote_plus(key)
        return [
            ObjectEvent(
                bucket=detail["bucket"]["name"],
                key=key,
                size=int(detail["object"].get("size", 0)),
                version_id=detail["object"].get("version-id") or "",
                sequencer=detail["object"].get("sequencer") or "",
                event_time=event["time"],
                alternative_key=decoded if decoded != key else "",
            )
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError(f"malformed EventBridge S3 event: missing or bad {error}") from None


def _from_notification(message: dict[str, Any]) -> list[ObjectEvent]:
    events = []
    try:
        for record in message["Records"]:
            if record.get("eventSource") != "aws:s3" or not str(
                record.get("eventName", "")
            ).startswith("ObjectCreated:"):
                continue
            s3_object = record["s3"]["object"]
            events.append(
                ObjectEvent(
                    bucket=record["s3"]["bucket"]["name"],
                    key=unquote_plus(s3_object["key"]),
                    size=int(s3_object.get("size", 0)),
                    version_id=s3_object.get("versionId") or "",
                    sequencer=s3_object.get("sequencer") or "",
                    event_time=record["eventTime"],
                )
            )
    except (KeyError, TypeError, ValueError) as error:
        raise MessageError(f"malformed S3 event notification: missing or bad {error}") from None
    return events
