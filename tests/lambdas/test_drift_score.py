"""The drift score and the baseline it compares against (issue 13), on hand-worked numbers."""

from __future__ import annotations

import json
import math

import boto3
import pytest
from moto import mock_aws
from training_evaluate import handler as evaluate_handler

from grocery_common import drift
from tests.e2e.test_training_evaluation import LST, _stage_scoring

LABELS = ["A", "B", "C"]


def test_psi_by_hand():
    # baseline 50/30/20 -> shares e = 0.5, 0.3, 0.2; recent 40/30/30 -> a = 0.4, 0.3, 0.3
    # PSI = (0.4-0.5) ln(0.4/0.5) + (0.3-0.3) ln(1) + (0.3-0.2) ln(0.3/0.2)
    #     = (-0.1)(-0.2231436) + 0 + (0.1)(0.4054651) = 0.0223144 + 0.0405465 = 0.0628609
    baseline = {"A": 50, "B": 30, "C": 20}
    recent = {"A": 40, "B": 30, "C": 30}
    assert drift.population_stability_index(recent, baseline, LABELS) == pytest.approx(
        0.0628609, abs=1e-7
    )
    # Symmetric in its arguments, and 0 for the same shares at another scale.
    assert drift.population_stability_index(baseline, recent, LABELS) == pytest.approx(
        0.0628609, abs=1e-7
    )
    assert drift.population_stability_index({"A": 5, "B": 3, "C": 2}, baseline, LABELS) == 0.0


def test_an_empty_class_is_floored_at_epsilon():
    # baseline 50/50/0 -> e = 0.5, 0.5, 0 -> floored 0.0001; recent 45/45/10 -> 0.45, 0.45, 0.1
    # A and B: (0.45-0.5) ln(0.45/0.5) = (-0.05)(-0.1053605) = 0.0052680 each
    # C: (0.1-0.0001) ln(0.1/0.0001) = 0.0999 * ln(1000) = 0.0999 * 6.9077553 = 0.6900848
    # PSI = 0.0052680 + 0.0052680 + 0.6900848 = 0.7006208: far above 0.2, a new product.
    score = drift.population_stability_index(
        {"A": 45, "B": 45, "C": 10}, {"A": 50, "B": 50}, LABELS
    )
    assert score == pytest.approx(0.7006208, abs=1e-7)
    assert score > drift.ALARM_THRESHOLD
    assert math.isfinite(drift.population_stability_index({"A": 1}, {"B": 1}, LABELS))


def test_nothing_to_compare_is_an_error():
    with pytest.raises(drift.DriftError, match="no predictions"):
        drift.population_stability_index({}, {"A": 1}, LABELS)


def test_minimum_predictions_keeps_the_recent_noise_at_half_the_threshold():
    # (K - 1) / 0.1: 81 classes -> 800; 3 classes -> 20
    assert drift.minimum_predictions(81) == 800
    assert drift.minimum_predictions(3) == 20


def test_predicted_distribution_counts_every_label():
    assert drift.predicted_distribution([0, 2, 2], LABELS) == {
        "images": 3,
        "counts": {"A": 1, "B": 0, "C": 2},
    }


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({}, "has no 'predicted_distribution'"),
        ({"predicted_distribution": {"counts": {"A": -1}}}, "counts >= 0"),
        ({"predicted_distribution": {"counts": {"A": True}}}, "counts >= 0"),
        ({"predicted_distribution": {"counts": {"A": 0}}}, "counts no prediction"),
    ],
)
def test_unusable_baselines_are_named(report, message):
    with pytest.raises(drift.DriftError, match=message):
        drift.read_baseline(report, where="s3://a/report.json")


def test_read_baseline():
    report = {"predicted_distribution": {"images": 3, "counts": {"A": 1, "B": 2}}}
    assert drift.read_baseline(report, where="r") == {"A": 1, "B": 2}


@mock_aws
def test_the_test_gate_report_holds_the_baseline(aws_credentials):
    s3 = boto3.client("s3")
    event = _stage_scoring(
        s3,
        LST,
        {
            "Apple/a1.jpg": [0.9, 0.05, 0.05],  # Apple
            "Apple/a2.jpg": [0.2, 0.7, 0.1],  # Banana
            "Banana/b1.jpg": [0.1, 0.8, 0.1],  # Banana
        },  # Cherry/c1.jpg: no prediction, so not counted
    )
    evaluate_handler.handler(event, None)
    report = json.loads(
        s3.get_object(Bucket=event["report"]["bucket"], Key=event["report"]["key"])["Body"].read()
    )
    assert report["predicted_distribution"] == {
        "images": 3,
        "counts": {"Apple": 1, "Banana": 2, "Cherry": 0},
    }
    assert drift.read_baseline(report, where="report") == {"Apple": 1, "Banana": 2, "Cherry": 0}


def test_train_lst_labels_are_counted_per_class():
    # bytes as StreamingBody.iter_lines yields them, with a CRLF line and a blank one.
    lines = [b"0\t0\tA/a.jpg", b"1\t2\tC/c.jpg\r\n", b"", b"2\t2\tC/d.jpg"]
    assert drift.count_lst_labels(lines, LABELS, where="train.lst") == {"A": 1, "B": 0, "C": 2}
    assert drift.count_lst_labels(["0\t1\tB/b.jpg\n"], LABELS, where="x") == {
        "A": 0,
        "B": 1,
        "C": 0,
    }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"0\t1", "x line 1: expected index<TAB>class id<TAB>path, got '0\\t1'"),
        (b"0\t-1\tA/a.jpg", "expected index<TAB>class id<TAB>path"),
        (b"0\t1\t ", "expected index<TAB>class id<TAB>path"),
        (b"0\t3\tD/d.jpg", "x line 1: class id 3, but labels.json has 3 labels (0-2)"),
    ],
)
def test_a_malformed_lst_line_is_refused(line, reason):
    with pytest.raises(drift.DriftError) as caught:
        drift.count_lst_labels([line], LABELS, where="x")
    assert reason in str(caught.value)
