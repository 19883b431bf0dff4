"""`python -m grocery promote`: releases the newest approved version through the release
workflow and reports its result (moto: registry, stack output, a stand-in state machine)."""

from __future__ import annotations

import argparse
import io
import json

import boto3
import pytest
from moto import mock_aws

import grocery.__main__ as cli
from grocery.errors import CommandError
from grocery.promote import newest_approved, run
from tests.support import sfn_local
from tests.support.release_stand_in import FAILS, release_stack, releases

GROUP = "grocery-classifier"
IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"


def _register(sagemaker, status: str) -> str:
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://a/m.tar.gz"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus=status,
    )["ModelPackageArn"]


@pytest.fixture
def session(aws_credentials):
    with mock_aws(config=sfn_local.MOTO_CONFIG):
        session = boto3.Session(region_name="us-east-1")
        session.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
        yield session


def args(**overrides) -> argparse.Namespace:
    return argparse.Namespace(**{"prefix": "grocery", "dry_run": False, **overrides})


def test_releases_the_newest_approved_version(session):
    sagemaker = session.client("sagemaker")
    _register(sagemaker, "Approved")
    newest = _register(sagemaker, "Approved")
    _register(sagemaker, "PendingManualApproval")
    release_stack(session, releases(2))
    out = io.StringIO()

    assert run(args(), session=session, out=out, sleep=lambda _s: None) == 0

    text = out.getvalue()
    assert f"newest approved version: {newest}" in text
    assert "released version 2: the endpoint and batch serve grocery-classifier-v2" in text
    sfn = session.client("stepfunctions")
    (machine,) = sfn.list_state_machines()["stateMachines"]
    (execution,) = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"ModelPackageArn": newest}


def test_a_failed_release_exits_1_with_its_cause(session):
    _register(session.client("sagemaker"), "Approved")
    release_stack(session, FAILS)
    with pytest.raises(CommandError, match="release failed: EndpointNotServing: x") as error:
        run(args(), session=session, out=io.StringIO(), sleep=lambda _s: None)
    assert error.value.exit_code == 1


def test_no_approved_version_says_what_to_do(session):
    _register(session.client("sagemaker"), "PendingManualApproval")
    with pytest.raises(CommandError, match="no approved version in grocery-classifier yet"):
        newest_approved(session.client("sagemaker"), "grocery")


def test_dry_run_starts_nothing(session):
    arn = _register(session.client("sagemaker"), "Approved")
    out = io.StringIO()
    assert run(args(dry_run=True), session=session, out=out) == 0
    assert arn in out.getvalue()
    assert "endpoint grocery-classifier: not created yet" in out.getvalue()


def test_registered_with_the_cli():
    parsed = cli.build_parser().parse_args(["promote", "--prefix", "shop", "--dry-run"])
    assert (parsed.prefix, parsed.dry_run) == ("shop", True)
