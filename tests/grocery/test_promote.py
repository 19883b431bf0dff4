"""`python -m grocery promote`: checks the pointer, the model and the endpoint, then deploys."""

from __future__ import annotations

import argparse
import contextlib
import json

import boto3
import pytest
from moto import mock_aws

import grocery.__main__ as cli
from grocery.errors import CommandError
from grocery.promote import cdk_deploy_command, run

OLD, NEW = "grocery-model-1", "grocery-model-2"
ROLE = "arn:aws:iam::123456789012:role/model"
IMAGE = "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"


def args(**overrides) -> argparse.Namespace:
    values = {"prefix": "grocery", "dry_run": False, "force": False, "cdk_args": []}
    return argparse.Namespace(**{**values, **overrides})


@pytest.fixture
def session(aws_credentials):
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        s3 = session.client("s3")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key="m/labels.json", Body=json.dumps(["A", "B"]))
        sagemaker = session.client("sagemaker")
        for model in (OLD, NEW):
            sagemaker.create_model(
                ModelName=model,
                ExecutionRoleArn=ROLE,
                PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://artifacts/{model}.tar.gz"},
            )
        point_at(session, NEW, "s3://artifacts/m/labels.json")
        yield session


def point_at(session, model: str, labels_uri: str) -> None:
    ssm = session.client("ssm")
    for field, value in (("model-name", model), ("labels-uri", labels_uri)):
        ssm.put_parameter(
            Name=f"/grocery/approved-model/{field}", Value=value, Type="String", Overwrite=True
        )


def serve(session, model: str, config: str) -> None:
    """What CloudFormation does on deploy (moto has no UpdateEndpoint: recreate instead)."""
    sagemaker = session.client("sagemaker")
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m4.xlarge",
            }
        ],
    )
    with contextlib.suppress(sagemaker.exceptions.ClientError):
        sagemaker.delete_endpoint(EndpointName="grocery-classifier")
    sagemaker.create_endpoint(EndpointName="grocery-classifier", EndpointConfigName=config)


class Deployer:
    def __init__(self, session, *, serves: str | None = NEW, code: int = 0) -> None:
        self.session, self.serves, self.code = session, serves, code
        self.commands: list[list[str]] = []

    def __call__(self, command, cwd) -> int:
        self.commands.append(list(command))
        assert (cwd / "cdk.json").exists()
        if self.serves and self.code == 0:
            serve(self.session, self.serves, f"config-{len(self.commands)}")
        return self.code


def test_first_promotion_creates_the_endpoint(session, capsys):
    deployer = Deployer(session)
    assert run(args(), session=session, runner=deployer) == 0
    (command,) = deployer.commands
    assert command[:6] == [
        "npx",
        "--no-install",
        "cdk",
        "deploy",
        "Grocery-Serving",
        "--exclusively",
    ]
    out = capsys.readouterr().out
    assert f"approved model: {NEW} (2 labels, s3://artifacts/m/labels.json)" in out
    assert "endpoint grocery-classifier: not created yet" in out
    assert f"endpoint grocery-classifier now serves {NEW}" in out


def test_promotes_a_newer_model(session, capsys):
    serve(session, OLD, "config-old")
    deployer = Deployer(session)
    assert run(args(), session=session, runner=deployer) == 0
    assert len(deployer.commands) == 1
    assert f"serves {OLD}" in capsys.readouterr().out


def test_nothing_to_do_when_already_served(session, capsys):
    serve(session, NEW, "config-new")
    deployer = Deployer(session)
    assert run(args(), session=session, runner=deployer) == 0
    assert deployer.commands == []
    assert "nothing to promote" in capsys.readouterr().out


def test_force_deploys_anyway_and_passes_cdk_arguments(session):
    serve(session, NEW, "config-new")
    deployer = Deployer(session)
    extra = ["--", "-c", "endpoint_max_instances=4"]
    assert run(args(force=True, cdk_args=extra), session=session, runner=deployer) == 0
    (command,) = deployer.commands
    assert command[-4:] == ["-c", "prefix=grocery", "-c", "endpoint_max_instances=4"]


def test_dry_run_deploys_nothing(session, capsys):
    deployer = Deployer(session)
    assert run(args(dry_run=True), session=session, runner=deployer) == 0
    assert deployer.commands == []
    assert "running: npx --no-install cdk deploy Grocery-Serving" in capsys.readouterr().out


def test_failed_deploy_says_what_happened(session):
    deployer = Deployer(session, code=1)
    with pytest.raises(CommandError, match="rolled the stack back") as error:
        run(args(), session=session, runner=deployer)
    assert error.value.exit_code == 1


def test_deploy_that_did_not_switch_the_model_fails(session):
    serve(session, OLD, "config-old")
    deployer = Deployer(session, serves=None)
    assert run(args(), session=session, runner=deployer) == 1


def test_no_approved_model_yet(session):
    point_at(session, "none", "none")
    with pytest.raises(CommandError, match="no approved model yet: run the training pipeline"):
        run(args(), session=session, runner=Deployer(session))


def test_approved_model_missing_in_sagemaker(session):
    point_at(session, "grocery-model-gone", "s3://artifacts/m/labels.json")
    with pytest.raises(CommandError, match="grocery-model-gone does not exist in SageMaker"):
        run(args(), session=session, runner=Deployer(session))


def test_unreadable_labels(session):
    point_at(session, NEW, "s3://artifacts/missing/labels.json")
    with pytest.raises(CommandError, match="cannot read the labels"):
        run(args(), session=session, runner=Deployer(session))


def test_app_not_deployed(aws_credentials):
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        with pytest.raises(CommandError, match="deploy the app first"):
            run(args(), session=session, runner=Deployer(session))


def test_command_for_another_prefix():
    assert cdk_deploy_command("shop", [])[4] == "Shop-Serving"
    assert cdk_deploy_command("shop", [])[-2:] == ["-c", "prefix=shop"]


def test_registered_with_the_cli():
    parsed = cli.build_parser().parse_args(["promote", "--dry-run", "--", "-c", "x=1"])
    assert parsed.dry_run is True
    assert parsed.cdk_args[-2:] == ["-c", "x=1"]
