"""Starts the training state machine on a new dataset or on the retraining schedule.

Two events reach this function (stacks/training/triggers.py):

- an S3 "Object Created" event of the training-data bucket, through EventBridge, for
  `datasets/<name>/manifest.json` (written last by `python -m preprocessing upload`):
  a full training on that dataset;
- the EventBridge Scheduler schedule's `{"trigger": "schedule", "scheduled_time": ...}`:
  a training on the newest dataset, incremental from the serving version when
  RETRAIN_INCREMENTAL is on and the labels match (retrain_trigger.plan), else full.

The training state machine itself refuses a start while another training of the
deployment runs, and notifies. A StartExecution that fails here (the same execution
name already used, throttling, the account's execution limit) is logged, counted as
RetrainStartRefused and published on the notification topic; it is not retried.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import ClientError

from grocery_common.batch_layout import parse_s3_uri
from retrain_trigger.datasets import LABELS_FILE, dataset_of_manifest, newest_dataset, read_labels
from retrain_trigger.plan import (
    SCHEDULE,
    Plan,
    dataset_plan,
    event_time,
    schedule_plan,
)
from retrain_trigger.serving import ServedVersion, served_version

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Grocery-Training"))
STARTED, REFUSED, SKIPPED = "RetrainStarted", "RetrainStartRefused", "RetrainSkipped"
# Standard retries ride out short throttling before a start counts as refused.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
_HINTS = {
    "ExecutionAlreadyExists": "an execution of this name exists: this event was already "
    "handled (a repeated delivery), or the name was used in the last 90 days",
    "ExecutionLimitExceeded": "the account's limit of open executions is reached",
    "ThrottlingException": "Step Functions throttled the start",
}


class Clients:
    """One client per service and execution environment, made on first use and reused
    across invocations."""

    @functools.cached_property
    def s3(self) -> Any:
        return boto3.client("s3", config=_CLIENT_CONFIG)

    @functools.cached_property
    def ssm(self) -> Any:
        return boto3.client("ssm", config=_CLIENT_CONFIG)

    @functools.cached_property
    def sagemaker(self) -> Any:
        return boto3.client("sagemaker", config=_CLIENT_CONFIG)

    @functools.cached_property
    def stepfunctions(self) -> Any:
        return boto3.client("stepfunctions", config=_CLIENT_CONFIG)

    @functools.cached_property
    def sns(self) -> Any:
        return boto3.client("sns", config=_CLIENT_CONFIG)


CLIENTS = Clients()


@dataclasses.dataclass(frozen=True)
class Settings:
    training_bucket: str
    state_machine_arn: str
    release_parameter: str
    topic_arn: str
    incremental: bool

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            training_bucket=env["TRAINING_BUCKET"],
            state_machine_arn=env["STATE_MACHINE_ARN"],
            release_parameter=env["RELEASE_PARAMETER"],
            topic_arn=env["TOPIC_ARN"],
            incremental=env.get("RETRAIN_INCREMENTAL", "true").lower() == "true",
        )


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    s3 = CLIENTS.s3
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        plan, when = _plan_for_upload(event, settings), event.get("time")
    elif event.get("trigger") == SCHEDULE:
        plan, when = _plan_for_schedule(s3, settings), event.get("scheduled_time")
    else:
        raise ValueError(f"not a retraining event (keys: {sorted(event)[:10]})")
    if plan is None:
        metrics.add_metric(name=SKIPPED, unit=MetricUnit.Count, value=1)
        return {"started": False}
    return start(plan, event_time(when), settings)


def _plan_for_upload(event: dict[str, Any], settings: Settings) -> Plan | None:
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    key = (detail.get("object") or {}).get("key", "")
    prefix = dataset_of_manifest(key)
    if bucket != settings.training_bucket or prefix is None:
        # The rule's pattern lets only these through; anything else is logged and left.
        logger.warning("not a dataset manifest of the training bucket", extra={"key": key})
        return None
    return dataset_plan(prefix)


def _plan_for_schedule(s3: Any, settings: Settings) -> Plan | None:
    bucket = settings.training_bucket
    dataset = newest_dataset(s3, bucket)
    if dataset is None:
        logger.warning(
            "scheduled retraining skipped: no dataset under datasets/ has a manifest.json; "
            "upload one with `python -m preprocessing upload`",
            extra={"bucket": bucket},
        )
        return None
    served = None
    if settings.incremental:
        served = served_version(CLIENTS.ssm, CLIENTS.sagemaker, settings.release_parameter)

    def version_labels(version: ServedVersion) -> list[str]:
        return read_labels(s3, *parse_s3_uri(version.labels_uri))

    return schedule_plan(
        dataset,
        served,
        incremental=settings.incremental,
        dataset_labels=lambda: read_labels(s3, bucket, f"{dataset.prefix}{LABELS_FILE}"),
        version_labels=version_labels,
    )


def start(plan: Plan, when: Any, settings: Settings) -> dict[str, Any]:
    """StartExecution of the training state machine; a refused start is notified."""
    name = plan.execution_name(when)
    summary = {"trigger": plan.trigger, "dataset": plan.dataset, "mode": plan.mode}
    metrics.add_dimension("Trigger", plan.trigger)
    sfn = CLIENTS.stepfunctions
    try:
        response = sfn.start_execution(
            stateMachineArn=settings.state_machine_arn,
            name=name,
            input=json.dumps(plan.execution_input()),
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        text = error.response.get("Error", {}).get("Message", str(error))
        logger.error(
            "training not started",
            extra={**summary, "execution_name": name, "error": code, "detail": text},
        )
        metrics.add_metric(name=REFUSED, unit=MetricUnit.Count, value=1)
        _notify_refused(settings, plan, name, code, text)
        return {**summary, "started": False, "execution_name": name, "error": code}
    metrics.add_metric(name=STARTED, unit=MetricUnit.Count, value=1)
    logger.info(
        f"{plan.mode} training started: {plan.reason}",
        extra={**summary, "execution_arn": response["executionArn"], "why": plan.reason},
    )
    return {**summary, "started": True, "execution_arn": response["executionArn"]}


def _notify_refused(settings: Settings, plan: Plan, name: str, code: str, text: str) -> None:
    machine = settings.state_machine_arn.rsplit(":", 1)[-1]
    origin = f", from version {plan.version}" if plan.version else ""
    lines = [
        f"The {plan.trigger} retraining trigger did not start a training of {machine}.",
        "",
        f"Dataset: {plan.dataset} ({plan.mode} training{origin})",
        f"Why it was to start: {plan.reason}",
        f"Execution name: {name}",
        f"Step Functions answered {code}: {text}",
        f"That means: {_HINTS.get(code, 'the start was refused')}.",
        "",
        "Look at the state machine's executions; to train anyway, start it by hand:",
        f"  python -m grocery train --dataset {plan.dataset}",
    ]
    CLIENTS.sns.publish(
        TopicArn=settings.topic_arn,
        Subject=f"Retraining not started ({plan.trigger} trigger)",
        Message="\n".join(lines),
    )
