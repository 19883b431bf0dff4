"""Top-5 accuracy with more than five classes: rank 5 counts, rank 6 does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grocery.__main__ import main
from grocery_common.evaluation import Sample, evaluate, top_k_correct

LABELS = [f"Class-{i}" for i in range(7)]
# Truth 0 in every sample; the ranking puts it at rank 1, 5, 6 and 7 (not at all in the top 5).
RANK_5 = (1, 2, 3, 4, 0, 5)
RANK_6 = (1, 2, 3, 4, 5, 0)


def test_rank_5_counts_and_rank_6_does_not():
    samples = [Sample(0, (0, 1, 2, 3, 4, 5)), Sample(0, RANK_5), Sample(0, RANK_6)]
    assert top_k_correct(samples, 5) == 2
    result = evaluate(samples, LABELS)
    assert (result.top1_correct, result.top5_correct) == (1, 2)
    assert result.top5_accuracy == pytest.approx(2 / 3)
    assert evaluate([Sample(0, RANK_6)], LABELS).top5_accuracy == 0.0
    assert evaluate([Sample(0, RANK_5)], LABELS).top5_accuracy == 1.0


def _files(tmp_path: Path) -> tuple[Path, Path]:
    truth = tmp_path / "test.lst"
    truth.write_text("0\t0\tClass-0/a.jpg\n1\t0\tClass-0/b.jpg\n")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABELS))
    return truth, labels


def _metrics(results: Path, truth: Path, labels: Path, out: Path) -> dict:
    args = ["evaluate", "--results", str(results), "--truth", str(truth)]
    assert main([*args, "--labels", str(labels), "--out", str(out)]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_results_rows_with_six_guesses(tmp_path):
    """A row's top_k may list six guesses; only the first five count for top-5."""
    truth, labels = _files(tmp_path)

    def row(image: str, ranking: tuple[int, ...]) -> str:
        top_k = [{"label": LABELS[c], "class_id": c, "confidence": 0.1} for c in ranking]
        first = {"label": LABELS[ranking[0]], "class_id": ranking[0], "confidence": 0.5}
        return json.dumps({"image": image, **first, "top_k": top_k}) + "\n"

    results = tmp_path / "r.jsonl"
    results.write_text(
        row("s3://b/x/Class-0/a.jpg", RANK_5) + row("s3://b/x/Class-0/b.jpg", RANK_6)
    )
    metrics = _metrics(results, truth, labels, tmp_path / "report")
    assert (metrics["top1_correct"], metrics["top5_correct"]) == (0, 1)
    assert metrics["top5_accuracy"] == 0.5


def test_transform_outputs_decoded_to_five(tmp_path):
    """A .out file's probabilities rank the truth 5th (counted) or 6th (not counted)."""
    truth, labels = _files(tmp_path)
    folder = tmp_path / "predictions"
    (folder / "Class-0").mkdir(parents=True)
    for name, ranking in (("a.jpg", RANK_5), ("b.jpg", RANK_6)):
        probabilities = [0.0] * len(LABELS)
        for position, class_id in enumerate((*ranking, 6)):
            probabilities[class_id] = [0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05][position]
        (folder / "Class-0" / f"{name}.out").write_text(json.dumps({"prediction": probabilities}))
    metrics = _metrics(folder, truth, labels, tmp_path / "report")
    assert (metrics["top1_correct"], metrics["top5_correct"]) == (0, 1)
