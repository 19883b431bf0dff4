"""Finds deployed resources from a stack's CloudFormation outputs."""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from grocery.aws import describe, error_code, is_setup_error
from grocery.errors import CommandError


def stack_outputs(stack_name: str, *, session: boto3.Session | None = None) -> dict[str, str]:
    """{OutputKey: OutputValue} of a deployed stack, or a CommandError that says what to do.

    Only a stack that does not exist is "deploy it first"; no credentials, no region or a
    refusal is said as such (deploying would not help).
    """
    client = (session or boto3.Session()).client("cloudformation")
    try:
        (stack,) = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        # DescribeStacks answers ValidationError "Stack with id X does not exist".
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            region = client.meta.region_name
            raise CommandError(
                f"stack '{stack_name}' does not exist in {region}: deploy it first "
                "(make deploy), or set AWS_REGION to the region it is deployed in"
            ) from None
        if is_setup_error(error):
            raise CommandError(
                f"AWS refused to describe stack '{stack_name}' ({describe(error)}): use valid "
                "credentials for the account the stacks are deployed in, allowed "
                "cloudformation:DescribeStacks"
            ) from None
        raise CommandError(
            f"cannot read stack '{stack_name}' ({describe(error)})", exit_code=1
        ) from None
    except BotoCoreError as error:
        if is_setup_error(error):
            raise  # one line with the setup hint from `python -m grocery`
        raise CommandError(f"cannot read stack '{stack_name}': {error}", exit_code=1) from None
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def stack_output(stack_name: str, key: str, *, session: boto3.Session | None = None) -> str:
    outputs = stack_outputs(stack_name, session=session)
    if key not in outputs:
        raise CommandError(
            f"stack '{stack_name}' has no output '{key}' (it has: {', '.join(sorted(outputs)) or 'none'}); "
            "redeploy it with this version of the app"
        )
    return outputs[key]
