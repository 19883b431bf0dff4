"""Turns a window of upload events into one batch: the images to classify and the skipped objects.

Nothing is dropped silently: every object that is not classified gets a reason,
and the reasons end up in the batch's results.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from batch_trigger.events import ObjectEvent
from grocery_common.batch_layout import INCOMING_PREFIX, BatchPaths, is_missing, s3_uri
from grocery_common.image_check import HEADER_BYTES, check_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# The transform job's MaxPayloadInMB is 6: a bigger image fails the whole job. Counted
# in decimal megabytes so that no image SageMaker might measure as over 6 MB gets through.
MAX_IMAGE_BYTES = 6_000_000
PROBE_WORKERS = 32
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # JPEG, PNG: what the algorithm decodes


class Reason:
    """Why an object is not classified (these strings appear in the results)."""

    FOLDER_MARKER = "folder marker (the key ends with '/'), not a photo"
    EMPTY = "empty object (0 bytes)"
    DELETED = "deleted before the batch started"
    NOT_IMAGE_CONTENT = (
        "not a JPEG or PNG image (the content does not start with an image signature)"
    )

    @staticmethod
    def not_image_extension(key: str) -> str:
        extension = posixpath.splitext(key)[1] or "no extension"
        return f"not an image: {extension!r} is not one of {', '.join(IMAGE_EXTENSIONS)}"

    @staticmethod
    def undecodable(head: bytes, problem: str) -> str:
        kind = "JPEG" if head.startswith(_SIGNATURES[0]) else "PNG"
        return f"a broken {kind} that the algorithm cannot decode: {problem}"

    @staticmethod
    def too_large(size: int) -> str:
        return f"larger than the transform's 6 MB payload limit ({size / 1e6:.1f} MB)"


@dataclasses.dataclass(frozen=True)
class Image:
    key: str
    size: int
    version_id: str
    event_time: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Skipped:
    key: str
    size: int
    version_id: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Batch:
    paths: BatchPaths
    created_at: str
    images: tuple[Image, ...]
    skipped: tuple[Skipped, ...]

    @property
    def batch_id(self) -> str:
        return self.paths.batch_id

    def manifest(self) -> list[Any]:
        """The transform job's ManifestFile: a prefix, then keys relative to it."""
        return [{"prefix": s3_uri(self.paths.bucket, "")}, *(image.key for image in self.images)]

    def execution_input(self) -> dict[str, Any]:
        return self.paths.execution_input(
            image_count=len(self.images), skipped_count=len(self.skipped)
        )

    def record(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "bucket": self.paths.bucket,
            "created_at": self.created_at,
            "images": [image.to_dict() for image in self.images],
            "skipped": [skipped.to_dict() for skipped in self.skipped],
            "execution_input": self.execution_input(),
        }


@dataclasses.dataclass(frozen=True)
class Probe:
    """What a ranged GET of the object's first bytes found (current version)."""

    key: str
    exists: bool
    size: int = 0
    version_id: str = ""
    head: bytes = b""


ProbeFn = Callable[[ObjectEvent], Probe]


def unique_events(events: Iterable[ObjectEvent]) -> list[ObjectEvent]:
    """One event per key: duplicate deliveries and re-uploads within the window collapse."""
    latest: dict[tuple[str, str], ObjectEvent] = {}
    for event in events:
        slot = (event.bucket, event.key)
        current = latest.get(slot)
        if current is None or _sequence(event) > _sequence(current):
            latest[slot] = event
    return sorted(latest.values(), key=lambda e: (e.bucket, e.key))


def _sequence(event: ObjectEvent) -> tuple[int, str]:
    # Sequencers are hex strings of varying length: compare them as numbers.
    try:
        return (int(event.sequencer, 16), event.event_time)
    except ValueError:
        return (0, event.event_time)


def batch_id_for(events: list[ObjectEvent]) -> str:
    """Deterministic: the same events (in any order, any number of times) give the same id."""
    digest = hashlib.sha256("\n\n".join(sorted({e.identity for e in events})).encode()).hexdigest()
    return f"{_earliest(events):%Y%m%d-%H%M%S}-{digest[:12]}"


