"""Run a stack's REAL state machine definition in moto.

Shared by every e2e test that executes a state machine (training, batch). API:

- `render_definition(template, logical_id, values)`: the state machine's ASL with every
  CloudFormation intrinsic resolved to a real value (moto bucket names, topic ARNs, ...).
- `rewrite_sync_to_callback(definition)`: a copy in which every
  `arn:aws:states:::sagemaker:create*Job.sync` task becomes `.waitForTaskToken` and
  carries the task token in a tag (`TASK_TOKEN_TAG`), because moto does not run
  SageMaker `.sync` integrations. Everything else in the definition is untouched.
- `create_state_machine(sfn, definition)`: registers it in moto; returns the ARN.
- `start_execution(sfn, arn, payload)` / `wait_for_execution(sfn, execution_arn)`:
  start, and poll until the execution leaves RUNNING.
- `wait_for_task_token(sfn, execution_arn, "createTrainingJob")`: poll the history until
  the rewritten task is scheduled; returns a `ScheduledTask` (token + the task's
  evaluated Parameters), to finish it with `sfn.send_task_success(...)` or
  `fail_task(token, error=..., cause=...)` (moto's send_task_failure API drops the cause),
  or, for a SageMaker job that ends Failed, `fail_sync_job(task, reason)`: the one shared
  fake of what Step Functions reports then (see `SYNC_JOB_FAILED`), inside
  `sync_failures_like_aws()`.
- `run_execution(...)`: start + wait in one call (for definitions with no callback task).
- `history(sfn, execution_arn)`, `state_sequence(...)`: for assertions on the path taken.

Use inside `mock_aws(config=MOTO_CONFIG)` (moto only executes ASL with that config).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
ACCOUNT = "123456789012"
REGION = "us-east-1"
TASK_TOKEN_TAG = "sfn-local:task-token"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/sfn-local-test-role"

_SYNC_RESOURCE = re.compile(r"^arn:aws:states:::sagemaker:(create\w*Job)\.sync$")
_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


class UnresolvedIntrinsicError(KeyError):
    """An intrinsic in the definition has no value in `values`; the message says which key to add."""


# --- rendering ---------------------------------------------------------------------------


def render_definition(
    template: Mapping[str, Any], logical_id: str | None = None, values: Mapping[str, str] = ()
) -> dict[str, Any]:
    """The ASL of one state machine in a synthesized template, intrinsics resolved.

    `values` maps what the template references to what moto has:
    - `Ref` of a resource: key = the logical id, e.g. {"TopicD7D3AF53": topic_arn};
    - `Fn::GetAtt`: key = "LogicalId.Attribute", e.g. {"Role1ABCD.Arn": role_arn};
    - `Fn::ImportValue` (cross-stack references): key = the export name as rendered.
    Pseudo parameters (AWS::Region, ...) and `Fn::FindInMap` over the template's own
    Mappings resolve by themselves. Anything else raises UnresolvedIntrinsicError naming the key.
    `logical_id` may be omitted when the template has exactly one state machine.
    """
    machines = {
        key: resource
        for key, resource in template["Resources"].items()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    }
    if logical_id is None:
        if len(machines) != 1:
            raise ValueError(f"name the state machine: the template has {sorted(machines)}")
        (logical_id,) = machines
    definition = machines[logical_id]["Properties"]["DefinitionString"]
    resolver = _Resolver(template, dict(values))
    return json.loads(resolver.string(definition))


@dataclasses.dataclass
class _Resolver:
    template: Mapping[str, Any]
    values: dict[str, str]

    def string(self, part: Any) -> str:  # noqa: PLR0911 (one return per intrinsic)
        if isinstance(part, str):
            return part
        (name, value), *_ = part.items()
        if name == "Ref":
            return self._lookup(value)
        if name == "Fn::GetAtt":
            resource, attribute = value if isinstance(value, list) else value.split(".", 1)
            return self._lookup(f"{resource}.{attribute}")
        if name == "Fn::Join":
            separator, parts = value
            return separator.join(self.string(item) for item in parts)
        if name == "Fn::ImportValue":
            return self._lookup(self.string(value))
        if name == "Fn::FindInMap":
            mapping, top, second = (self.string(item) for item in value)
            return self.template["Mappings"][mapping][top][second]
        if name == "Fn::Select":
            index, items = value
            return self.string(items[int(index)])
        raise UnresolvedIntrinsicError(f"no renderer for {name}: {json.dumps(part)}")

    def _lookup(self, key: str) -> str:
        if key in self.values:
            return self.values[key]
        if key in _PSEUDO:
            return _PSEUDO[key]
        raise UnresolvedIntrinsicError(
            f"add {key!r} to `values` (the definition references it); known: {sorted(self.values)}"
        )


# --- the test-only .sync rewrite -----------------------------------------------------------


def rewrite_sync_to_callback(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy in which SageMaker `create*Job.sync` tasks wait for a task token instead.

    The token travels in a tag (`TASK_TOKEN_TAG`) appended to the job's Tags, so moto
    still creates the job with the task's real Parameters; the test completes the task
    with a Describe*Job-shaped output (see `wait_for_task_token`). Works on Parallel
    branches and Map item processors too. Raises ValueError if nothing was rewritten.
    """
    rewritten = copy.deepcopy(dict(definition))
    count = _rewrite_states(rewritten["States"])
    if not count:
        raise ValueError("no arn:aws:states:::sagemaker:create*Job.sync task in the definition")
    return rewritten


