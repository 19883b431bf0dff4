"""Classification metrics for a labelled evaluation set, in pure Python.

No numpy on purpose: the same code runs in a training-pipeline Lambda (the
optional test-set gate) and in the operator CLI (`python -m grocery evaluate`).

Input is one `Sample` per image: the true class id and the model's ranking
(class ids, best first; the first is the top-1 prediction) with the top-1
confidence when known. `evaluate()` returns every number of the report;
`Evaluation.to_dict()` is JSON-ready.

Conventions (the same as scikit-learn's with `zero_division=0`, written out):

- precision of a class = TP / (TP + FP); `None` when nothing was predicted as it;
- recall of a class = TP / (TP + FN) = TP / support; `None` when its support is 0;
- F1 of a class = 2 TP / (2 TP + FP + FN), the harmonic mean of precision and
  recall when both exist, 0 when TP is 0;
- macro averages are over the classes present in the truth (support > 0),
  an undefined precision counting as 0 (a class that is never predicted although
  it is present has failed); `macro_recall` is the balanced accuracy;
- weighted averages weight each class by its support.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

DEFAULT_CONFUSED_PAIRS = 10
DEFAULT_CALIBRATION_BINS = 10


class EvaluationError(ValueError):
    """The samples or the label lists are unusable; the message says why."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One evaluated image: true class id, ranked predicted class ids (best first)."""

    truth: int
    ranking: tuple[int, ...]
    confidence: float | None = None

    @property
    def predicted(self) -> int:
        return self.ranking[0]


@dataclasses.dataclass(frozen=True)
class ClassMetrics:
    class_id: int
    label: str
    support: int  # true images of the class
    predicted: int  # images predicted as the class
    true_positives: int
    precision: float | None
    recall: float | None
    f1: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ConfusedPair:
    """`count` images of `truth` were predicted as `predicted` (`share` of the truth class)."""

    truth_id: int
    truth: str
    predicted_id: int
    predicted: str
    count: int
    share: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class CalibrationBin:
    """Images whose top-1 confidence is in [lower, upper) (the last bin includes 1.0)."""

    lower: float
    upper: float
    count: int
    accuracy: float | None
    mean_confidence: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    labels: tuple[str, ...]
    samples: int
    top1_correct: int
    top5_correct: int
    top1_accuracy: float
    top5_accuracy: float
    classes: tuple[ClassMetrics, ...]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    weighted_f1: float
    confusion: tuple[tuple[int, ...], ...]  # confusion[truth][predicted]
    confused_pairs: tuple[ConfusedPair, ...]
    coarse_accuracy: float | None = None
    coarse_classes: int | None = None
    errors_within_coarse_class: int | None = None
    calibration: tuple[CalibrationBin, ...] = ()
    expected_calibration_error: float | None = None
    mean_confidence_correct: float | None = None
    mean_confidence_wrong: float | None = None

    @property
    def classes_in_truth(self) -> int:
        return sum(1 for c in self.classes if c.support)

    def to_dict(self, *, include_confusion: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "samples": self.samples,
            "top1_correct": self.top1_correct,
            "top5_correct": self.top5_correct,
            "top1_accuracy": self.top1_accuracy,
            "top5_accuracy": self.top5_accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
            "classes_in_truth": self.classes_in_truth,
            "coarse": None
            if self.coarse_accuracy is None
            else {
                "accuracy": self.coarse_accuracy,
                "classes": self.coarse_classes,
                "errors_within_coarse_class": self.errors_within_coarse_class,
            },
            "calibration": {
                "expected_calibration_error": self.expected_calibration_error,
                "mean_confidence_correct": self.mean_confidence_correct,
                "mean_confidence_wrong": self.mean_confidence_wrong,
                "bins": [b.to_dict() for b in self.calibration],
            }
            if self.calibration
            else None,
            "per_class": [c.to_dict() for c in self.classes],
            "confused_pairs": [p.to_dict() for p in self.confused_pairs],
        }
        if include_confusion:
            data["confusion_matrix"] = {
                "rows": "true class id",
                "columns": "predicted class id",
                "counts": [list(row) for row in self.confusion],
            }
        return data


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _check_samples(samples: Sequence[Sample], num_classes: int) -> None:
    for index, sample in enumerate(samples):
        if not sample.ranking:
            raise EvaluationError(f"sample {index} has no prediction (empty ranking)")
        for class_id in (sample.truth, *sample.ranking):
            if isinstance(class_id, bool) or not isinstance(class_id, int):
                raise EvaluationError(f"sample {index}: class id {class_id!r} is not an integer")
            if not 0 <= class_id < num_classes:
                raise EvaluationError(
                    f"sample {index}: class id {class_id} is outside the {num_classes} labels "
                    f"(0..{num_classes - 1})"
                )
        if sample.confidence is not None and not (
            math.isfinite(sample.confidence) and 0.0 <= sample.confidence <= 1.0
        ):
            raise EvaluationError(
                f"sample {index}: confidence {sample.confidence!r} is not a probability in [0, 1]"
            )