def _earliest(events: Iterable[ObjectEvent]) -> datetime:
    return min(_parse_time(e.event_time) for e in events)


def _parse_time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def prefilter(event: ObjectEvent) -> str:
    """The reason to skip an object from its event alone, or '' when it must be probed."""
    if event.key.endswith("/"):
        return Reason.FOLDER_MARKER
    if not event.key.lower().endswith(IMAGE_EXTENSIONS):
        return Reason.not_image_extension(event.key)
    if event.size == 0:
        return Reason.EMPTY
    if event.size > MAX_IMAGE_BYTES:
        return Reason.too_large(event.size)
    return ""


def judge(probe: Probe) -> str:
    """The reason to skip an object from what is stored now, or '' to classify it."""
    if not probe.exists:
        return Reason.DELETED
    if probe.size == 0:
        return Reason.EMPTY
    if probe.size > MAX_IMAGE_BYTES:
        return Reason.too_large(probe.size)
    if not probe.head.startswith(_SIGNATURES):
        return Reason.NOT_IMAGE_CONTENT
    # One image the decoder gives up on would fail the whole transform job.
    problem = check_image(probe.head, probe.size).problem
    return Reason.undecodable(probe.head, problem) if problem else ""


def build_batch(events: Iterable[ObjectEvent], *, bucket: str, probe: ProbeFn) -> Batch | None:
    """The batch of these events' objects in `bucket` under incoming/ (None if there are none)."""
    mine = unique_events(
        e for e in events if e.bucket == bucket and e.key.startswith(INCOMING_PREFIX)
    )
    if not mine:
        return None
    to_probe = [event for event in mine if not prefilter(event)]
    with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
        probes = dict(zip(to_probe, pool.map(probe, to_probe), strict=True))
    images, skipped = [], []
    for event in mine:
        reason = prefilter(event)
        found = probes.get(event)
        if not reason and found is not None:
            reason = judge(found)
            if not reason:
                images.append(Image(found.key, found.size, found.version_id, event.event_time))
                continue
        skipped.append(
            Skipped(
                key=found.key if found and found.exists else event.key,
                size=found.size if found and found.exists else event.size,
                version_id=event.version_id,
                reason=reason,
            )
        )
    return Batch(
        paths=BatchPaths(bucket=bucket, batch_id=batch_id_for(mine)),
        created_at=f"{_earliest(mine):%Y-%m-%dT%H:%M:%SZ}",
        images=tuple(images),
        skipped=tuple(skipped),
    )


def s3_probe(s3_client) -> ProbeFn:
    """Reads the header of the object's current version, trying each candidate key.

    The first `HEADER_BYTES` hold the header of almost every photo; a longer header
    is read whole (the object is at most 6 MB by then).
    """

    def probe(event: ObjectEvent) -> Probe:
        for key in event.candidate_keys:
            try:
                response = s3_client.get_object(
                    Bucket=event.bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}"
                )
            except ClientError as error:
                if is_missing(error):
                    continue
                if (
                    error.response["Error"]["Code"] == "InvalidRange"
                ):  # an empty object has no byte 0
                    return Probe(key=key, exists=True, size=0)
                raise
            with response["Body"] as body:
                head = body.read()
            total = response.get("ContentRange", "").rpartition("/")[2]
            size = int(total) if total.isdigit() else int(response.get("ContentLength", 0))
            version_id = response.get("VersionId") or ""
            if size <= MAX_IMAGE_BYTES and check_image(head, size).need_more:
                head = _read_whole(s3_client, event.bucket, key)
            return Probe(key=key, exists=True, size=size, version_id=version_id, head=head)
        return Probe(key=event.key, exists=False)

    return probe


def _read_whole(s3_client, bucket: str, key: str) -> bytes:
    """The current version, as the transform job reads it (the manifest names keys only)."""
    with s3_client.get_object(Bucket=bucket, Key=key)["Body"] as body:
        return body.read()
