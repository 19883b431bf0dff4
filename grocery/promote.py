"""`python -m grocery promote`: release the newest approved model version.

Finds the newest Approved version of the model registry (`<prefix>-classifier`) and runs
the release workflow for it (Grocery-Release): the release record, an UpdateStack of the
serving stack (blue/green endpoint update, rollback on the endpoint alarms), a check that
the endpoint serves the version, and the batch pointer. Waits for the result.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import boto3
from botocore.exceptions import ClientError

from grocery.arguments import add_prefix_option
from grocery.aws import describe, error_code, is_setup_error
from grocery.aws import session as aws_session
from grocery.errors import CommandError
from grocery.release import release
from stacks.names import APPROVED, model_package_group
from stacks.serving.names import endpoint_name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "promote",
        help="release the newest approved model version (blue/green endpoint update)",
        description=__doc__.split("\n\n")[1],
    )
    add_prefix_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="say what would be released")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class EndpointState:
    status: str
    config_name: str
    models: tuple[str, ...]  # ProductionVariants[].ModelName of the config it serves
    failure_reason: str = ""

    def summary(self) -> str:
        reason = f"; SageMaker says: {self.failure_reason}" if self.failure_reason else ""
        return f"serves {', '.join(self.models)} ({self.status}, config {self.config_name}{reason})"


def endpoint_state(sagemaker, name: str) -> EndpointState | None:
    """What the endpoint serves now, or None if there is no endpoint yet.

    DescribeEndpoint -> EndpointConfigName -> DescribeEndpointConfig ->
    ProductionVariants[].ModelName: after a rolled-back blue/green update the endpoint is
    InService on the old config, so only the config says which model answers.
    """
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if error_code(error) == "ValidationException":  # "Could not find endpoint ..."
            return None
        if is_setup_error(error):
            raise
        raise CommandError(f"cannot describe endpoint {name}: {describe(error)}") from None
    config_name = endpoint["EndpointConfigName"]
    try:
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except ClientError as error:
        if is_setup_error(error):
            raise
        raise CommandError(
            f"cannot describe endpoint config {config_name} of {name}: {describe(error)}"
        ) from None
    return EndpointState(
        status=endpoint.get("EndpointStatus", "?"),
        config_name=config_name,
        models=tuple(variant["ModelName"] for variant in config["ProductionVariants"]),
        failure_reason=endpoint.get("FailureReason", ""),
    )


def newest_approved(sagemaker, prefix: str) -> str:
    """The ARN of the newest Approved version, or a CommandError saying what to do."""
    group = model_package_group(prefix)
    try:
        page = sagemaker.list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus=APPROVED,
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )
    except ClientError as error:
        if is_setup_error(error):
            raise
        raise CommandError(f"cannot list model package group {group}: {describe(error)}") from None
    summaries = page["ModelPackageSummaryList"]
    if not summaries:
        raise CommandError(
            f"no approved version in {group} yet: run training, then approve a version "
            "(python -m grocery models list, python -m grocery models approve N)"
        )
    return summaries[0]["ModelPackageArn"]


def run(
    args: argparse.Namespace,
    *,
    session: boto3.Session | None = None,
    out: TextIO = sys.stdout,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    session = session or aws_session()
    arn = newest_approved(session.client("sagemaker"), args.prefix)
    endpoint = endpoint_name(args.prefix)
    before = endpoint_state(session.client("sagemaker"), endpoint)
    print(f"newest approved version: {arn}", file=out)
    print(f"endpoint {endpoint}: " + (before.summary() if before else "not created yet"), file=out)
    if args.dry_run:
        return 0
    return release(session, args.prefix, arn, out=out, sleep=sleep)
