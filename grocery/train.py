"""`python -m grocery train`: train, gate and register a model with the training pipeline.

Starts an execution of the training state machine (Grocery-Training) on a dataset
uploaded with `python -m preprocessing upload`, then follows it: the states it enters,
the training job's status and its metrics. Prints the registered model version and its accuracy;
exits 1 with the cause if the pipeline fails (e.g. accuracy below the threshold).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from grocery import train_from_version, train_tuning
from grocery.arguments import add_prefix_option
from grocery.aws import session as aws_session
from grocery.errors import FAILED, CommandError
from grocery.stack_outputs import stack_output

DEFAULT_STACK = "Grocery-Training"
STATE_MACHINE_OUTPUT = "StateMachineArn"
BUCKET_OUTPUT = "TrainingDataBucketName"
DEFAULT_POLL_SECONDS = 30.0
# Always read from the dataset's manifest.json (stacks.config.MANIFEST_HYPERPARAMETERS;
# not imported, to keep the CLI free of CDK).
MANIFEST_HYPERPARAMETERS = ("num_classes", "num_training_samples")
_HYPERPARAMETER = re.compile(r"^([A-Za-z0-9_]+)=(.+)$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[0-9]*x?large$")
_S3_URI = re.compile(r"^s3://([^/]+)/(.*)$")
_OTHER_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="run the training pipeline on an uploaded dataset and follow it",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="the uploaded dataset: s3://<training-data bucket>/<prefix>/ (as printed by "
        "`python -m preprocessing upload`) or just <prefix>/",
    )
    parser.add_argument(
        "--hyperparameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one hyperparameter for this run (repeatable), e.g. epochs=10",
    )
    parser.add_argument(
        "--instance-type", help="GPU training instance for this run (default: the config's)"
    )
    parser.add_argument(
        "--from-version",
        type=_version_number,
        metavar="N",
        help="train incrementally from registered version N (its model seeds the run; the "
        "dataset's labels must equal the version's; fewer epochs by default)",
    )
    train_tuning.add_arguments(parser)
    add_prefix_option(parser, help="the app's prefix, for --from-version (default: grocery)")
    parser.add_argument(
        "--stack", default=DEFAULT_STACK, help=f"training stack name (default: {DEFAULT_STACK})"
    )
    parser.add_argument(
        "--storage-stack",
        help="storage stack name, to check the dataset's bucket (default: the training "
        "stack's name with -Storage)",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="start the execution, print its ARN and return"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=DEFAULT_POLL_SECONDS,
        help=f"how often to check progress (default: {DEFAULT_POLL_SECONDS:g})",
    )
    parser.set_defaults(run=run)


def _version_number(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"version must be a whole number >= 1, not {value!r}")
    return int(value)


# --- the execution input ------------------------------------------------------------------


def dataset_prefix(dataset: str, training_bucket: str | None) -> str:
    """The key prefix the state machine takes (`datasets/grocery/`), from a URI or a prefix."""
    match = _S3_URI.match(dataset.strip())
    if match:
        bucket, prefix = match.groups()
        if training_bucket and bucket != training_bucket:
            raise CommandError(
                f"--dataset {dataset}: the pipeline reads the training-data bucket "
                f"'{training_bucket}', not '{bucket}'; upload it there with "
                "`python -m preprocessing upload`"
            )
    elif _OTHER_URI.match(dataset.strip()):
        raise CommandError(
            f"--dataset {dataset!r}: the pipeline reads S3 only; use s3://<bucket>/<prefix>/ "
            "or <prefix>/ as printed by `python -m preprocessing upload`"
        )
    else:
        prefix = dataset.strip()
    prefix = prefix.strip("/")
    if not prefix or "//" in prefix:
        raise CommandError(
            f"--dataset {dataset!r}: name the dataset's prefix, e.g. s3://<bucket>/datasets/grocery/"
        )
    return f"{prefix}/"


def hyperparameter_overrides(pairs: list[str]) -> dict[str, str]:
    """`["epochs=10"]` -> {"epochs": "10"}, with the checks the state machine cannot make."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        match = _HYPERPARAMETER.match(pair.strip())
        if not match:
            raise CommandError(f"--hyperparameter {pair!r}: use KEY=VALUE, e.g. epochs=10")
        key, value = match.groups()
        if key in MANIFEST_HYPERPARAMETERS:
            raise CommandError(
                f"--hyperparameter {key}: the pipeline takes it from the dataset's manifest.json"
            )
        if key == "mini_batch_size" and not (value.isdigit() and int(value) > 0):
            raise CommandError(
                f"--hyperparameter mini_batch_size={value}: use a positive whole number"
            )
        if len(value) > 256:
            raise CommandError(f"--hyperparameter {key}: values are limited to 256 characters")
        overrides[key] = value
    return overrides


