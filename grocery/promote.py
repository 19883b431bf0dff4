"""`python -m grocery promote`: serve the approved model, without downtime.

Checks the approved-model pointer (SSM), that its SageMaker Model and labels.json
exist, and what the endpoint serves now; then re-deploys the serving stack
(`npx cdk deploy <Prefix>-Serving --exclusively`). CloudFormation creates a new
endpoint config and updates the endpoint in place: SageMaker starts a new fleet with the
autoscaled instance count, shifts all traffic to it, watches the endpoint's alarms
for the baking period and rolls back to the old fleet if one fires.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from grocery.classify import _read_labels
from grocery.errors import CommandError
from stacks.names import NO_APPROVED_MODEL, approved_model_parameter, stack_name
from stacks.serving.names import endpoint_name

REPO = Path(__file__).resolve().parents[1]

Runner = Callable[[Sequence[str], Path], int]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "promote",
        help="serve the approved model (re-deploys the serving stack, blue/green)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("--prefix", default="grocery", help="the app's prefix (default: grocery)")
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
    except (ClientError, BotoCoreError) as error:
        raise CommandError(
            f"cannot read SSM parameter {name} ({error}): deploy the app first (make deploy)"
        ) from None


def serving_model(sagemaker, name: str) -> str | None:
    """The model the endpoint serves now, or None if there is no endpoint yet."""
    try:
        config_name = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationException":
            return None
        raise CommandError(f"cannot describe endpoint {name}: {error}") from None
    return config["ProductionVariants"][0]["ModelName"]


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


def _run(command: Sequence[str], cwd: Path) -> int:
    if shutil.which(command[0]) is None:
        raise CommandError(f"{command[0]} not found: install Node.js and run `make synth` first")
    env = dict(os.environ)
    # cdk runs `python app.py`: use this interpreter's environment (the project's .venv).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(command), cwd=cwd, env=env, check=False).returncode


def run(
    args: argparse.Namespace,
    *,
    session: boto3.Session | None = None,
    runner: Runner = _run,
) -> int:
    session = session or boto3.Session()
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
        raise CommandError(
            f"the approved model {model} does not exist in SageMaker ({error}): re-run training"
        ) from None
    labels = _read_labels(labels_uri, session)
    endpoint = endpoint_name(args.prefix)
    current = serving_model(sagemaker, endpoint)
    print(f"approved model: {model} ({len(labels)} labels, {labels_uri})")
    print(f"endpoint {endpoint}: " + (f"serves {current}" if current else "not created yet"))
    if current == model and not args.force:
        print("nothing to promote: the endpoint serves the approved model (use --force to deploy)")
        return 0
    command = cdk_deploy_command(args.prefix, args.cdk_args or [])
    print("running: " + " ".join(command))
    if args.dry_run:
        return 0
    code = runner(command, REPO)
    if code != 0:
        raise CommandError(
            f"cdk deploy failed (exit {code}); if an alarm fired during the baking period, "
            "SageMaker kept the old fleet serving and CloudFormation rolled the stack back",
            exit_code=code,
        )
    now = serving_model(sagemaker, endpoint)
    print(f"endpoint {endpoint} now serves {now}")
    return 0 if now == model else 1
