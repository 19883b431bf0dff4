"""The drift check in Grocery-Monitoring: its schedule, least-privilege role, alarms and
dashboard row (issue 13)."""

from __future__ import annotations

import json

import pytest
from drift_check import handler as drift_handler

from grocery_common import drift
from stacks import prediction_metrics as pm
from stacks.monitoring import drift as drift_construct


@pytest.fixture(scope="module")
def template(template_of):
    return template_of("monitoring")


def test_constants_equal_the_lambdas():
    assert drift_construct.DRIFT_THRESHOLD == drift.ALARM_THRESHOLD
    assert pm.DRIFT_SCORE == drift_handler.DRIFT_SCORE
    assert pm.DRIFT_PREDICTIONS == drift_handler.DRIFT_PREDICTIONS
    assert pm.DRIFT_WINDOW_DAYS == drift_handler.DRIFT_WINDOW_DAYS


def test_runs_daily_on_a_schedule(template):
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "cron(0 1 * * ? *)"
    ((_, function),) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "drift_check.handler.handler"}}
    ).items()
    env = function["Properties"]["Environment"]["Variables"]
    assert env["RELEASE_PARAMETER"] == "/grocery/release/model-package-arn"
    assert env["PREDICTION_METRICS_NAMESPACE"] == "Grocery-Predictions"


def test_the_role_reads_only_what_the_check_needs(template):
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {
        "ssm:GetParameter",
        "sagemaker:DescribeModelPackage",
        "s3:GetObject",
        "cloudwatch:GetMetricData",
    } <= actions
    assert not {a for a in actions if a.endswith(("Put*", "Delete*", ":*"))}
    text = json.dumps(statements)
    assert "model-package/grocery-classifier/*" in text
    assert "*evaluation.json" in text
    assert "parameter/grocery/release/model-package-arn" in text


def test_alarms_notify_the_topic_with_their_thresholds(template):
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {
        "grocery-prediction-drift",
        "grocery-low-confidence-api",
        "grocery-low-confidence-batch",
    }
    assert alarms["grocery-prediction-drift"]["Threshold"] == 0.2
    for source in ("api", "batch"):
        props = alarms[f"grocery-low-confidence-{source}"]
        (expression,) = [m for m in props["Metrics"] if "Expression" in m]
        assert expression["Expression"] == f"IF(n{source} >= 50, share{source}, 0)"
        sources = {
            d["Value"]
            for m in props["Metrics"]
            if "MetricStat" in m
            for d in m["MetricStat"]["Metric"]["Dimensions"]
        }
        assert sources == {source}
    assert all(len(a["AlarmActions"]) == 1 for a in alarms.values())


def test_dashboard_has_the_confidence_and_drift_row(template):
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in (
        "Mean top-1 confidence (hourly)",
        "Share below the review threshold (daily)",
        "Prediction drift, PSI against the test split (daily)",
    ):
        assert title in body
    assert "PredictionDriftPSI" in body
    assert "Top1Confidence" in body