def execution_input(args: argparse.Namespace, training_bucket: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"dataset": dataset_prefix(args.dataset, training_bucket)}
    overrides = hyperparameter_overrides(args.hyperparameter)
    if args.from_version:
        train_from_version.check_hyperparameters(overrides, args.from_version)
    if overrides:
        payload["hyperparameters"] = overrides
    if args.instance_type:
        if not _INSTANCE.match(args.instance_type):
            raise CommandError(
                f"--instance-type {args.instance_type!r}: use a SageMaker GPU type such as ml.p3.2xlarge"
            )
        payload["instance_type"] = args.instance_type
    tuning = train_tuning.tuning_input(args)
    if tuning is not None:
        payload["tuning"] = tuning
    return payload


def execution_name(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"train-{stamp}-{uuid.uuid4().hex[:6]}"


# --- following an execution ---------------------------------------------------------------


@dataclass
class Follower:
    """Prints what changed since the last poll: states entered, job status, metrics."""

    sfn: Any
    sagemaker: Any
    execution_arn: str
    out: TextIO = sys.stdout
    _seen_events: int = 0
    _job: str | None = None
    _job_status: tuple[str, str] | None = None
    _metrics: dict[str, float] = field(default_factory=dict)

    def poll(self) -> dict[str, Any]:
        """One round; returns describe_execution."""
        for event in self._new_events():
            if "stateEnteredEventDetails" in event:
                self._say(f"state: {event['stateEnteredEventDetails']['name']}")
            details = event.get("taskScheduledEventDetails")
            if details and "createTrainingJob" in details.get("resource", ""):
                self._job = json.loads(details["parameters"]).get("TrainingJobName")
                self._say(f"training job: {self._job}")
            if details and "createHyperParameterTuningJob" in details.get("resource", ""):
                name = json.loads(details["parameters"]).get("HyperParameterTuningJobName")
                self._say(f"tuning job: {name}")
        if self._job:
            self._report_job()
        return self.sfn.describe_execution(executionArn=self.execution_arn)

    def _new_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": self.execution_arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        new = events[self._seen_events :]
        self._seen_events = len(events)
        return new

    def _report_job(self) -> None:
        try:
            job = self.sagemaker.describe_training_job(TrainingJobName=self._job)
        except ClientError:
            return  # not created yet, or not visible yet: try again next poll
        status = (job.get("TrainingJobStatus", ""), job.get("SecondaryStatus", ""))
        if status != self._job_status:
            self._job_status = status
            self._say(f"training job status: {status[0]} ({status[1]})")
        for metric in job.get("FinalMetricDataList", []):
            name, value = metric["MetricName"], metric["Value"]
            if self._metrics.get(name) != value:
                self._metrics[name] = value
                self._say(f"metric {name}: {value:.4f}")

    def _say(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        print(f"[{stamp}] {message}", file=self.out, flush=True)


def failure_message(description: dict[str, Any]) -> str:
    """The execution's cause in one paragraph (a failed job's FailureReason when it has one)."""
    cause = description.get("cause") or description.get("error") or description["status"]
    error, _, detail = cause.partition(": ")
    try:
        parsed = json.loads(detail)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and parsed.get("FailureReason"):
        return f"{error}: training job {parsed.get('TrainingJobName', '')} failed: {parsed['FailureReason']}"
    return cause


def follow(
    follower: Follower, *, poll_seconds: float, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Polls until the execution ends; returns its final describe_execution."""
    while True:
        description = follower.poll()
        if description["status"] != "RUNNING":
            return description
        sleep(poll_seconds)


def summary(output: dict[str, Any]) -> str:
    return "\n".join(
        [
            # Training registers a version; only its approval releases it (models approve).
            f"registered: version {output.get('model_package', {}).get('version', '?')} "
            "of the model registry (python -m grocery models list)",
            f"validation:accuracy: {output['validation_accuracy']} "
            f"(threshold {output['accuracy_threshold']})",
            f"training job: {output['training_job']}",
            f"artifact: {output['artifact']}",
            f"labels: {output['labels_uri']}",
            *(
                f"{label}: {value}"
                for label, value in (
                    (
                        "trained from version",
                        output.get("provenance", {}).get("trained_from_version"),
                    ),
                    ("tuning summary", output.get("provenance", {}).get("tuning_summary")),
                )
                if value and value != "none"
            ),
        ]
    )


def _storage_stack(args: argparse.Namespace) -> str:
    if args.storage_stack:
        return args.storage_stack
    return re.sub(r"-Training$", "-Storage", args.stack)


def run(
    args: argparse.Namespace,
    *,
    session: boto3.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    out: TextIO = sys.stdout,
    stdin: TextIO | None = None,
    ask: Callable[[str], str] = input,
) -> int:
    if args.poll_seconds <= 0:
        raise CommandError(f"--poll-seconds {args.poll_seconds}: use a positive number of seconds")
    execution_input(args, None)  # every local check before AWS is reached
    session = session or aws_session()
    state_machine = stack_output(args.stack, STATE_MACHINE_OUTPUT, session=session)
    bucket = (
        stack_output(_storage_stack(args), BUCKET_OUTPUT, session=session)
        if _S3_URI.match(args.dataset.strip()) or args.from_version
        else None
    )
    payload = execution_input(args, bucket)
    if args.from_version:
        # Refused here, before anything starts, when the labels differ.
        chosen = train_from_version.initial_model(
            session,
            prefix=args.prefix,
            number=args.from_version,
            bucket=bucket,
            dataset=payload["dataset"],
        )
        payload["initial_model"] = chosen.execution_input()
        print(
            f"incremental training from version {chosen.version} ({chosen.model_data})",
            file=out,
        )
    sfn = session.client("stepfunctions")
    if "tuning" in payload:
        settings = train_tuning.deployed(sfn, state_machine)
        cost = train_tuning.worst_case(settings, payload["tuning"], args.instance_type)
        train_tuning.confirm(cost, yes=args.yes, out=out, stdin=stdin, ask=ask)
    try:
        execution_arn = sfn.start_execution(
            stateMachineArn=state_machine, name=execution_name(), input=json.dumps(payload)
        )["executionArn"]
    except (ClientError, BotoCoreError) as error:
        raise CommandError(f"cannot start the training pipeline: {error}") from None
    print(f"started {execution_arn}", file=out)
    print(f"input: {json.dumps(payload)}", file=out, flush=True)
    if args.no_wait:
        return 0
    follower = Follower(sfn, session.client("sagemaker"), execution_arn, out=out)
    description = follow(follower, poll_seconds=args.poll_seconds, sleep=sleep)
    if description["status"] != "SUCCEEDED":
        raise CommandError(
            f"training pipeline {description['status'].lower()}: {failure_message(description)}",
            exit_code=FAILED,
        )
    print(summary(json.loads(description["output"])), file=out)
    return 0
