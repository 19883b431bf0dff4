"""Turns a transform job's `.out` files into one labelled row per object of the batch.

Memory stays bounded whatever the batch size: outputs are fetched by a thread
pool in windows of `WINDOW` objects and every row is streamed to temporary
files as soon as it is decoded. Every object of the batch gets exactly one row:
classified, failed (with the reason) or skipped (with the trigger's reason).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from batch_decode.outcome import JobFailure
from grocery_common.batch_layout import is_missing, s3_uri
from grocery_common.labels import DEFAULT_TOP_K, LabelError, decode, parse_probabilities
from grocery_common.transform_outputs import find_outputs

WORKERS = 32
WINDOW = 256

FIELDS = (
    "image",
    "status",
    "label",
    "class_id",
    "confidence",
    "top_k",
    "model",
    "batch_id",
    "reason",
)


class Status:
    CLASSIFIED = "classified"
    FAILED = "failed"
    SKIPPED = "skipped"


DELETED_BEFORE_JOB = "deleted before the transform job ran"
NO_OUTPUT = "no prediction: the transform job wrote no output for it"


@dataclasses.dataclass
class Summary:
    images: int = 0
    classified: int = 0
    failed: int = 0
    skipped: int = 0
    unmatched_outputs: int = 0
    without_output: int = 0  # images the job wrote no output for (deleted or refused)
    deleted: int = 0  # those of them deleted before the job read them

    def count(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)


class ResultWriter:
    """Streams rows to a .jsonl and a .csv temporary file (see FIELDS)."""

    def __init__(self) -> None:
        self.jsonl = tempfile.NamedTemporaryFile("w+", encoding="utf-8", suffix=".jsonl")  # noqa: SIM115
        self.csv_file = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w+", encoding="utf-8", newline="", suffix=".csv"
        )
        self._csv = csv.writer(self.csv_file)
        self._csv.writerow(FIELDS)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Appends rows (a window at a time: fewer, larger writes)."""
        self.jsonl.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self._csv.writerows(_csv_cells(row) for row in rows)

    def close(self) -> None:
        for handle in (self.jsonl, self.csv_file):
            handle.close()

    def flush(self) -> tuple[str, str]:
        for handle in (self.jsonl, self.csv_file):
            handle.flush()
        return self.jsonl.name, self.csv_file.name


def _csv_cells(row: dict[str, Any]) -> list[Any]:
    cells = []
    for field in FIELDS:
        value = row[field]
        if field == "top_k":
            value = "; ".join(f"{g['label']}={g['confidence']:.4f}" for g in value)
        elif field == "confidence" and value is not None:
            value = f"{value:.6f}"
        cells.append("" if value is None else value)
    return cells


def _row(image: str, status: str, *, model: str, batch_id: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FIELDS)
    row.update(image=image, status=status, model=model, batch_id=batch_id, top_k=[])
    row.update(fields)
    return row


@dataclasses.dataclass(frozen=True)
class BatchToDecode:
    bucket: str
    batch_id: str
    model: str
    images: Sequence[str]  # keys, in the batch record's order
    skipped: Sequence[dict[str, Any]]  # {"key", "reason", ...} from the batch record
    predictions_prefix: str
    failure: JobFailure | None = None  # why the transform job failed, if it did


def decode_batch(
    s3,
    batch: BatchToDecode,
    labels_loader: Callable[[], Sequence[str]],
    writer: ResultWriter,
    *,
    top_k: int = DEFAULT_TOP_K,
    workers: int = WORKERS,
    window: int = WINDOW,
) -> Summary:
    """Writes one row per object of the batch; the labels are loaded only if an output exists."""
    summary = Summary(images=len(batch.images))
    outputs, unmatched = find_outputs(s3, batch.bucket, batch.predictions_prefix, batch.images)
    summary.unmatched_outputs = len(unmatched)
    labels = labels_loader() if outputs else ()
    common = {"model": batch.model, "batch_id": batch.batch_id}

    def row_for(key: str) -> dict[str, Any]:
        image = s3_uri(batch.bucket, key)
        out_key = outputs.get(key)
        if out_key is None:
            return _row(image, Status.FAILED, reason=_missing_reason(s3, batch, key), **common)
        try:
            body = s3.get_object(Bucket=batch.bucket, Key=out_key)["Body"].read()
            prediction = decode(parse_probabilities(body), labels, top_k)
        except (LabelError, ClientError) as error:
            reason = f"unreadable model output {s3_uri(batch.bucket, out_key)}: {error}"
            return _row(image, Status.FAILED, reason=reason, **common)
        return _row(image, Status.CLASSIFIED, **prediction.to_dict(), **common)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(batch.images), window):
            rows = list(pool.map(row_for, batch.images[start : start + window]))
            writer.write(rows)
            for key, row in zip(batch.images[start : start + window], rows, strict=True):
                summary.count(row["status"])
                if key not in outputs:
                    summary.without_output += 1
                    summary.deleted += row["reason"] == DELETED_BEFORE_JOB
    writer.write(
        [
            _row(s3_uri(batch.bucket, s["key"]), Status.SKIPPED, reason=s["reason"], **common)
            for s in batch.skipped
        ]
    )
    summary.skipped += len(batch.skipped)
    return summary


def _missing_reason(s3, batch: BatchToDecode, key: str) -> str:
    try:
        s3.head_object(Bucket=batch.bucket, Key=key)
    except ClientError as error:
        if is_missing(error):
            return DELETED_BEFORE_JOB
        raise
    if batch.failure:
        return f"{NO_OUTPUT} (the job failed: {batch.failure.reason})"
    return NO_OUTPUT