def confusion_counts(samples: Iterable[Sample], num_classes: int) -> list[list[int]]:
    """counts[truth][predicted] over the top-1 predictions."""
    counts = [[0] * num_classes for _ in range(num_classes)]
    for sample in samples:
        counts[sample.truth][sample.predicted] += 1
    return counts


def top_k_correct(samples: Iterable[Sample], k: int) -> int:
    """How many samples have their true class among the first k of their ranking."""
    if k < 1:
        raise EvaluationError(f"k must be at least 1, got {k}")
    return sum(1 for s in samples if s.truth in s.ranking[:k])


def per_class_metrics(
    confusion: Sequence[Sequence[int]], labels: Sequence[str]
) -> list[ClassMetrics]:
    """Precision, recall, F1 and support per class from a confusion matrix."""
    num_classes = len(labels)
    column_sums = [sum(confusion[t][p] for t in range(num_classes)) for p in range(num_classes)]
    metrics = []
    for class_id, label in enumerate(labels):
        tp = confusion[class_id][class_id]
        support = sum(confusion[class_id])
        predicted = column_sums[class_id]
        fp, fn = predicted - tp, support - tp
        metrics.append(
            ClassMetrics(
                class_id=class_id,
                label=label,
                support=support,
                predicted=predicted,
                true_positives=tp,
                precision=_ratio(tp, predicted),
                recall=_ratio(tp, support),
                f1=_ratio(2 * tp, 2 * tp + fp + fn) or 0.0,
            )
        )
    return metrics


