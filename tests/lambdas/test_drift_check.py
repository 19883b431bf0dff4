"""The daily drift check Lambda (issue 13) on moto: release record -> version -> baseline
-> CloudWatch counts -> PSI published as EMF."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from drift_check import handler as drift_handler
from drift_check.handler import DriftCheck, window
from moto import mock_aws

from grocery_common import drift
from tests.lambdas.emf import emf_objects, metric_values

PARAMETER = "/grocery/release/model-package-arn"
NAMESPACE = "Grocery-Predictions"
BUCKET = "artifacts"
REPORT_KEY = "training-jobs/grocery-train-1/evaluation.json"
DATA = "training-data"
LABELS = ["A", "B", "C"]
TODAY = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def clients():
    # Clients once per module (making four costs ~0.3 s); each test gets empty backends.
    mocked = mock_aws()
    mocked.start()
    try:
        yield (
            mocked,
            {
                name: boto3.client(
                    name,
                    region_name="us-east-1",
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
                for name in ("ssm", "sagemaker", "s3", "cloudwatch")
            },
        )
    finally:
        mocked.stop()


@pytest.fixture
def aws(clients, aws_credentials):
    mocked, made = clients
    mocked.reset()
    return made


def release(
    aws,
    *,
    report: dict | None,
    metadata: bool = True,
    manifest: str | None = None,
) -> str:
    aws["sagemaker"].create_model_package_group(ModelPackageGroupName="grocery-classifier")
    properties = {"test_report": f"s3://{BUCKET}/{REPORT_KEY}"} if metadata else {"x": "y"}
    if manifest:
        properties["dataset_manifest"] = manifest
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


def dataset(aws, lst: str, labels: list[str] | None = None) -> str:
    """A prepared dataset under datasets/grocery/ (preprocessing's layout): its manifest URI."""
    aws["s3"].create_bucket(Bucket=DATA)
    put = aws["s3"].put_object
    put(Bucket=DATA, Key="datasets/grocery/labels.json", Body=json.dumps(labels or LABELS))
    put(Bucket=DATA, Key="datasets/grocery/train_lst/train.lst", Body=lst.encode())
    put(Bucket=DATA, Key="datasets/grocery/manifest.json", Body=b"{}")
    return f"s3://{DATA}/datasets/grocery/manifest.json"


def train_lst(counts: list[int]) -> str:
    """index<TAB>class id<TAB>path lines, `counts[i]` images of class i."""
    rows = [(c, f"{LABELS[c]}/{n}.jpg") for c, k in enumerate(counts) for n in range(k)]
    return "".join(f"{i}\t{c}\t{path}\n" for i, (c, path) in enumerate(rows))


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


def test_without_a_test_report_the_training_split_is_the_baseline(aws, capsys):
    # No test gate: the train .lst's 50/30/20 images are the baseline.
    version = release(
        aws, report=None, metadata=False, manifest=dataset(aws, train_lst([50, 30, 20]))
    )
    predicted(aws, version, 1, {"A": 40, "B": 30, "C": 30})
    result = check(aws)
    assert (result["status"], result["baseline"]) == ("scored", "training split labels")
    assert result["baseline_images"] == 100
    # The same hand-worked PSI as against the test report's 50/30/20 (test_drift_score.py).
    assert result["psi"] == pytest.approx(0.0628609, abs=1e-7)
    objects = emf_objects(capsys.readouterr().out)
    alarm_metric = [o for o in objects if "ModelVersion" not in o]
    assert metric_values(alarm_metric, "PredictionDriftPSI") == [pytest.approx(0.0628609, abs=1e-7)]
    assert {o["baseline"] for o in objects} == {"training split labels"}


def test_a_report_without_a_baseline_falls_back_to_the_training_split(aws):
    version = release(
        aws, report={"top1_accuracy": 0.9}, manifest=dataset(aws, train_lst([10, 10, 80]))
    )
    predicted(aws, version, 1, {"A": 10, "B": 10, "C": 80})
    result = check(aws)
    assert (result["status"], result["baseline"], result["psi"]) == (
        "scored",
        "training split labels",
        0.0,
    )


def test_a_test_report_is_preferred_to_the_training_split(aws, capsys):
    version = release(aws, report=BASELINE, manifest=dataset(aws, train_lst([10, 10, 80])))
    predicted(aws, version, 1, {"A": 40, "B": 30, "C": 30})
    result = check(aws)
    assert (result["baseline"], result["baseline_images"]) == ("test split predictions", 100)
    assert result["psi"] == pytest.approx(0.0628609, abs=1e-7)
    assert {o["baseline"] for o in emf_objects(capsys.readouterr().out)} == {
        "test split predictions"
    }


@pytest.mark.parametrize(
    ("lst", "reason"),
    [
        ("0\t0\tA/0.jpg\n1\tA/1.jpg\n", "train.lst line 2: expected index<TAB>class id<TAB>path"),
        ("0\tx\tA/0.jpg\n", "train.lst line 1: expected index<TAB>class id<TAB>path"),
        ("0\t0\tA/0.jpg\n1\t3\tD/1.jpg\n", "line 2: class id 3, but labels.json has 3"),
        ("\n", "train.lst lists no image"),
    ],
)
def test_a_malformed_train_lst_publishes_no_score(aws, capsys, caplog, lst, reason):
    version = release(aws, report=None, metadata=False, manifest=dataset(aws, lst))
    predicted(aws, version, 1, {"A": 40, "B": 30, "C": 30})
    result = check(aws)
    assert result["status"] == "no_baseline"
    assert reason in result["reason"]
    assert "has no test report" in result["reason"]
    assert "test_accuracy_threshold > 0" in result["reason"]
    assert metric_values(emf_objects(capsys.readouterr().out), "PredictionDriftPSI") == []
    # The log says why (Powertools puts the reason into the record's extra fields).
    assert any(reason in getattr(record, "reason", "") for record in caplog.records)


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (None, "records no dataset_manifest"),
        ("not-a-uri", "not an s3://bucket/key URI"),
        (f"s3://{DATA}/elsewhere/manifest.json", "is not a datasets/<name>/manifest.json"),
        (f"s3://{DATA}/datasets/gone/manifest.json", "datasets/gone/labels.json (NoSuchKey)"),
    ],
)
def test_an_unreadable_training_split_publishes_no_score(aws, manifest, reason):
    dataset(aws, train_lst([1, 1, 1]))
    release(aws, report=None, metadata=False, manifest=manifest)
    result = check(aws)
    assert result["status"] == "no_baseline"
    assert reason in result["reason"]


