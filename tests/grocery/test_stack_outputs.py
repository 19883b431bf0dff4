"""Finding deployed resources from stack outputs."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber

from grocery.errors import CommandError
from grocery.stack_outputs import stack_output, stack_outputs


class _Session:
    """A boto3 session whose CloudFormation client answers from a Stubber."""

    def __init__(self, client) -> None:
        self._client = client

    def client(self, name: str):
        assert name == "cloudformation"
        return self._client


@pytest.fixture
def cloudformation(aws_credentials):
    client = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def _stack(outputs: dict[str, str]) -> dict:
    return {
        "Stacks": [
            {
                "StackName": "Grocery-Storage",
                "CreationTime": "2026-01-01T00:00:00Z",
                "StackStatus": "CREATE_COMPLETE",
                "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
            }
        ]
    }


def test_outputs_by_key(cloudformation):
    client, stubber = cloudformation
    stubber.add_response(
        "describe_stacks", _stack({"TrainingDataBucketName": "b1", "DataKeyArn": "arn:k"})
    )
    assert stack_outputs("Grocery-Storage", session=_Session(client)) == {
        "TrainingDataBucketName": "b1",
        "DataKeyArn": "arn:k",
    }


def test_missing_output_names_what_exists(cloudformation):
    client, stubber = cloudformation
    stubber.add_response("describe_stacks", _stack({"DataKeyArn": "arn:k"}))
    with pytest.raises(CommandError, match="has no output 'ApiUrl' \\(it has: DataKeyArn\\)"):
        stack_output("Grocery-Storage", "ApiUrl", session=_Session(client))


def test_missing_stack_says_deploy_first(cloudformation):
    client, stubber = cloudformation
    stubber.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id Grocery-Storage does not exist"
    )
    with pytest.raises(CommandError, match="deploy it first"):
        stack_outputs("Grocery-Storage", session=_Session(client))


def test_missing_stack_names_the_region(cloudformation):
    client, stubber = cloudformation
    stubber.add_client_error(
        "describe_stacks", "ValidationError", "Stack with id Grocery-Storage does not exist"
    )
    with pytest.raises(CommandError, match="does not exist in us-east-1: deploy it first"):
        stack_outputs("Grocery-Storage", session=_Session(client))


@pytest.mark.parametrize("code", ["ExpiredToken", "AccessDenied", "InvalidClientTokenId"])
def test_refused_credentials_are_not_deploy_first(cloudformation, code):
    client, stubber = cloudformation
    stubber.add_client_error("describe_stacks", code, "The security token is invalid")
    with pytest.raises(CommandError) as error:
        stack_outputs("Grocery-Storage", session=_Session(client))
    message = str(error.value)
    assert f"AWS refused to describe stack 'Grocery-Storage' ({code}: " in message
    assert "credentials for the account the stacks are deployed in" in message
    assert "deploy it first" not in message
    assert error.value.exit_code == 2


def test_no_credentials_reaches_the_cli_hint(cloudformation):
    client, stubber = cloudformation
    stubber.add_client_error("describe_stacks", "ValidationError", "unused")

    class NoCredentials(_Session):
        def client(self, name):
            client = super().client(name)
            client.describe_stacks = self.refuse
            return client

        @staticmethod
        def refuse(**_kwargs):
            raise NoCredentialsError()

    with pytest.raises(NoCredentialsError):
        stack_outputs("Grocery-Storage", session=NoCredentials(client))
