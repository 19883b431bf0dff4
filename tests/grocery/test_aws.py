"""The AWS setup every command shares: AWS_REGION honoured, a bad profile in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

import grocery.__main__ as cli
from grocery import aws
from grocery.errors import CommandError

# The argv of each command, valid up to its first AWS call.
COMMANDS = {
    "train": ["train", "--dataset", "datasets/grocery/"],
    "promote": ["promote"],
    "classify": ["classify", str(Path(__file__).parents[2] / "README.md")],
}


@pytest.fixture
def no_aws_config(monkeypatch, tmp_path):
    """Only what the test sets: no config file, no region, no profile."""
    config = tmp_path / "config"
    config.write_text("[default]\n[profile dev]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def first_aws_call(monkeypatch):
    """Stops each command where it first uses its session; records the session's region."""
    seen: dict[str, str | None] = {}

    def stop(region):
        seen["region"] = region
        raise CommandError("stopped before AWS")

    monkeypatch.setattr("grocery.train.stack_output", lambda *a, session: stop(session.region_name))
    monkeypatch.setattr(
        "grocery.promote.newest_approved", lambda sm, _prefix: stop(sm.meta.region_name)
    )
    monkeypatch.setattr(
        "grocery.classify.build_classifier", lambda _args, session: stop(session.region_name)
    )
    return seen


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_aws_region_alone_is_honoured(command, no_aws_config, first_aws_call, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert cli.main(COMMANDS[command]) == 2
    assert first_aws_call["region"] == "eu-west-1"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_aws_region_wins_over_aws_default_region(
    command, no_aws_config, first_aws_call, monkeypatch
):
    """The AWS CLI v2 and the CDK CLI give AWS_REGION precedence: so do the commands."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cli.main(COMMANDS[command])
    assert first_aws_call["region"] == "eu-west-1"


def test_without_aws_region_boto3_resolution_stands(no_aws_config, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert aws.session().region_name == "ap-south-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    assert aws.session().region_name == "us-east-2"
    assert aws.session(region="ca-central-1").region_name == "ca-central-1"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_profile_is_one_line_naming_the_known_ones(
    command, no_aws_config, monkeypatch, capsys
):
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    assert cli.main(COMMANDS[command]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: AWS profile 'nosuch' not found (from AWS_PROFILE or --profile); use one of: "
        "default, dev (aws configure list-profiles), or unset AWS_PROFILE\n"
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NoCredentialsError(), True),
        (ClientError({"Error": {"Code": "ExpiredTokenException"}}, "InvokeEndpoint"), True),
        (ClientError({"Error": {"Code": "AccessDeniedException"}}, "InvokeEndpoint"), True),
        (ClientError({"Error": {"Code": "ModelError"}}, "InvokeEndpoint"), False),
        (EndpointConnectionError(endpoint_url="https://x"), False),
    ],
)
def test_setup_errors_are_told_from_per_request_ones(error, expected):
    assert aws.is_setup_error(error) is expected