def test_bad_labels_json_publishes_no_score(aws):
    manifest = dataset(aws, train_lst([1, 1, 1]))
    aws["s3"].put_object(Bucket=DATA, Key="datasets/grocery/labels.json", Body=b"{")
    release(aws, report=None, metadata=False, manifest=manifest)
    assert "labels.json is not valid JSON" in check(aws)["reason"]


def test_other_s3_errors_are_raised(aws):
    manifest = dataset(aws, train_lst([1, 1, 1]))
    release(aws, report=None, metadata=False, manifest=manifest)
    subject = DriftCheck(
        ssm=aws["ssm"],
        sagemaker=aws["sagemaker"],
        s3=aws["s3"],
        cloudwatch=aws["cloudwatch"],
        release_parameter=PARAMETER,
        namespace=NAMESPACE,
    )
    with Stubber(aws["s3"]) as stub:
        stub.add_client_error("get_object", service_error_code="SlowDown")
        with pytest.raises(ClientError, match="SlowDown"):
            subject.run()


def test_window_sums_newest_first():
    assert window([{"A": 1}, {"A": 2, "B": 1}, {"B": 9}], 4) == ({"A": 3, "B": 1}, 2)
    assert window([{"A": 1}], 4) == ({"A": 1}, 1)


def test_handler_reads_its_environment(aws, monkeypatch):
    monkeypatch.setenv("RELEASE_PARAMETER", PARAMETER)
    aws["ssm"].put_parameter(Name=PARAMETER, Value="none", Type="String")
    assert drift_handler.handler({}, None)["status"] == "no_release"
