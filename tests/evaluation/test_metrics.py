"""The pure-Python metrics (grocery_common.evaluation) on answers worked out by hand."""

from __future__ import annotations

import pytest

from grocery_common.evaluation import (
    EvaluationError,
    Sample,
    calibration_bins,
    coarse_accuracy,
    confusion_counts,
    evaluate,
    expected_calibration_error,
    most_confused_pairs,
    top_k_correct,
)
from tests.evaluation.conftest import COARSE, KNOWN, LABELS, SCORED


@pytest.fixture
def samples() -> list[Sample]:
    return [Sample(truth=c, ranking=tuple(r), confidence=conf) for _, c, r, conf in SCORED]


def test_confusion_counts(samples):
    assert confusion_counts(samples, 3) == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]


def test_top_k(samples):
    assert top_k_correct(samples, 1) == 7
    assert top_k_correct(samples, 2) == 9
    with pytest.raises(EvaluationError, match="at least 1"):
        top_k_correct(samples, 0)


def test_known_accuracy_precision_recall_f1(samples):
    result = evaluate(samples, LABELS, coarse_labels=COARSE)
    assert result.samples == 10
    assert result.top1_accuracy == pytest.approx(KNOWN["top1"])
    assert result.top5_accuracy == pytest.approx(KNOWN["top5"])
    assert [c.support for c in result.classes] == KNOWN["support"]
    assert [c.predicted for c in result.classes] == KNOWN["predicted"]
    assert [c.true_positives for c in result.classes] == [3, 2, 2]
    assert [c.precision for c in result.classes] == pytest.approx(KNOWN["precision"])
    assert [c.recall for c in result.classes] == pytest.approx(KNOWN["recall"])
    assert [c.f1 for c in result.classes] == pytest.approx(KNOWN["f1"])
    assert result.macro_f1 == pytest.approx(sum(KNOWN["f1"]) / 3)
    assert result.weighted_f1 == pytest.approx(
        sum(f * s for f, s in zip(KNOWN["f1"], KNOWN["support"], strict=True)) / 10
    )
    assert result.macro_recall == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3)
    assert result.coarse_accuracy == pytest.approx(KNOWN["coarse"])
    assert result.coarse_classes == 2
    assert result.errors_within_coarse_class == 2  # gs_4 and pl_3 stay Apples


def test_f1_is_the_harmonic_mean_where_both_exist(samples):
    for c in evaluate(samples, LABELS).classes:
        assert c.f1 == pytest.approx(2 * c.precision * c.recall / (c.precision + c.recall))


def test_confused_pairs_are_ordered_by_count_then_ids():
    samples = [Sample(0, (1,)), Sample(0, (1,)), Sample(2, (0,)), Sample(1, (2,)), Sample(1, (1,))]
    pairs = most_confused_pairs(confusion_counts(samples, 3), LABELS, limit=2)
    assert [(p.truth_id, p.predicted_id, p.count) for p in pairs] == [(0, 1, 2), (1, 2, 1)]
    assert pairs[0].share == 1.0
    assert pairs[1].share == 0.5
    assert (pairs[0].truth, pairs[0].predicted) == ("Granny-Smith", "Pink-Lady")


def test_class_never_predicted_and_class_absent_from_truth():
    # Oat-Milk (2) is present but never predicted; Pink-Lady (1) is predicted but absent.
    samples = [Sample(0, (0,)), Sample(2, (1,)), Sample(2, (0,))]
    result = evaluate(samples, LABELS)
    milk, pink = result.classes[2], result.classes[1]
    assert (milk.precision, milk.recall, milk.f1) == (None, 0.0, 0.0)
    assert (pink.precision, pink.recall, pink.f1, pink.support) == (0.0, None, 0.0, 0)
    assert result.classes_in_truth == 2
    # Macro averages run over the classes in the truth; an undefined precision counts as 0.
    assert result.macro_precision == pytest.approx((0.5 + 0.0) / 2)
    assert result.macro_f1 == pytest.approx((2 / 3 + 0.0) / 2)


def test_coarse_accuracy_helper():
    samples = [Sample(0, (1,)), Sample(2, (0,))]
    assert coarse_accuracy(samples, COARSE) == 0.5
    assert coarse_accuracy([], COARSE) is None


def test_calibration_bins_and_ece():
    samples = [Sample(0, (0,), 0.95), Sample(0, (1,), 0.9), Sample(1, (1,), 0.25), Sample(2, (2,))]
    bins = calibration_bins(samples, bins=4)
    assert [b.count for b in bins] == [0, 1, 0, 2]
    assert bins[3].accuracy == 0.5
    assert bins[3].mean_confidence == pytest.approx(0.925)
    # (1/3)·|1 - 0.25| + (2/3)·|0.5 - 0.925|
    assert expected_calibration_error(bins) == pytest.approx(0.25 + 0.85 / 3)
    assert expected_calibration_error(calibration_bins([Sample(0, (0,))])) is None


def test_confidence_1_falls_in_the_last_bin():
    bins = calibration_bins([Sample(0, (0,), 1.0)], bins=10)
    assert bins[-1].count == 1


def test_to_dict_is_json_ready(samples):
    import json

    data = json.loads(json.dumps(evaluate(samples, LABELS, coarse_labels=COARSE).to_dict()))
    assert data["confusion_matrix"]["counts"] == [[3, 1, 0], [1, 2, 0], [0, 1, 2]]
    assert data["per_class"][1] == {
        "class_id": 1,
        "label": "Pink-Lady",
        "support": 3,
        "predicted": 4,
        "true_positives": 2,
        "precision": 0.5,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(4 / 7),
    }
    assert data["coarse"]["accuracy"] == pytest.approx(0.9)
    assert "confusion_matrix" not in evaluate(samples, LABELS).to_dict(include_confusion=False)


@pytest.mark.parametrize(
    ("samples", "kwargs", "message"),
    [
        ([], {}, "nothing to evaluate"),
        ([Sample(0, ())], {}, "no prediction"),
        ([Sample(3, (0,))], {}, "class id 3 is outside the 3 labels"),
        ([Sample(0, (True,))], {}, "not an integer"),
        ([Sample(0, (0,), 1.5)], {}, "not a probability"),
        ([Sample(0, (0,))], {"coarse_labels": ["Apple"]}, "must be aligned"),
    ],
)
def test_unusable_input_is_rejected_with_a_reason(samples, kwargs, message):
    with pytest.raises(EvaluationError, match=message):
        evaluate(samples, LABELS, **kwargs)


def test_empty_label_list():
    with pytest.raises(EvaluationError, match="label list is empty"):
        evaluate([Sample(0, (0,))], [])
