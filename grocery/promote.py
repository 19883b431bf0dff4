"""`python -m grocery promote`: serve the approved model, without downtime.

Checks the approved-model pointer (SSM), that its SageMaker Model and labels.json
exist, and what the endpoint serves now; then re-deploys the serving stack
(`npx cdk deploy <Prefix>-Serving --exclusively`). CloudFormation creates a new
endpoint config and updates the endpoint in place: SageMaker starts a new fleet with the
autoscaled instance count, shifts all traffic to it, watches the endpoint's alarms
for the baking period and rolls back to the old fleet if one fires. Afterwards it checks
that the endpoint really serves the approved model, and fails if it does not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from grocery.arguments import prefix as prefix_argument
from grocery.aws import describe, error_code, is_setup_error
from grocery.aws import session as aws_session
from grocery.classify import read_labels
from grocery.errors import FAILED, CommandError
from stacks.names import NO_APPROVED_MODEL, approved_model_parameter, stack_name
from stacks.serving.names import endpoint_name

REPO = Path(__file__).resolve().parents[1]

# (command, working directory, environment) -> exit code
Runner = Callable[[Sequence[str], Path, Mapping[str, str]], int]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "promote",
        help="serve the approved model (re-deploys the serving stack, blue/green)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "--prefix",
        default="grocery",
        type=prefix_argument,
        help="the app's prefix (default: grocery)",
    )
    parser.add_argument("--dry-run", action="store_true", help="check and print, deploy nothing")
    parser.add_argument(
        "--force", action="store_true", help="deploy even if the endpoint serves this model already"
    )
    parser.add_argument(
        "cdk_args",
        nargs=argparse.REMAINDER,
        metavar="-- CDK_ARGS",
        help="passed to cdk deploy, e.g. -- -c endpoint_max_instances=4 (use the -c values "
        "you deployed with)",
    )
    parser.set_defaults(run=run)


def _pointer(prefix: str, field: str, ssm) -> str:
    name = approved_model_parameter(prefix, field)
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            raise CommandError(
                f"SSM parameter {name} does not exist in {ssm.meta.region_name}: deploy the app "
                "first (make deploy), or set AWS_REGION to the region it is deployed in"
            ) from None
        raise CommandError(f"cannot read SSM parameter {name} ({describe(error)})") from None


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


def check_serves(endpoint: str, model: str, state: EndpointState | None) -> None:
    """Fails (exit 1) unless every variant of the InService endpoint serves `model`."""
    if state and state.status == "InService" and set(state.models) == {model}:
        return
    now = state.summary() if state else "does not exist"
    raise CommandError(
        f"cdk deploy succeeded but endpoint {endpoint} {now}, not the approved model {model}: "
        "SageMaker rolled the update back (an alarm fired during the baking period, or the "
        f"new fleet did not start). Look at `aws sagemaker describe-endpoint --endpoint-name "
        f"{endpoint}` (FailureReason), the endpoint's alarms and the log group "
        f"/aws/sagemaker/Endpoints/{endpoint}, then promote again with --force",
        exit_code=FAILED,
    )


def deploy_failed_message(code: int, endpoint: str, state: EndpointState | None) -> str:
    now = state.summary() if state else "does not exist"
    return (
        f"cdk deploy failed (exit {code}): its output above names the resource that failed "
        f"and why. Endpoint {endpoint} {now}"
    )


def cdk_deploy_command(prefix: str, extra: Sequence[str]) -> list[str]:
    extra = [arg for arg in extra if arg != "--"]
    return [
        "npx",
        "--no-install",
        "cdk",
        "deploy",
        stack_name(prefix, "Serving"),
        "--exclusively",
        "--require-approval",
        "never",
        "--no-notices",
        "-c",
        f"prefix={prefix}",
        *extra,
    ]


def cdk_environment(region: str | None) -> dict[str, str]:
    """This process's environment for cdk: the project's Python first on PATH (cdk runs
    `python app.py`), and the region promote checked, so cdk deploys to the same one."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    return env


def _run(command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    if shutil.which(command[0]) is None:
        raise CommandError(f"{command[0]} not found: install Node.js and run `make synth` first")
    return subprocess.run(list(command), cwd=cwd, env=dict(env), check=False).returncode


def run(
    args: argparse.Namespace,
    *,
    session: boto3.Session | None = None,
    runner: Runner = _run,
) -> int:
    session = session or aws_session()
    ssm, sagemaker = session.client("ssm"), session.client("sagemaker")
    model = _pointer(args.prefix, "model-name", ssm)
    labels_uri = _pointer(args.prefix, "labels-uri", ssm)
    if NO_APPROVED_MODEL in (model, labels_uri):
        raise CommandError(
            "no approved model yet: run the training pipeline; a model that passes the accuracy "
            "gate is written to the pointer, then promote it"
        )
    try:
        sagemaker.describe_model(ModelName=model)
    except ClientError as error:
        if is_setup_error(error):
            raise
        raise CommandError(
            f"the approved model {model} does not exist in SageMaker ({describe(error)}): "
            "re-run training"
        ) from None
    labels = read_labels(labels_uri, session)
    endpoint = endpoint_name(args.prefix)
    before = endpoint_state(sagemaker, endpoint)
    print(f"approved model: {model} ({len(labels)} labels, {labels_uri})")
    print(f"endpoint {endpoint}: " + (before.summary() if before else "not created yet"))
    if before and before.status == "InService" and before.models == (model,) and not args.force:
        print("nothing to promote: the endpoint serves the approved model (use --force to deploy)")
        return 0
    command = cdk_deploy_command(args.prefix, args.cdk_args or [])
    print("running: " + " ".join(command))
    if args.dry_run:
        return 0
    code = runner(command, REPO, cdk_environment(session.region_name))
    try:
        after = endpoint_state(sagemaker, endpoint)
    except (CommandError, BotoCoreError, ClientError):
        if code != 0:  # say what failed first; the endpoint's state is a detail
            raise CommandError(
                f"cdk deploy failed (exit {code}): its output above names the resource that "
                "failed and why",
                exit_code=code,
            ) from None
        raise
    if code != 0:
        raise CommandError(deploy_failed_message(code, endpoint, after), exit_code=code)
    check_serves(endpoint, model, after)
    print(f"endpoint {endpoint} now serves {model}")
    return 0
