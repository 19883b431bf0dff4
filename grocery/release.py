"""Start the release workflow for one model package version and wait for its result.

Shared by `python -m grocery promote` (the newest approved version) and `models rollback`
(a chosen approved version). The workflow (Grocery-Release, docs/serving.md) updates the
serving stack through CloudFormation and checks that the endpoint serves the version.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

import boto3
from botocore.exceptions import ClientError

from grocery.aws import describe, is_setup_error
from grocery.errors import FAILED, CommandError
from grocery.stack_outputs import stack_output
from stacks.names import stack_name

OUTPUT = "ReleaseStateMachineArn"
DONE = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def release(
    session: boto3.Session,
    prefix: str,
    package_arn: str,
    *,
    out: TextIO = sys.stdout,
    poll_seconds: float = 15,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Runs the release of `package_arn`; 0 when the endpoint serves it, else CommandError."""
    machine = stack_output(stack_name(prefix, "Release"), OUTPUT, session=session)
    sfn = session.client("stepfunctions")
    try:
        execution = sfn.start_execution(
            stateMachineArn=machine, input=json.dumps({"ModelPackageArn": package_arn})
        )["executionArn"]
    except ClientError as error:
        if is_setup_error(error):
            raise
        raise CommandError(f"cannot start the release workflow: {describe(error)}") from None
    print(f"release started: {execution}", file=out)
    while True:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] in DONE:
            break
        sleep(poll_seconds)
    if described["status"] != "SUCCEEDED":
        cause = described.get("cause") or described["status"]
        raise CommandError(f"release failed: {cause}", exit_code=FAILED)
    print(f"released {package_arn}", file=out)
    return 0