def _rewrite_states(states: dict[str, Any]) -> int:
    count = 0
    for state in states.values():
        match = _SYNC_RESOURCE.match(state.get("Resource", ""))
        if state.get("Type") == "Task" and match:
            state["Resource"] = f"arn:aws:states:::sagemaker:{match.group(1)}.waitForTaskToken"
            parameters = state.setdefault("Parameters", {})
            tags = list(parameters.get("Tags", []))
            tags.append({"Key": TASK_TOKEN_TAG, "Value.$": "$$.Task.Token"})
            parameters["Tags"] = tags
            count += 1
        for branch in state.get("Branches", []):
            count += _rewrite_states(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                count += _rewrite_states(state[key]["States"])
    return count


# --- running -------------------------------------------------------------------------------


def create_state_machine(
    sfn, definition: Mapping[str, Any], *, name: str = "under-test", role_arn: str = ROLE_ARN
) -> str:
    """Registers the definition in moto (a STANDARD state machine); returns its ARN."""
    response = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=role_arn, type="STANDARD"
    )
    return response["stateMachineArn"]


def start_execution(
    sfn,
    state_machine_arn: str,
    payload: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
) -> str:
    """Starts an execution (named uniquely unless `name` is given); returns its ARN."""
    return sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=name or f"test-{uuid.uuid4()}",
        input=json.dumps(payload or {}),
    )["executionArn"]