def most_confused_pairs(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], limit: int = DEFAULT_CONFUSED_PAIRS
) -> list[ConfusedPair]:
    """The largest off-diagonal cells: (truth, predicted), most images first, then by ids."""
    cells = [
        (count, truth, predicted)
        for truth, row in enumerate(confusion)
        for predicted, count in enumerate(row)
        if truth != predicted and count
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    return [
        ConfusedPair(
            truth_id=truth,
            truth=labels[truth],
            predicted_id=predicted,
            predicted=labels[predicted],
            count=count,
            share=count / sum(confusion[truth]),
        )
        for count, truth, predicted in cells[:limit]
    ]


def coarse_accuracy(samples: Sequence[Sample], coarse_of: Sequence[str]) -> float | None:
    """Share of samples whose top-1 prediction has the true class's coarse class."""
    if not samples:
        return None
    hits = sum(1 for s in samples if coarse_of[s.truth] == coarse_of[s.predicted])
    return hits / len(samples)


def calibration_bins(
    samples: Sequence[Sample], bins: int = DEFAULT_CALIBRATION_BINS
) -> list[CalibrationBin]:
    """Top-1 accuracy per confidence bin (a reliability diagram), for samples with a confidence."""
    grouped: list[list[Sample]] = [[] for _ in range(bins)]
    for sample in samples:
        if sample.confidence is not None:
            grouped[min(int(sample.confidence * bins), bins - 1)].append(sample)
    return [
        CalibrationBin(
            lower=index / bins,
            upper=(index + 1) / bins,
            count=len(members),
            accuracy=_ratio(sum(1 for s in members if s.truth == s.predicted), len(members)),
            mean_confidence=_ratio(sum(s.confidence for s in members), len(members)),  # type: ignore[misc]
        )
        for index, members in enumerate(grouped)
    ]


def expected_calibration_error(bins: Sequence[CalibrationBin]) -> float | None:
    """Σ (bin count / total) · |bin accuracy - bin mean confidence|."""
    total = sum(b.count for b in bins)
    if not total:
        return None
    return sum(
        b.count / total * abs(b.accuracy - b.mean_confidence)  # type: ignore[operator]
        for b in bins
        if b.count
    )


def _mean_confidence(samples: Iterable[Sample]) -> float | None:
    values = [s.confidence for s in samples if s.confidence is not None]
    return _ratio(sum(values), len(values))


def evaluate(
    samples: Iterable[Sample],
    labels: Sequence[str],
    *,
    coarse_labels: Sequence[str] | None = None,
    top_k: int = 5,
    confused_pairs: int = DEFAULT_CONFUSED_PAIRS,
) -> Evaluation:
    """Every metric of the report for `samples` (at least one) over the classes `labels`."""
    samples = list(samples)
    num_classes = len(labels)
    if not num_classes:
        raise EvaluationError("the label list is empty")
    if not samples:
        raise EvaluationError(
            "there is nothing to evaluate: no image has both a truth and a prediction"
        )
    if coarse_labels is not None and len(coarse_labels) != num_classes:
        raise EvaluationError(
            f"the coarse label list has {len(coarse_labels)} entries but there are "
            f"{num_classes} labels: they must be aligned (one coarse name per class)"
        )
    _check_samples(samples, num_classes)
    confusion = confusion_counts(samples, num_classes)
    classes = per_class_metrics(confusion, labels)
    present = [c for c in classes if c.support]
    total = len(samples)
    top1 = top_k_correct(samples, 1)
    topk = top_k_correct(samples, top_k)

    coarse: dict[str, Any] = {}
    if coarse_labels is not None:
        hits = sum(1 for s in samples if coarse_labels[s.truth] == coarse_labels[s.predicted])
        coarse = {
            "coarse_accuracy": hits / total,
            "coarse_classes": len(set(coarse_labels)),
            # wrong fine class, right coarse class (e.g. Granny-Smith taken for Pink-Lady)
            "errors_within_coarse_class": hits - top1,
        }

    calibration: dict[str, Any] = {}
    if any(s.confidence is not None for s in samples):
        bins = calibration_bins(samples)
        calibration = {
            "calibration": tuple(bins),
            "expected_calibration_error": expected_calibration_error(bins),
            "mean_confidence_correct": _mean_confidence(
                s for s in samples if s.truth == s.predicted
            ),
            "mean_confidence_wrong": _mean_confidence(s for s in samples if s.truth != s.predicted),
        }

    return Evaluation(
        labels=tuple(labels),
        samples=total,
        top1_correct=top1,
        top5_correct=topk,
        top1_accuracy=top1 / total,
        top5_accuracy=topk / total,
        classes=tuple(classes),
        macro_precision=sum(c.precision or 0.0 for c in present) / len(present),
        macro_recall=sum(c.recall or 0.0 for c in present) / len(present),
        macro_f1=sum(c.f1 for c in present) / len(present),
        weighted_f1=sum(c.f1 * c.support for c in present) / total,
        confusion=tuple(tuple(row) for row in confusion),
        confused_pairs=tuple(most_confused_pairs(confusion, labels, confused_pairs)),
        **coarse,
        **calibration,
    )
