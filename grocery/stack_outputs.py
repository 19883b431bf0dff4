"""Finds deployed resources from a stack's CloudFormation outputs."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from grocery.errors import CommandError


def stack_outputs(stack_name: str, *, session: boto3.Session | None = None) -> dict[str, str]:
    """{OutputKey: OutputValue} of a deployed stack, or a CommandError that says what to do."""
    client = (session or boto3.Session()).client("cloudformation")
    try:
        (stack,) = client.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise CommandError(
            f"cannot read stack '{stack_name}' ({error}); deploy it first (make deploy) "
            "or check your AWS credentials and region"
        ) from None
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def stack_output(stack_name: str, key: str, *, session: boto3.Session | None = None) -> str:
    outputs = stack_outputs(stack_name, session=session)
    if key not in outputs:
        raise CommandError(
            f"stack '{stack_name}' has no output '{key}' (it has: {', '.join(sorted(outputs)) or 'none'}); "
            "redeploy it with this version of the app"
        )
    return outputs[key]
