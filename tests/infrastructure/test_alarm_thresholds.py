"""Every alarm's threshold, operator, periods and datapoints, stated once and compared.

An inverted latency alarm would roll back every promotion; a threshold off by a factor of
1,000 (ModelLatency is in microseconds) would never fire. Each alarm is listed here, and an
alarm that is not listed fails the test.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

GE = "GreaterThanOrEqualToThreshold"
GT = "GreaterThanThreshold"

# (stack part, namespace, metric) -> the alarm's expected evaluation.
EXPECTED: dict[tuple[str, str, str], dict[str, Any]] = {
    ("serving", "AWS/SageMaker", "Invocation5XXErrors"): {
        "Statistic": "Sum",
        "Period": 60,
        "ComparisonOperator": GE,
        "Threshold": 1,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "TreatMissingData": "notBreaching",
    },
    ("serving", "AWS/SageMaker", "ModelLatency"): {
        "ExtendedStatistic": "p90",
        "Period": 60,
        "ComparisonOperator": GT,
        "Threshold": 2_000_000,  # microseconds: 2 s
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": None,
        "TreatMissingData": "notBreaching",
    },
    ("serving", "AWS/Lambda", "Errors"): {
        "Statistic": "Sum",
        "Period": 300,
        "ComparisonOperator": GE,
        "Threshold": 1,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": None,
        "TreatMissingData": "notBreaching",
    },
    ("batch", "AWS/SQS", "ApproximateNumberOfMessagesVisible"): {
        "Statistic": "Maximum",
        "Period": 300,
        "ComparisonOperator": GE,
        "Threshold": 1,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": None,
        "TreatMissingData": "notBreaching",
    },
    ("batch", "AWS/SQS", "ApproximateAgeOfOldestMessage"): {
        "Statistic": "Maximum",
        "Period": 300,
        "ComparisonOperator": GE,
        "Threshold": 3600,  # seconds: an upload waiting an hour
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": None,
        "TreatMissingData": "notBreaching",
    },
    # The review loop's alarms (stacks/monitoring/drift.py, issue 13).
    ("monitoring", "Grocery-Predictions", "PredictionDriftPSI"): {
        "Statistic": "Maximum",
        "Period": 86400,
        "ComparisonOperator": GT,
        "Threshold": 0.2,  # PSI: a significant shift of the predicted-class mix
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": None,
        "TreatMissingData": "notBreaching",
    },
    **{
        ("monitoring", "expression", f"grocery-low-confidence-{source}"): {
            "ComparisonOperator": GT,
            "Threshold": 0.4,  # share of a day's predictions below review_threshold
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": None,
            "TreatMissingData": "notBreaching",
        }
        for source in ("api", "batch")
    },
}
PARTS = ("storage", "training", "serving", "batch", "monitoring")


def _alarms(stacks) -> dict[tuple[str, str, str], dict[str, Any]]:
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for part in PARTS:
        template = Template.from_stack(getattr(stacks, part))
        for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
            props = alarm["Properties"]
            if "Metrics" in props:  # a metric-math alarm: keyed by its fixed name
                key = (part, "expression", props["AlarmName"])
            else:
                key = (part, props["Namespace"], props["MetricName"])
            assert key not in found, f"two alarms on {key}: give this table a finer key"
            found[key] = props
    return found


def test_every_alarm_is_listed(stacks):
    assert sorted(_alarms(stacks)) == sorted(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0]}-{k[2]}")
def test_alarm_evaluates_as_intended(stacks, key):
    props = _alarms(stacks)[key]
    actual = {field: props.get(field) for field in EXPECTED[key]}
    assert actual == EXPECTED[key]
