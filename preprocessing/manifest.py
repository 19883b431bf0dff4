"""Write labels.json, manifest.json and rejected.csv, the files that describe a prepared dataset.

manifest.json is what the training pipeline reads from S3: keep ``num_classes`` and
``num_training_samples`` (ints) and the channel paths stable.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

MANIFEST = "manifest.json"
LABELS = "labels.json"
REJECTED = "rejected.csv"
FORMAT_VERSION = 1


def lst_relpath(channel: str) -> str:
    return f"{channel}_lst/{channel}.lst"


def write_json(path: Path, payload: object) -> None:
    """Write JSON atomically (a reader never sees half a manifest)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_rejected(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """rejected.csv: one row per unused input file (path relative to the source, reason, detail)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "reason", "detail"])
        writer.writerows(sorted(rows))


def read_rejected(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def reason_counts(rows: list[tuple[str, str, str]]) -> dict[str, int]:
    return dict(sorted(Counter(reason for _, reason, _ in rows).items()))
