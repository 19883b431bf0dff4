"""An 81-class evaluation set shaped like the Grocery Store Dataset, generated (no dataset needed).

The 43 coarse classes and how many fine classes each has follow the public
dataset's classes.csv (https://github.com/marcusklasson/GroceryStoreDataset);
the fine names are made up, one of them as long as the dataset's longest
(38 characters). Predictions are deterministic: every class keeps most of its
images, loses some to its neighbour inside its coarse class and one to a class
of another coarse class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# (coarse name, number of fine classes), in coarse-id order.
GROUPS = [
    ("Apple", 5), ("Avocado", 1), ("Banana", 1), ("Kiwi", 1), ("Lemon", 1), ("Lime", 1),
    ("Mango", 1), ("Melon", 4), ("Nectarine", 1), ("Orange", 1), ("Papaya", 1),
    ("Passion-Fruit", 1), ("Peach", 1), ("Pear", 3), ("Pineapple", 1), ("Plum", 1),
    ("Pomegranate", 1), ("Red-Grapefruit", 1), ("Satsumas", 1), ("Juice", 10), ("Milk", 6),
    ("Oatghurt", 1), ("Oat-Milk", 1), ("Sour-Cream", 2), ("Sour-Milk", 1), ("Soyghurt", 2),
    ("Soy-Milk", 2), ("Yoghurt", 6), ("Asparagus", 1), ("Aubergine", 1), ("Cabbage", 1),
    ("Carrots", 1), ("Cucumber", 1), ("Garlic", 1), ("Ginger", 1), ("Leek", 1),
    ("Mushroom", 1), ("Onion", 1), ("Pepper", 4), ("Potato", 3), ("Red-Beet", 1),
    ("Tomato", 3), ("Zucchini", 1),
]  # fmt: skip
LONG_NAME = "God-Morgon-Orange-Red-Grapefruit-Juice"


def labels_and_coarse() -> tuple[list[str], list[str]]:
    labels: list[str] = []
    coarse: list[str] = []
    for name, size in GROUPS:
        for k in range(size):
            labels.append(name if size == 1 else f"{name}-Variety-{k + 1}")
            coarse.append(name)
    labels[labels.index("Juice-Variety-5")] = LONG_NAME
    return labels, coarse


def predictions() -> list[tuple[int, int]]:
    """(true class, predicted class) per image: 20 to 44 images per class, ~90% right."""
    labels, coarse = labels_and_coarse()
    pairs: list[tuple[int, int]] = []
    for truth in range(len(labels)):
        support = 20 + (7 * truth) % 25
        inside = [c for c in range(len(labels)) if coarse[c] == coarse[truth] and c != truth]
        neighbour = inside[0] if inside else truth
        far = (truth + 40) % len(labels)
        wrong = [neighbour] * (1 + truth % 3) + [far]
        pairs += [(truth, p) for p in wrong] + [(truth, truth)] * (support - len(wrong))
    return pairs


def confusion() -> list[list[int]]:
    labels, _ = labels_and_coarse()
    counts = [[0] * len(labels) for _ in labels]
    for truth, predicted in predictions():
        counts[truth][predicted] += 1
    return counts


@dataclass
class Files:
    truth: Path
    labels: Path
    manifest: Path
    results: Path


def write_files(root: Path) -> Files:
    """labels.json, manifest.json (with coarse_labels), test.lst and results.jsonl."""
    labels, coarse = labels_and_coarse()
    root.mkdir(parents=True, exist_ok=True)
    files = Files(
        root / "test.lst", root / "labels.json", root / "manifest.json", root / "results.jsonl"
    )
    files.labels.write_text(json.dumps(labels))
    files.manifest.write_text(json.dumps({"labels": labels, "coarse_labels": coarse}))
    lines, rows = [], []
    for index, (truth, predicted) in enumerate(predictions()):
        path = f"{labels[truth]}/{labels[truth]}_{index:04d}.jpg"
        lines.append(f"{index}\t{truth}\t{path}\n")
        guess = {"label": labels[predicted], "class_id": predicted, "confidence": 0.8}
        rows.append(json.dumps({"image": f"s3://b/incoming/eval/{path}", **guess}) + "\n")
    files.truth.write_text("".join(lines))
    files.results.write_text("".join(rows))
    return files
