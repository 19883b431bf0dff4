"""The daily drift check Lambda (issue 13) on moto: release record -> version -> baseline
-> CloudWatch counts -> PSI published as EMF."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from drift_check import handler as drift_handler
from drift_check.handler import DriftCheck, window
from moto import mock_aws

from grocery_common import drift
from tests.lambdas.emf import emf_objects, metric_values

PARAMETER = "/grocery/release/model-package-arn"
NAMESPACE = "Grocery-Predictions"
BUCKET = "artifacts"
REPORT_KEY = "training-jobs/grocery-train-1/evaluation.json"
TODAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def aws(aws_credentials):
    with mock_aws():
        yield {
            name: boto3.client(name, region_name="us-east-1")
            for name in ("ssm", "sagemaker", "s3", "cloudwatch")
        }


def release(aws, *, report: dict | None, metadata: bool = True) -> str:
    aws["sagemaker"].create_model_package_group(ModelPackageGroupName="grocery-classifier")
    properties = {"test_report": f"s3://{BUCKET}/{REPORT_KEY}"} if metadata else {"x": "y"}
    arn = aws["sagemaker"].create_model_package(
        ModelPackageGroupName="grocery-classifier",
        InferenceSpecification={
            "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/ic:1"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties=properties,
    )["ModelPackageArn"]
    aws["ssm"].put_parameter(Name=PARAMETER, Value=arn, Type="String", Overwrite=True)
    aws["s3"].create_bucket(Bucket=BUCKET)
    if report is not None:
        aws["s3"].put_object(Bucket=BUCKET, Key=REPORT_KEY, Body=json.dumps(report).encode())
    return arn.rsplit("/", 1)[-1]


def predicted(aws, version: str, days_ago: int, counts: dict[str, int]) -> None:
    stamp = TODAY - dt.timedelta(days=days_ago) + dt.timedelta(hours=12)
    aws["cloudwatch"].put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "ClassPredictions",
                "Dimensions": [
                    {"Name": "ModelVersion", "Value": version},
                    {"Name": "Label", "Value": label},
                ],
                "Timestamp": stamp,
                "Value": count,
                "Unit": "Count",
            }
            for label, count in counts.items()
        ],
    )


def check(aws) -> dict:
    return DriftCheck(
        ssm=aws["ssm"],
        sagemaker=aws["sagemaker"],
        s3=aws["s3"],
        cloudwatch=aws["cloudwatch"],
        release_parameter=PARAMETER,
        namespace=NAMESPACE,
    ).run()


BASELINE = {"predicted_distribution": {"images": 100, "counts": {"A": 50, "B": 30, "C": 20}}}


def test_scores_the_served_version_against_its_baseline(aws, capsys):
    version = release(aws, report=BASELINE)
    # Yesterday 40/30/30 (100 predictions, 20 needed for 3 classes): the window is one day.
    predicted(aws, version, 1, {"A": 40, "B": 30, "C": 30})
    predicted(aws, version, 3, {"A": 1000})  # older: not needed, so not counted
    predicted(aws, "999", 1, {"C": 500})  # another version: never counted
    result = check(aws)
    # PSI of 40/30/30 against 50/30/20, worked by hand in test_drift_score.py: 0.0628609.
    assert result["status"] == "scored"
    assert result["psi"] == pytest.approx(0.0628609, abs=1e-7)
    assert (result["predictions"], result["days"], result["drifted"]) == (100, 1, False)
    objects = emf_objects(capsys.readouterr().out)
    alarm_metric = [o for o in objects if "ModelVersion" not in o]
    assert metric_values(alarm_metric, "PredictionDriftPSI") == [pytest.approx(0.0628609, abs=1e-7)]
    assert alarm_metric[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    assert metric_values(objects, "PredictionDriftPSI", ModelVersion=version) == [
        pytest.approx(0.0628609, abs=1e-7)
    ]
    assert metric_values(objects, "DriftWindowDays", ModelVersion=version) == [1.0]


def test_the_window_grows_until_it_has_enough_predictions(aws):
    version = release(aws, report=BASELINE)
    predicted(aws, version, 1, {"A": 5, "B": 3})  # 8
    predicted(aws, version, 2, {"C": 10})  # 18
    predicted(aws, version, 4, {"A": 2})  # 20: enough (20 for 3 classes)
    result = check(aws)
    assert (result["status"], result["predictions"], result["days"]) == ("scored", 20, 4)
    # 7/3/10 of 20 against 50/30/20: a big shift of C.
    expected = drift.population_stability_index(
        {"A": 7, "B": 3, "C": 10}, BASELINE["predicted_distribution"]["counts"], ["A", "B", "C"]
    )
    assert result["psi"] == pytest.approx(expected)
    assert result["drifted"] is (expected > 0.2)


def test_too_few_predictions_publish_no_score(aws, capsys):
    version = release(aws, report=BASELINE)
    predicted(aws, version, 1, {"A": 5})
    result = check(aws)
    assert result["status"] == "too_few_predictions"
    assert "5 predictions of version" in result["reason"]
    objects = emf_objects(capsys.readouterr().out)
    assert metric_values(objects, "PredictionDriftPSI") == []
    assert metric_values(objects, "DriftWindowPredictions", ModelVersion=version) == [5.0]


def test_no_release(aws):
    aws["ssm"].put_parameter(Name=PARAMETER, Value="none", Type="String")
    assert check(aws)["status"] == "no_release"


def test_a_version_without_a_test_report(aws):
    release(aws, report=None, metadata=False)
    result = check(aws)
    assert result["status"] == "no_baseline"
    assert "test_accuracy_threshold > 0" in result["reason"]


def test_a_report_without_a_baseline(aws):
    release(aws, report={"top1_accuracy": 0.9})
    assert "has no 'predicted_distribution'" in check(aws)["reason"]


def test_window_sums_newest_first():
    assert window([{"A": 1}, {"A": 2, "B": 1}, {"B": 9}], 4) == ({"A": 3, "B": 1}, 2)
    assert window([{"A": 1}], 4) == ({"A": 1}, 1)


def test_handler_reads_its_environment(aws, monkeypatch):
    monkeypatch.setenv("RELEASE_PARAMETER", PARAMETER)
    aws["ssm"].put_parameter(Name=PARAMETER, Value="none", Type="String")
    assert drift_handler.handler({}, None)["status"] == "no_release"
