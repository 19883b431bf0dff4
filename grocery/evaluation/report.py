"""The evaluation report's content: the scored images and every number (`metrics.json`).

report.md is rendered by `markdown.py`, the pictures by `figures.py`; `write.py`
writes the files.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from grocery.errors import CommandError
from grocery.evaluation.coarse import coarse_confusion
from grocery.evaluation.inputs import Results, TruthEntry
from grocery.evaluation.join import BY_FILE_NAME, Joined
from grocery_common.evaluation import Evaluation, EvaluationError, Sample, evaluate

FORMAT_VERSION = 1
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    evaluation: Evaluation
    joined: Joined
    labels: list[str]
    coarse_labels: list[str] | None
    inputs: dict[str, Any]
    models: tuple[str, ...]
    batch_ids: tuple[str, ...]
    truth_images: int
    result_rows: int
    generated_at: str

    @property
    def counts(self) -> dict[str, int]:
        joined = self.joined
        return {
            "truth_images": self.truth_images,
            "result_rows": self.result_rows,
            "matched": len(joined.matches),
            "matched_by_file_name": sum(1 for m in joined.matches if m.rule == BY_FILE_NAME),
            "evaluated": len(joined.evaluated),
            "unclassified": len(joined.unclassified),
            "results_only": len(joined.results_only),
            "truth_only": len(joined.truth_only),
            "duplicates": len(joined.duplicates),
        }

    @property
    def top1_accuracy_over_truth(self) -> float:
        """Strict: every truth image without a usable prediction counts as wrong."""
        return self.evaluation.top1_correct / self.truth_images

    @property
    def coverage(self) -> float:
        return len(self.joined.evaluated) / self.truth_images


def build_report(
    *,
    results: Results,
    truth: list[TruthEntry],
    joined: Joined,
    labels: list[str],
    coarse_labels: list[str] | None,
    inputs: dict[str, Any],
) -> EvaluationReport:
    if not joined.matches:
        example = (
            f" (e.g. result {results.entries[0].key!r} vs truth {truth[0].path!r})"
            if results.entries
            else ""
        )
        raise CommandError(
            "no result matches a truth line by path or file name"
            f"{example}: pass the results and the .lst of the same images (see docs/evaluation.md)"
        )
    if not joined.evaluated:
        raise CommandError(
            f"all {len(joined.matches)} matched images are unclassified in the results "
            "(skipped or without class_id): there is nothing to score"
        )
    samples = [
        Sample(truth=m.truth.class_id, ranking=m.result.ranking, confidence=m.result.confidence)
        for m in joined.evaluated
    ]
    try:
        evaluation = evaluate(samples, labels, coarse_labels=coarse_labels)
    except EvaluationError as error:
        raise CommandError(str(error)) from None
    entries = results.entries
    return EvaluationReport(
        evaluation=evaluation,
        joined=joined,
        labels=labels,
        coarse_labels=coarse_labels,
        inputs=inputs,
        models=tuple(sorted({e.model for e in entries if e.model})),
        batch_ids=tuple(sorted({e.batch_id for e in entries if e.batch_id})),
        truth_images=len(truth),
        result_rows=len(entries),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


# --------------------------------------------------------------------------- metrics.json


def _coarse_matrix(report: EvaluationReport) -> dict[str, Any] | None:
    """The confusion matrix summed by coarse class (Apple, Juice, ...), when they are known."""
    if report.coarse_labels is None:
        return None
    names, counts = coarse_confusion(report.evaluation.confusion, report.coarse_labels)
    return {
        "labels": names,
        "rows": "true coarse class",
        "columns": "predicted coarse class",
        "counts": counts,
    }


def metrics_document(report: EvaluationReport) -> dict[str, Any]:
    joined = report.joined
    labels = report.labels
    return {
        "format_version": FORMAT_VERSION,
        "generated_at": report.generated_at,
        "inputs": report.inputs,
        "models": list(report.models),
        "batch_ids": list(report.batch_ids),
        "counts": report.counts,
        "coverage": report.coverage,
        "top1_accuracy_over_truth": report.top1_accuracy_over_truth,
        **report.evaluation.to_dict(),
        "coarse_confusion_matrix": _coarse_matrix(report),
        "unclassified": [
            {
                "image": m.result.key,
                "reason": m.result.reason,
                "at": m.result.location,
                "truth": labels[m.truth.class_id],
            }
            for m in joined.unclassified
        ],
        "unclassified_reasons": dict(Counter(m.result.reason for m in joined.unclassified)),
        "results_only": [
            {"image": r.key, "at": r.location, **({"reason": r.reason} if r.reason else {})}
            for r in joined.results_only
        ],
        "truth_only": [
            {"path": t.path, "line": t.line, "class_id": t.class_id, "label": labels[t.class_id]}
            for t in joined.truth_only
        ],
        "duplicates": [
            {"image": m.result.key, "at": m.result.location, "truth_path": m.truth.path}
            for m in joined.duplicates
        ],
    }
