"""`python -m grocery models`: the registry's versions in moto, what is served, approve/reject."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

import grocery.__main__ as cli
from grocery.errors import CommandError
from grocery.models import Served, Version, format_table, run_list, run_show, run_update

GROUP = "grocery-classifier"
IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"
ROLE = "arn:aws:iam::123456789012:role/model"


def register(sagemaker, job: str, *, accuracy: str, status: str, test: str | None = None) -> str:
    metadata = {
        "training_job": job,
        "model_name": f"{job}-0",
        "labels_uri": f"s3://artifacts/training-jobs/{job}/labels.json",
        "dataset_manifest": "s3://data/datasets/grocery/manifest.json",
        "validation_accuracy": accuracy,
    }
    if test:
        metadata["test_accuracy"] = test
        metadata["test_report"] = f"s3://artifacts/training-jobs/{job}/evaluation.json"
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://artifacts/{job}.tar.gz"}],
            "SupportedContentTypes": ["image/jpeg", "image/png", "application/x-image"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://artifacts/training-jobs/{job}/metrics.json",
                }
            }
        },
        CustomerMetadataProperties=metadata,
        ModelApprovalStatus=status,
    )["ModelPackageArn"]


def serve_on_endpoint(session, model: str) -> None:
    sagemaker = session.client("sagemaker")
    sagemaker.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://artifacts/m.tar.gz"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="config-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InstanceType": "ml.m4.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="grocery-classifier", EndpointConfigName="config-1")


@pytest.fixture
def session(aws_credentials):
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        sagemaker = session.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        register(sagemaker, "grocery-train-a", accuracy="0.86", status="Approved")
        newest = register(
            sagemaker,
            "grocery-train-b",
            accuracy="0.9",
            status="PendingManualApproval",
            test="0.81",
        )
        session.client("ssm").put_parameter(
            Name="/grocery/release/model-package-arn", Value=newest, Type="String"
        )
        yield session


def ns(**values) -> argparse.Namespace:
    return argparse.Namespace(**{"prefix": "grocery", **values})


def test_list_shows_versions_newest_first_with_metrics_and_what_is_served(session):
    serve_on_endpoint(session, "grocery-classifier-v1")
    out = io.StringIO()

    assert run_list(ns(), session=session, out=out) == 0

    header, newest, oldest = out.getvalue().splitlines()
    assert header.split() == [
        "VERSION",
        "STATUS",
        "VALIDATION",
        "TEST",
        "AGE",
        "TRAINING",
        "JOB",
        "SERVED",
        "BY",
    ]
    assert newest.split()[:4] == ["2", "PendingManualApproval", "0.900", "0.810"]
    assert newest.split()[-2:] == ["grocery-train-b", "batch"]
    assert oldest.split()[:4] == ["1", "Approved", "0.860", "-"]
    assert oldest.split()[-2:] == ["grocery-train-a", "endpoint"]


def test_list_of_an_empty_registry_says_to_train(aws_credentials):
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        session.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
        out = io.StringIO()
        assert run_list(ns(), session=session, out=out) == 0
    assert (
        out.getvalue()
        == "model package group grocery-classifier has no versions yet: run training\n"
    )


def test_show_prints_provenance_metrics_and_labels(session):
    out = io.StringIO()
    assert run_show(ns(version=2), session=session, out=out) == 0
    fields = {line[:19].strip(): line[19:].strip() for line in out.getvalue().splitlines()}
    text = out.getvalue()
    assert "PendingManualApproval" in text
    assert "s3://artifacts/training-jobs/grocery-train-b/labels.json" in text
    assert "s3://artifacts/training-jobs/grocery-train-b/metrics.json" in text
    assert "s3://artifacts/training-jobs/grocery-train-b/evaluation.json" in text
    assert "s3://data/datasets/grocery/manifest.json" in text
    assert fields["test accuracy"] == "0.810"
    assert fields["status"] == "PendingManualApproval"
    assert fields["served by"] == "batch"


def test_approve_and_reject_change_the_status(session):
    sagemaker = session.client("sagemaker")
    out = io.StringIO()
    assert (
        run_update(
            ns(version=2, status="Approved", reason="looks good", no_wait=True),
            session=session,
            out=out,
        )
        == 0
    )
    assert out.getvalue().startswith("version 2: PendingManualApproval -> Approved\n")
    (newest, _) = sagemaker.list_model_packages(
        ModelPackageGroupName=GROUP, SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    assert newest["ModelApprovalStatus"] == "Approved"
    described = sagemaker.describe_model_package(ModelPackageName=newest["ModelPackageArn"])
    assert described["ApprovalDescription"] == "looks good"

    out = io.StringIO()
    assert (
        run_update(
            ns(version=1, status="Rejected", reason="", no_wait=True), session=session, out=out
        )
        == 0
    )
    assert "Approved -> Rejected" in out.getvalue()


def test_approving_an_approved_version_changes_nothing(session):
    out = io.StringIO()
    assert run_update(ns(version=1, status="Approved", reason=""), session=session, out=out) == 0
    assert "Approved already" in out.getvalue()


def test_an_unknown_version_is_one_line(session):
    with pytest.raises(CommandError, match="has no version 7: see `python -m grocery models list`"):
        run_show(ns(version=7), session=session)


def test_the_cli_refuses_a_bad_version_before_aws(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["models", "approve", "0"])
    assert exit_info.value.code == 2
    assert "version must be a whole number >= 1" in capsys.readouterr().err


def test_table_ages_and_missing_metrics():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    version = Version(
        number=3,
        arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/grocery-classifier/3",
        status="Rejected",
        created=now - timedelta(hours=5, minutes=3),
        metadata={},
        description={},
    )
    table = format_table([version], Served(endpoint=(), batch=""), now)
    assert table.splitlines()[1].split() == ["3", "Rejected", "-", "-", "5h", "-", "-"]


def test_rollback_refuses_a_version_that_is_not_approved(session):
    from grocery.models import run_rollback

    with pytest.raises(CommandError, match="version 2 is PendingManualApproval: only Approved"):
        run_rollback(ns(version=2), session=session)
