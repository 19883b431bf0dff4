"""`python -m grocery promote`: checks the pointer, the model and the endpoint, deploys, and
checks that the endpoint serves the approved model afterwards."""

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
from tests.infrastructure.conftest import build_app

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
    """Stands in for `cdk deploy`: what CloudFormation leaves the endpoint serving."""

    def __init__(self, session, *, serves: str | None = NEW, code: int = 0) -> None:
        self.session, self.serves, self.code = session, serves, code
        self.commands: list[list[str]] = []
        self.environments: list[dict[str, str]] = []

    def __call__(self, command, cwd, env) -> int:
        self.commands.append(list(command))
        self.environments.append(dict(env))
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


def test_failed_deploy_states_facts_not_a_guess(session):
    serve(session, OLD, "config-old")
    deployer = Deployer(session, code=3)
    with pytest.raises(CommandError) as error:
        run(args(), session=session, runner=deployer)
    assert error.value.exit_code == 3
    message = str(error.value)
    assert message.startswith("cdk deploy failed (exit 3): its output above names the resource")
    assert f"Endpoint grocery-classifier serves {OLD} (InService, config config-old)" in message
    # cdk fails for many reasons (credentials, bootstrap, a template error): no alarm story.
    assert "alarm" not in message
    assert "rolled" not in message


def test_rolled_back_update_fails_loudly_naming_both_models(session):
    """CloudFormation says complete, but SageMaker rolled back to the old fleet."""
    serve(session, OLD, "config-old")
    deployer = Deployer(session, serves=OLD)
    with pytest.raises(CommandError) as error:
        run(args(), session=session, runner=deployer)
    assert error.value.exit_code == 1
    message = str(error.value)
    assert f"endpoint grocery-classifier serves {OLD}" in message
    assert f"not the approved model {NEW}" in message
    assert "aws sagemaker describe-endpoint --endpoint-name grocery-classifier" in message
    assert "/aws/sagemaker/Endpoints/grocery-classifier" in message


def test_a_deploy_that_left_no_endpoint_fails(session):
    deployer = Deployer(session, serves=None)
    with pytest.raises(CommandError, match="endpoint grocery-classifier does not exist, not the"):
        run(args(), session=session, runner=deployer)


def test_the_check_reads_every_variant_of_the_served_config(session):
    """A config with a second variant on another model is not 'serving the approved model'."""
    deployer = Deployer(session)
    sagemaker = session.client("sagemaker")

    def serve_two_variants(command, cwd, env):
        deployer.commands.append(list(command))
        variants = [
            {"VariantName": name, "ModelName": model, "InitialInstanceCount": 1}
            | {"InstanceType": "ml.m4.xlarge"}
            for name, model in (("AllTraffic", NEW), ("Shadow", OLD))
        ]
        sagemaker.create_endpoint_config(EndpointConfigName="two", ProductionVariants=variants)
        sagemaker.create_endpoint(EndpointName="grocery-classifier", EndpointConfigName="two")
        return 0

    with pytest.raises(CommandError, match=f"serves {NEW}, {OLD} "):
        run(args(), session=session, runner=serve_two_variants)


def test_cdk_deploys_to_the_region_promote_checked(session, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # what cdk would pick otherwise
    deployer = Deployer(session)
    assert run(args(), session=session, runner=deployer) == 0
    (env,) = deployer.environments
    assert (env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == ("us-east-1", "us-east-1")


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
        with pytest.raises(CommandError, match="does not exist in us-east-1: deploy the app first"):
            run(args(), session=session, runner=Deployer(session))


def test_no_credentials_is_not_deploy_first(monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert cli.main(["promote"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unable to locate credentials: set AWS_REGION")
    assert "make deploy" not in err
    assert "deploy the app first" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("prefix", ["grocery", "shop-2"])
def test_the_stack_promote_deploys_is_a_stack_of_the_app(prefix):
    """`cdk deploy <selector>` matches stacks by their construct path: the selector must be
    the serving stack's path in the app built with that prefix."""
    stacks = build_app({"prefix": prefix})
    command = cdk_deploy_command(prefix, [])
    selector = command[command.index("deploy") + 1]
    by_path = {stack.node.path: stack for stack in stacks.all()}
    assert selector in by_path, f"{selector} is not one of {sorted(by_path)}"
    assert by_path[selector] is stacks.serving
    assert command[-2:] == ["-c", f"prefix={prefix}"]


@pytest.mark.parametrize("prefix", ["Bad Prefix", "x", "1shop"])
def test_a_bad_prefix_is_refused_before_aws(prefix, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["promote", "--prefix", prefix])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: argument --prefix: {prefix!r} is not an app prefix")
    assert err.count("\n") == 1


def test_registered_with_the_cli():
    parsed = cli.build_parser().parse_args(["promote", "--dry-run", "--", "-c", "x=1"])
    assert parsed.dry_run is True
    assert parsed.cdk_args[-2:] == ["-c", "x=1"]
