"""The drift check in Grocery-Monitoring: its schedule, least-privilege role, alarms and
dashboard row (issue 13)."""

from __future__ import annotations

import json

import pytest
from drift_check import handler as drift_handler

from grocery_common import drift
from preprocessing.manifest import LABELS, MANIFEST, lst_relpath
from stacks import prediction_metrics as pm
from stacks.monitoring import drift as drift_construct
from stacks.names import METADATA_DATASET_MANIFEST, METADATA_TEST_REPORT
from stacks.training.triggers import DATASETS_PREFIX


@pytest.fixture(scope="module")
def template(template_of):
    return template_of("monitoring")


def test_constants_equal_the_lambdas():
    assert drift_construct.DRIFT_THRESHOLD == drift.ALARM_THRESHOLD
    assert pm.DRIFT_SCORE == drift_handler.DRIFT_SCORE
    assert pm.DRIFT_PREDICTIONS == drift_handler.DRIFT_PREDICTIONS
    assert pm.DRIFT_WINDOW_DAYS == drift_handler.DRIFT_WINDOW_DAYS
    # The dataset layout the handler reads is the one preprocessing writes and IAM grants.
    assert drift_construct.TRAIN_LST == drift_handler.TRAIN_LST == lst_relpath("train")
    assert drift_handler.DATASETS_PREFIX == DATASETS_PREFIX
    assert (drift_handler.LABELS_FILE, drift_handler.MANIFEST_FILE) == (LABELS, MANIFEST)
    assert drift_handler.DATASET_MANIFEST == METADATA_DATASET_MANIFEST
    assert drift_handler.TEST_REPORT == METADATA_TEST_REPORT


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


def test_reads_only_the_training_splits_labels_and_list_and_decrypts_them(template):
    """The training split baseline: labels.json and train_lst/train.lst under datasets/ of
    the training-data bucket (never an image), decrypted with the data key."""
    statements = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (get,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    resources = [json.dumps(r) for r in get["Resource"]]
    training = [r for r in resources if "TrainingData" in r]
    assert len(training) == 2
    assert any('"/datasets/*/labels.json"' in r for r in training)
    assert any('"/datasets/*/train_lst/train.lst"' in r for r in training)
    (decrypt,) = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert "DataKey" in json.dumps(decrypt["Resource"])


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
        "Prediction drift, PSI against the version's baseline (daily)",
    ):
        assert title in body
    assert "PredictionDriftPSI" in body
    assert "Top1Confidence" in body
