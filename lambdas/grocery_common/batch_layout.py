"""Where a batch keeps its things in the inference bucket, and how S3 URIs are written.

Shared by the batch trigger, the batch decode step and `python -m grocery batch`.
The prefixes equal those of `stacks/names.py` (a test keeps them equal): Lambda
assets do not ship `stacks/`.

    incoming/...                          uploads (the only prefix that starts a batch)
    batches/<batch id>/batch.json         the batch record: images, skipped objects, input
    batches/<batch id>/manifest.json      the transform job's ManifestFile
    batches/<batch id>/status.json        written by the state machine when a run ends
    predictions/<batch id>/<run>/...      the transform job's .out files, one folder per run
    results/<batch id>.jsonl | .csv       the labelled results
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

INCOMING_PREFIX = "incoming/"
PREDICTIONS_PREFIX = "predictions/"
RESULTS_PREFIX = "results/"
# Batch records live where no rule listens: writing them never starts anything.
BATCHES_PREFIX = "batches/"

# `20261125-132557-0123456789ab`: the earliest event time (UTC) and a hash of the batch's objects.
BATCH_ID_PATTERN = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{12}$")

_S3_URI = re.compile(r"^s3://([^/]+)/(.*)$")
# GetObject says NoSuchKey; HeadObject, which has no body, says 404.
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key"); ValueError for anything else."""
    match = _S3_URI.match(uri or "")
    if not match or not match.group(2):
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return match.group(1), match.group(2)


def is_missing(error: Exception) -> bool:
    """True when a botocore ClientError of S3 means the object does not exist."""
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code") in _MISSING


@dataclasses.dataclass(frozen=True)
class BatchPaths:
    bucket: str
    batch_id: str

    @property
    def folder(self) -> str:
        return f"{BATCHES_PREFIX}{self.batch_id}/"

    @property
    def record_key(self) -> str:
        return f"{self.folder}batch.json"

    @property
    def manifest_key(self) -> str:
        return f"{self.folder}manifest.json"

    @property
    def status_key(self) -> str:
        return f"{self.folder}status.json"

    @property
    def predictions_prefix(self) -> str:
        """The state machine appends `<execution name>/`: every run writes its own folder."""
        return f"{PREDICTIONS_PREFIX}{self.batch_id}/"

    @property
    def results_jsonl_key(self) -> str:
        return f"{RESULTS_PREFIX}{self.batch_id}.jsonl"

    @property
    def results_csv_key(self) -> str:
        return f"{RESULTS_PREFIX}{self.batch_id}.csv"

    def execution_input(self, *, image_count: int, skipped_count: int) -> dict[str, Any]:
        """The batch state machine's input: everything it needs, nothing it must derive."""
        return {
            "batch_id": self.batch_id,
            "bucket": self.bucket,
            "image_count": image_count,
            "skipped_count": skipped_count,
            "record_key": self.record_key,
            "manifest_uri": s3_uri(self.bucket, self.manifest_key),
            "status_key": self.status_key,
            "predictions_prefix": self.predictions_prefix,
            "results": {
                "jsonl_key": self.results_jsonl_key,
                "csv_key": self.results_csv_key,
            },
        }
