"""`python -m grocery preflight`: what would fail minutes into the first deploy or training.

With your credentials, before `make deploy` or a training run, one table: the account and
region, whether the region has the algorithm, CDK bootstrap, the Powertools layer
parameter, the API Gateway logging role (informational), and the SageMaker quotas of the
configured instance types with the exact quota names to request. Reads only; changes
nothing. Exits 1 if any check is a BLOCKER.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import boto3

from grocery.aws import session as aws_session
from grocery.errors import FAILED
from grocery.preflight import checks
from grocery.preflight.checks import Check, Status
from grocery.preflight.plan import Plan, load_plan
from grocery.preflight.quotas import quota_checks
from grocery.preflight.table import render, verdict


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preflight",
        help="check the account before the first deploy or training run (read-only)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="configuration as given to cdk deploy (repeatable), e.g. -c use_spot_training=false",
    )
    parser.set_defaults(run=run)


def run_checks(session: boto3.Session, plan: Plan) -> tuple[str, str, list[Check]]:
    """(account, region, rows) for the plan's region, in the table's order."""
    region = session.region_name or ""
    identity, account = checks.identity(session.client("sts"), plan)
    ssm = session.client("ssm")
    rows = [
        identity,
        checks.algorithm_region(plan, region),
        checks.bootstrap(ssm, session.client("cloudformation"), plan, account, region),
        checks.powertools_layer(ssm, plan, region),
        checks.api_gateway_logging_role(session.client("apigateway"), plan),
        *quota_checks(session.client("service-quotas"), plan, region),
    ]
    return account, region, rows


def run(
    args: argparse.Namespace,
    *,
    session: boto3.Session | None = None,
    plan: Plan | None = None,
    out: TextIO = sys.stdout,
) -> int:
    plan = plan or load_plan(args.context)  # the configuration is checked before AWS
    session = session or aws_session(region=plan.region or None)
    account, region, rows = run_checks(session, plan)
    print(f"preflight: account {account}, region {region}, prefix {plan.prefix}", file=out)
    print(render(rows), file=out)
    print(verdict(rows), file=out)
    return FAILED if any(row.status is Status.BLOCKER for row in rows) else 0
