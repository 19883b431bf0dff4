"""A small results/truth pair whose answers were worked out by hand (see KNOWN below)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

LABELS = ["Granny-Smith", "Pink-Lady", "Oat-Milk"]
COARSE = ["Apple", "Apple", "Milk"]

# (truth path, true class, predicted ranking best first, top-1 confidence)
# Confusion (rows true, columns predicted):
#   Granny-Smith [3, 1, 0]   Pink-Lady [1, 2, 0]   Oat-Milk [0, 1, 2]
SCORED = [
    ("Granny-Smith/gs_1.jpg", 0, [0, 1], 0.95),
    ("Granny-Smith/gs_2.jpg", 0, [0, 2], 0.85),
    ("Granny-Smith/gs_3.jpg", 0, [0, 1], 0.75),
    ("Granny-Smith/gs_4.jpg", 0, [1, 0], 0.55),
    ("Pink-Lady/pl_1.jpg", 1, [1, 0], 0.95),
    ("Pink-Lady/pl_2.jpg", 1, [1, 2], 0.65),
    ("Pink-Lady/pl_3.jpg", 1, [0, 1], 0.45),
    ("Oat-Milk/om_1.jpg", 2, [2, 0], 0.99),
    ("Oat-Milk/om_2.jpg", 2, [2, 1], 0.91),
    # matched by file name only: the result lives under another folder
    ("Oat-Milk/om_3.jpg", 2, [1, 0], 0.40),
]
UNCLASSIFIED = ("Pink-Lady/pl_4.jpg", 1)  # its row has status "skipped"
TRUTH_ONLY = ("Oat-Milk/om_4.jpg", 2)  # no row at all
RESULTS_ONLY = "incoming/b1/Granny-Smith/not_in_truth.jpg"
BUCKET = "s3://grocery-inference-bucket"

KNOWN = {
    "top1": 7 / 10,
    "top5": 9 / 10,  # om_3's ranking [Pink-Lady, Granny-Smith] misses Oat-Milk
    "precision": [3 / 4, 2 / 4, 2 / 2],
    "recall": [3 / 4, 2 / 3, 2 / 3],
    "f1": [6 / 8, 4 / 7, 4 / 5],  # 2TP / (2TP + FP + FN)
    "support": [4, 3, 3],
    "predicted": [4, 4, 2],
    "coarse": 9 / 10,  # only om_3 (Milk taken for an Apple) is wrong at the coarse level
}


@dataclass
class Dataset:
    root: Path
    truth: Path
    labels: Path
    manifest: Path
    jsonl: Path
    out_dir: Path


def _row(path: str, ranking: list[int], confidence: float, key_prefix: str) -> dict:
    others = (1.0 - confidence) / max(1, len(ranking) - 1)
    return {
        "image": f"{BUCKET}/{key_prefix}{path}",
        "status": "classified",
        "label": LABELS[ranking[0]],
        "class_id": ranking[0],
        "confidence": confidence,
        "top_k": [
            {"label": LABELS[c], "class_id": c, "confidence": confidence if i == 0 else others}
            for i, c in enumerate(ranking)
        ],
        "model": "grocery-model-1",
        "batch_id": "b1",
        "reason": None,
    }


def _unclassified(image: str, reason: str, status: str = "skipped") -> dict:
    """A row as the batch stack writes it for an object it did not classify."""
    return {
        "image": image,
        "status": status,
        "label": None,
        "class_id": None,
        "confidence": None,
        "top_k": [],
        "model": "grocery-model-1",
        "batch_id": "b1",
        "reason": reason,
    }


def _probabilities(ranking: list[int], confidence: float) -> list[float]:
    """A full probability vector whose order is the ranking (then the remaining classes)."""
    order = ranking + [c for c in range(len(LABELS)) if c not in ranking]
    rest = 1.0 - confidence
    values = [0.0] * len(LABELS)
    values[order[0]] = confidence
    for position, class_id in enumerate(order[1:]):
        values[class_id] = rest * (0.6 if position == 0 else 0.4 / max(1, len(order) - 2))
    return values


def write_dataset(root: Path) -> Dataset:
    root.mkdir(parents=True, exist_ok=True)
    truth_rows = [(p, c) for p, c, _, _ in SCORED] + [UNCLASSIFIED, TRUTH_ONLY]
    truth = root / "test.lst"
    truth.write_text("".join(f"{i}\t{c}\t{p}\n" for i, (p, c) in enumerate(truth_rows)))
    labels = root / "labels.json"
    labels.write_text(json.dumps(LABELS))
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"labels": LABELS, "coarse_labels": COARSE}))

    rows = []
    for path, _, ranking, confidence in SCORED:
        if path == "Oat-Milk/om_3.jpg":
            rows.append(_row("om_3.jpg", ranking, confidence, "incoming/other-folder/"))
        else:
            rows.append(_row(path, ranking, confidence, "incoming/b1/"))
    rows.append(_unclassified(f"{BUCKET}/incoming/b1/{UNCLASSIFIED[0]}", "not an image"))
    rows.append(
        _row("Granny-Smith/not_in_truth.jpg", [0, 1], 0.9, "incoming/b1/")
        | {"image": f"{BUCKET}/{RESULTS_ONLY}"}
    )
    rows.append(_row("Granny-Smith/gs_1.jpg", [1, 0], 0.5, "incoming/b2/"))  # a duplicate
    jsonl = root / "results.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows))

    out_dir = root / "predictions"
    for path, _, ranking, confidence in SCORED:
        file = out_dir / "incoming" / f"{path}.out"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps({"prediction": _probabilities(ranking, confidence)}))
    return Dataset(root, truth, labels, manifest, jsonl, out_dir)


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return write_dataset(tmp_path / "data")