def wait_for_execution(sfn, execution_arn: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """Polls until the execution is no longer RUNNING; returns describe_execution's response.

    `output` (when present) is parsed into `output_json` for convenience.
    """
    deadline = time.monotonic() + timeout
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            if "output" in description:
                description["output_json"] = json.loads(description["output"])
            return description
        if time.monotonic() > deadline:
            states = state_sequence(sfn, execution_arn)
            raise TimeoutError(f"execution still RUNNING after {timeout}s; states so far: {states}")
        time.sleep(0.05)


def run_execution(
    sfn,
    state_machine_arn: str,
    payload: Mapping[str, Any] | None = None,
    *,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """start_execution + wait_for_execution."""
    execution_arn = start_execution(sfn, state_machine_arn, payload)
    return wait_for_execution(sfn, execution_arn, timeout=timeout)


@dataclasses.dataclass(frozen=True)
class ScheduledTask:
    """A rewritten callback task waiting for the test: send `token` back with the outcome."""

    token: str
    parameters: dict[str, Any]
    state_name: str
    operation: str = ""  # e.g. "createTransformJob"

    @property
    def tags(self) -> dict[str, str]:
        return {tag["Key"]: tag["Value"] for tag in self.parameters.get("Tags", [])}


def wait_for_task_token(
    sfn, execution_arn: str, operation: str = "", *, timeout: float = 30.0
) -> ScheduledTask:
    """Waits until a rewritten task (e.g. operation="createTrainingJob") is scheduled.

    Returns its token and evaluated Parameters (job name, S3 URIs, hyperparameters, ...).
    With several such tasks in one execution, the first not yet handed out by this
    function for that execution is returned. Fails with the states seen so far if the
    execution ends (or times out) first.
    """
    deadline = time.monotonic() + timeout
    seen = _handed_out.setdefault(execution_arn, set())
    while True:
        events = history(sfn, execution_arn)
        for event in events:
            details = event.get("taskScheduledEventDetails")
            if not details or not details["resource"].endswith(".waitForTaskToken"):
                continue
            if operation and not details["resource"].startswith(operation):
                continue
            parameters = json.loads(details["parameters"])
            token = next(
                (t["Value"] for t in parameters.get("Tags", []) if t["Key"] == TASK_TOKEN_TAG),
                None,
            )
            if token and token not in seen:
                seen.add(token)
                return ScheduledTask(
                    token,
                    parameters,
                    _state_name_of(events, event),
                    details["resource"].split(".", 1)[0],
                )
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING" or time.monotonic() > deadline:
            raise AssertionError(
                f"no {operation or 'callback'} task scheduled (execution {status}); "
                f"states: {state_sequence(sfn, execution_arn)}"
            )
        time.sleep(0.05)


_handed_out: dict[str, set[str]] = {}


def fail_task(token: str, *, error: str, cause: str) -> None:
    """send_task_failure WITH its cause (moto 5.2.5's API handler drops `cause`).

    For a SageMaker job that ends Failed, use `fail_sync_job` (what AWS reports then).
    A "States." `error` needs `sync_failures_like_aws()` (moto refuses it otherwise).
    """
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[ACCOUNT][REGION]
    backend.send_task_failure(token, error=error, cause=cause)


# What a `.sync` task reports when its job ends Failed or Stopped: the generic task failure,
# with the job's last Describe*Job output, as JSON, for cause (its FailureReason says why).
# https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html lists
# States.TaskFailed; moto's own `.sync` integrations (Batch, ECS, Glue) report it so too.
# A refused Create*Job call is another matter: it fails as `SageMaker.<exception>` (e.g.
# SageMaker.AmazonSageMakerException for throttling), with the API's message as cause.
SYNC_JOB_FAILED = "States.TaskFailed"
_JOBS = {
    "createTrainingJob": ("TrainingJob", "training-job"),
    "createTransformJob": ("TransformJob", "transform-job"),
}
_EPOCH_MS = 1_764_077_157_000  # Step Functions renders SageMaker timestamps as epoch milliseconds


def failed_job_description(task: ScheduledTask, reason: str) -> dict[str, Any]:
    """The Describe*Job output of the rewritten task's job, ended Failed with `reason`.

    `reason` is a SageMaker FailureReason, e.g. "ClientError: See job logs for more
    information" or "CapacityError: Unable to provision requested ML compute capacity. ...".
    """
    if task.operation not in _JOBS:
        raise ValueError(f"not a SageMaker job task: {task.operation!r} (state {task.state_name})")
    kind, arn_type = _JOBS[task.operation]
    parameters = {k: v for k, v in task.parameters.items() if k != "Tags"}
    name = parameters[f"{kind}Name"]
    description = {
        **parameters,
        f"{kind}Arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{arn_type}/{name.lower()}",
        f"{kind}Status": "Failed",
        "FailureReason": reason,
        "CreationTime": _EPOCH_MS,
        "LastModifiedTime": _EPOCH_MS + 600_000,
    }
    if kind == "TrainingJob":
        description["SecondaryStatus"] = "Failed"
        description["TrainingEndTime"] = _EPOCH_MS + 600_000
    else:
        description["TransformStartTime"] = _EPOCH_MS + 240_000
        description["TransformEndTime"] = _EPOCH_MS + 600_000
    return description


_sync_failures_enabled = False


def fail_sync_job(task: ScheduledTask, reason: str) -> tuple[str, str]:
    """Ends the rewritten task as AWS ends a `.sync` task whose job failed; returns (error, cause).

    Needs `sync_failures_like_aws()` (moto refuses "States." error names from callbacks).
    """
    if not _sync_failures_enabled:
        raise RuntimeError("enter sfn_local.sync_failures_like_aws() before fail_sync_job")
    cause = json.dumps(failed_job_description(task, reason))
    fail_task(task.token, error=SYNC_JOB_FAILED, cause=cause)
    return SYNC_JOB_FAILED, cause


def _state_name_of(events: list[dict[str, Any]], task_event: dict[str, Any]) -> str:
    for event in reversed(events[: events.index(task_event)]):
        if "stateEnteredEventDetails" in event:
            return event["stateEnteredEventDetails"]["name"]
    return ""


def history(sfn, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def state_sequence(sfn, execution_arn: str) -> list[str]:
    """Names of the states entered, in order (the path the execution took)."""
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in history(sfn, execution_arn)
        if "stateEnteredEventDetails" in event
    ]


# --- moto gaps, patched for tests only ------------------------------------------------------


def _pascal_case(value: Any) -> Any:
    if isinstance(value, dict):
        return {f"{k[:1].upper()}{k[1:]}": _pascal_case(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal_case(v) for v in value]
    return value


@contextlib.contextmanager
def aws_sdk_like_aws():
    """Makes moto's `aws-sdk:*` tasks behave as Step Functions does where a definition relies on it.

    - `aws-sdk:s3:getObject` returns `Body` as a string (moto passes boto's stream through,
      which breaks `States.StringToJson($.Body)`);
    - S3 errors are named `S3.<Name>Exception` (moto says `s3.`), so `Catch` on
      `S3.NoSuchKeyException` works as in AWS.
    - `aws-sdk:sfn:*` takes and returns PascalCase names as Step Functions documents
      ("Parameters in Step Functions are expressed in PascalCase, even if the native service
      API is in camelCase", supported-services-awssdk.html); moto passes them through to the
      camelCase Step Functions API unchanged.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    service = aws_sdk.StateTaskServiceAwsSdk
    original = service._eval_service_task

    # moto calls it with keywords (env=, resource_runtime_part=, normalised_parameters=,
    # state_credentials=) or positionally in that order: both are accepted.
    names = ("env", "resource_runtime_part", "normalised_parameters", "state_credentials")

    def eval_service_task(self, *args, **kwargs):
        kwargs.update(zip(names, args, strict=False))
        camel = self.resource.api_name == "sfn"
        if camel:
            kwargs["normalised_parameters"] = {
                f"{k[:1].lower()}{k[1:]}": v for k, v in kwargs["normalised_parameters"].items()
            }
        original(self, **kwargs)
        env = kwargs["env"]
        if camel:
            env.stack[-1] = _pascal_case(env.stack[-1])
        response = env.stack[-1]
        if isinstance(response, dict):
            for key, value in list(response.items()):
                if hasattr(value, "read"):
                    response[key] = value.read().decode("utf-8")

    saved_names = dict(aws_sdk._SERVICE_ERROR_NAMES)
    aws_sdk._SERVICE_ERROR_NAMES["s3"] = "S3"
    service._eval_service_task = eval_service_task
    try:
        yield
    finally:
        service._eval_service_task = original
        aws_sdk._SERVICE_ERROR_NAMES.clear()
        aws_sdk._SERVICE_ERROR_NAMES.update(saved_names)


@contextlib.contextmanager
def sync_failures_like_aws():
    """Lets a callback task fail with a "States." error, as a failed `.sync` job's task does.

    moto's callback tasks take every error name for a custom one, and custom names may not
    start with "States."; AWS reports a failed `.sync` job as States.TaskFailed.
    """
    global _sync_failures_enabled  # noqa: PLW0603 - the switch fail_sync_job checks
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    service = callback.StateTaskServiceCallback
    original = service._get_callback_outcome_failure_event

    def failure_event(self, env, ex):
        failure = ex.callback_outcome_failure
        if not str(failure.error or "").startswith("States."):
            return original(self, env, ex)
        return FailureEvent(
            env=env,
            error_name=StatesErrorName.from_name(failure.error),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(
                    resourceType=self._get_sfn_resource_type(),
                    resource=self._get_sfn_resource(),
                    error=failure.error,
                    cause=failure.cause,
                )
            ),
        )

    service._get_callback_outcome_failure_event = failure_event
    _sync_failures_enabled = True
    try:
        yield
    finally:
        service._get_callback_outcome_failure_event = original
        _sync_failures_enabled = False
