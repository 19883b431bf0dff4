"""Run or follow the release workflow for one model package version, and report its result.

Shared by `python -m grocery promote` (the newest approved version), `models rollback` (a
chosen approved version) and `models approve|reject` (which follow the release their
approval event starts). The workflow (Grocery-Release, docs/serving.md) queues behind an
older release, updates the serving stack through CloudFormation and checks that the
endpoint serves the version.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TextIO

import boto3
from botocore.exceptions import ClientError

from grocery.aws import describe, is_setup_error
from grocery.errors import FAILED, CommandError
from grocery.stack_outputs import stack_output
from stacks.names import stack_name

OUTPUT = "ReleaseStateMachineArn"
DONE = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# EventBridge delivers SageMaker's events "on a best-effort basis", usually within seconds
# (https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
EVENT_WAIT = timedelta(minutes=3)
# Execution start times come from the Step Functions clock, the approval time from this one.
CLOCK_SKEW = timedelta(minutes=1)


def _machine(session: boto3.Session, prefix: str) -> str:
    return stack_output(stack_name(prefix, "Release"), OUTPUT, session=session)


def _refuse(error: ClientError, what: str) -> CommandError:
    if is_setup_error(error):
        raise error
    return CommandError(f"cannot {what}: {describe(error)}")


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
    machine = _machine(session, prefix)
    sfn = session.client("stepfunctions")
    try:
        execution = sfn.start_execution(
            stateMachineArn=machine, input=json.dumps({"ModelPackageArn": package_arn})
        )["executionArn"]
    except ClientError as error:
        raise _refuse(error, "start the release workflow") from None
    print(f"release started: {execution}", file=out)
    report(wait(sfn, execution, poll_seconds=poll_seconds, sleep=sleep), out=out)
    return 0


def follow(
    session: boto3.Session,
    prefix: str,
    package_arn: str,
    status: str,
    since: datetime,
    *,
    out: TextIO = sys.stdout,
    poll_seconds: float = 10,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime],
) -> int:
    """Waits for the release that the approval event of (`package_arn`, `status`) started."""
    machine = _machine(session, prefix)
    sfn = session.client("stepfunctions")
    deadline = now() + EVENT_WAIT
    execution = None
    while execution is None:
        execution = _started_by(sfn, machine, package_arn, status, since - CLOCK_SKEW)
        if execution is None:
            if now() >= deadline:
                raise CommandError(
                    f"no release started within {int(EVENT_WAIT.total_seconds() // 60)} "
                    f"minutes of the change: check the EventBridge rule of "
                    f"{stack_name(prefix, 'Release')} (docs/serving.md), then run "
                    f"`python -m grocery promote --prefix {prefix}`",
                    exit_code=FAILED,
                )
            sleep(poll_seconds)
    print(f"release started: {execution}", file=out)
    report(wait(sfn, execution, poll_seconds=poll_seconds, sleep=sleep), out=out)
    return 0


def _started_by(sfn, machine: str, package_arn: str, status: str, since: datetime) -> str | None:
    """The execution whose input is the approval event of this version and status."""
    try:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine)
        for page in pages:
            for execution in page["executions"]:
                if execution["startDate"] < since:
                    return None  # newest first: the rest started before the change
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                detail = json.loads(described.get("input") or "{}").get("detail", {})
                if (
                    detail.get("ModelPackageArn") == package_arn
                    and detail.get("ModelApprovalStatus") == status
                ):
                    return execution["executionArn"]
    except ClientError as error:
        raise _refuse(error, f"list the executions of {machine}") from None
    return None


def wait(
    sfn, execution: str, *, poll_seconds: float, sleep: Callable[[float], None]
) -> dict[str, Any]:
    """The finished execution; a CommandError (exit 1) with its cause when it did not succeed."""
    while True:
        try:
            described = sfn.describe_execution(executionArn=execution)
        except ClientError as error:
            raise _refuse(error, f"describe release {execution}") from None
        if described["status"] in DONE:
            break
        sleep(poll_seconds)
    if described["status"] != "SUCCEEDED":
        cause = described.get("cause") or described["status"]
        raise CommandError(f"release failed: {cause}", exit_code=FAILED)
    return described


def report(described: dict[str, Any], *, out: TextIO) -> None:
    """One line: what the endpoint serves now, or that nothing had to change."""
    output = json.loads(described.get("output") or "{}")
    model, version = output.get("expected_model"), output.get("target", {}).get("version")
    if model:
        print(f"released version {version}: the endpoint and batch serve {model}", file=out)
        if note := output.get("labels", {}).get("note"):
            print(note, file=out)
    else:
        print("nothing to release: what is served stays as it was", file=out)
