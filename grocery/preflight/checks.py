"""The account-level checks: identity, region, CDK bootstrap, Powertools layer, API Gateway.

Each returns one `Check` (a row of the table). A refusal to look (AccessDenied) is a
warning, never a pass: preflight cannot tell, so it says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from botocore.exceptions import ClientError

from grocery.aws import describe, error_code, is_setup_error
from grocery.preflight.plan import Plan
from stacks.names import stack_name

# Every template `cdk synth` writes carries the CheckBootstrapVersion rule: "CDK bootstrap
# stack version 6 required" (aws-cdk-lib's DefaultStackSynthesizer MIN_BOOTSTRAP_STACK_VERSION).
# https://docs.aws.amazon.com/cdk/v2/guide/ref-cli-cmd-bootstrap.html
MIN_BOOTSTRAP_VERSION = 6
TOOLKIT_STACK = "CDKToolkit"


class Status(StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    BLOCKER = "BLOCKER"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""  # a command to run, printed under the table


def _cannot_tell(name: str, error: ClientError, what: str) -> Check:
    if is_setup_error(error) and error_code(error) not in ("AccessDenied", "AccessDeniedException"):
        raise error  # expired or invalid credentials: nothing else can be checked either
    return Check(name, Status.WARNING, f"cannot check ({describe(error)}); check {what} yourself")


def identity(sts, plan: Plan) -> tuple[Check, str]:
    """The caller's account (STS GetCallerIdentity needs no permission)."""
    caller = sts.get_caller_identity()
    account, arn = caller["Account"], caller["Arn"]
    if plan.account and plan.account != account:
        return (
            Check(
                "AWS account",
                Status.BLOCKER,
                f"your credentials are for {account}, the configuration deploys to "
                f"{plan.account} (config key 'account'): use credentials for {plan.account}",
            ),
            account,
        )
    return Check("AWS account", Status.OK, f"{account} as {arn}"), account


def algorithm_region(plan: Plan, region: str) -> Check:
    name = "region has the algorithm"
    if region in plan.algorithm_regions:
        return Check(name, Status.OK, f"image-classification is available in {region}")
    return Check(
        name,
        Status.BLOCKER,
        f"the image-classification algorithm is not available in {region}: set AWS_REGION "
        "(or config key 'region') to one of "
        + ", ".join(sorted(plan.algorithm_regions)[:6])
        + ", ...",
    )


def bootstrap(ssm, cloudformation, plan: Plan, account: str, region: str) -> Check:
    """The bootstrap version parameter the templates' CheckBootstrapVersion rule reads."""
    name = "CDK bootstrap"
    parameter = f"/cdk-bootstrap/{plan.bootstrap_qualifier}/version"
    # .venv/bin first: in this folder cdk may run the app (`python app.py`, cdk.json).
    fix = f'PATH="$PWD/.venv/bin:$PATH" npx cdk bootstrap aws://{account}/{region}'
    try:
        version = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) != "ParameterNotFound":
            return _cannot_tell(name, error, f"the SSM parameter {parameter}")
        return Check(name, Status.BLOCKER, _not_bootstrapped(cloudformation, parameter), fix)
    if not version.isdigit() or int(version) < MIN_BOOTSTRAP_VERSION:
        return Check(
            name,
            Status.BLOCKER,
            f"{parameter} is {version}, the app needs version {MIN_BOOTSTRAP_VERSION} or "
            "later: bootstrap again with this project's CDK CLI",
            fix,
        )
    return Check(name, Status.OK, f"version {version} ({parameter})")


def _not_bootstrapped(cloudformation, parameter: str) -> str:
    try:
        (stack,) = cloudformation.describe_stacks(StackName=TOOLKIT_STACK)["Stacks"]
    except ClientError:
        return (
            f"not bootstrapped (no {TOOLKIT_STACK} stack, no {parameter}): bootstrap once per "
            "account and region"
        )
    return (
        f"stack {TOOLKIT_STACK} is {stack['StackStatus']} but {parameter} does not exist "
        "(bootstrapped with another qualifier?): bootstrap with the default qualifier"
    )


def powertools_layer(ssm, plan: Plan, region: str) -> Check:
    """The public parameter every Lambda's layer ARN is resolved from at deploy time."""
    name = "Powertools layer"
    try:
        arn = ssm.get_parameter(Name=plan.powertools_parameter)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) != "ParameterNotFound":
            return _cannot_tell(name, error, f"the SSM parameter {plan.powertools_parameter}")
        return Check(
            name,
            Status.BLOCKER,
            f"{plan.powertools_parameter} is not published in {region}: every Lambda stack "
            "would fail; use another region or a version AWS publishes here "
            "(POWERTOOLS_VERSION in stacks/constructs/python_function.py)",
        )
    return Check(name, Status.OK, arn)


def api_gateway_logging_role(apigateway, plan: Plan) -> Check:
    """The account and region's API Gateway CloudWatch Logs role, one per account and region.

    REST API access logging needs it (https://docs.aws.amazon.com/apigateway/latest/
    developerguide/set-up-logging.html). With api_gateway_logging_role=create the storage
    stack sets its own (replacing any other); with `existing` the account must have one.
    """
    name = "API Gateway logging role"
    storage = stack_name(plan.prefix, "Storage")
    try:
        role = apigateway.get_account().get("cloudwatchRoleArn", "")
    except ClientError as error:
        return _cannot_tell(name, error, "apigateway get-account")
    ours = f":role/{storage}-ApiGatewayLogging" in role
    if plan.api_gateway_logging_role == "existing":
        if role:
            return Check(name, Status.OK, f"set in this account and region: {role}")
        return Check(
            name,
            Status.BLOCKER,
            "not set in this account and region, and api_gateway_logging_role=existing: the "
            f"{stack_name(plan.prefix, 'Serving')} API stage would fail to deploy; deploy with "
            "-c api_gateway_logging_role=create, or set a role in API Gateway's settings",
        )
    if not role or ours:
        return Check(name, Status.OK, f"{storage} sets it" + (f" ({role})" if role else ""))
    return Check(
        name,
        Status.WARNING,
        f"this account and region use {role}; deploying {storage} replaces it with its own "
        "role for every REST API here: to keep it, deploy with "
        "-c api_gateway_logging_role=existing",
    )
