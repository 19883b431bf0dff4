"""Calls of every Task state, derived from the state machines' resolved definitions.

Each task's `Resource` maps to the IAM calls Step Functions makes with the state
machine's role (AWS: "IAM policies for integrated services",
https://docs.aws.amazon.com/step-functions/latest/dg/service-integration-iam-templates.html,
and for SageMaker https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html).
JsonPath values (`Key.$`) take sample values from calls.yaml's `samples:`; a task whose
Resource has no mapping here, or a path without a sample, raises: a new task cannot be
forgotten.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tests.access.calls import Call
from tests.access.policies import AccessModel
from tests.access.templates import ACCOUNT, PARTITION, REGION
from tests.support.state_machines import iter_states

SAGEMAKER = "sagemaker.amazonaws.com"
_STATES_PREFIX = f"arn:{PARTITION}:states:::"
# `.sync` SageMaker jobs: Step Functions watches them through this managed rule each.
SYNC_RULES = {
    "training-job": "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    "transform-job": "StepFunctionsGetEventsForSageMakerTransformJobsRule",
    "hyper-parameter-tuning-job": "StepFunctionsGetEventsForSageMakerTuningJobsRule",
}


class UnknownTaskError(ValueError):
    """A Task state whose Resource (or JsonPath) this module cannot turn into calls."""


# --- JsonPath values with sample inputs ---------------------------------------------------------


class Samples:
    """Renders a `.$` value (a path or an intrinsic function) with sample inputs."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def value(self, expression: str) -> str:
        text, rest = self._parse(expression.strip())
        if rest.strip():
            raise UnknownTaskError(f"cannot read {expression!r} (left: {rest!r})")
        return text

    def _parse(self, text: str) -> tuple[str, str]:
        if text.startswith("'"):
            end = text.index("'", 1)
            return text[1:end], text[end + 1 :]
        match = re.match(r"(States\.\w+)\(", text)
        if match:
            arguments, rest = [], text[match.end() :]
            while not rest.lstrip().startswith(")"):
                argument, rest = self._parse(rest.lstrip())
                arguments.append(argument)
                rest = rest.lstrip().removeprefix(",")
            return self._function(match.group(1), arguments), rest.lstrip()[1:]
        match = re.match(r"(\$\$?[\w.\[\]]*)", text)
        if match:
            path = match.group(1)
            if path not in self._values:
                raise UnknownTaskError(f"no sample for {path}: add it to calls.yaml samples")
            return str(self._values[path]), text[match.end() :]
        raise UnknownTaskError(f"cannot read {text!r}")

    @staticmethod
    def _function(name: str, arguments: list[str]) -> str:
        if name == "States.Format":
            template, *values = arguments
            for value in values:
                template = template.replace("{}", value, 1)
            return template
        if name == "States.Hash":
            return hashlib.md5(arguments[0].encode()).hexdigest()  # a sample name, not security
        raise UnknownTaskError(f"no sample rendering for {name}")


class Params:
    """A task's Parameters, each value rendered only when read (`Key.$` read as `Key`)."""

    def __init__(self, raw: Mapping[str, Any], samples: Samples) -> None:
        self.raw, self._samples = raw, samples

    @property
    def samples(self) -> Samples:
        """For nested Parameters (e.g. CreateModel's PrimaryContainer)."""
        return self._samples

    def __contains__(self, key: str) -> bool:
        return key in self.raw or f"{key}.$" in self.raw

    def __getitem__(self, key: str) -> Any:
        if f"{key}.$" in self.raw:
            return self._samples.value(self.raw[f"{key}.$"])
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def literal_key_arns(self) -> set[str]:
        """KMS keys named literally anywhere in the Parameters (KmsKeyId, VolumeKmsKeyId)."""
        text = json.dumps(self.raw)
        return set(re.findall(r'"(?:Volume)?KmsKeyId": "([^"]+)"', text))


# --- one function per task Resource -------------------------------------------------------------


class Emit:
    """Collects (action, resource, context) of one task's calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, action: str, resource: str, context: dict[str, str]) -> None:
        self.calls.append((action, resource, context))


def _sagemaker_arn(kind: str, name: str) -> str:
    return f"arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def _sync_job(kind: str, operation: str, name_field: str) -> Callable[[Params, Emit], None]:
    def calls(p: Params, emit: Emit) -> None:
        arn = _sagemaker_arn(kind, p[name_field])
        for action in (f"Create{operation}", f"Describe{operation}", f"Stop{operation}"):
            emit(f"sagemaker:{action}", arn, {})
        emit("sagemaker:AddTags", arn, {})  # Step Functions tags the jobs it starts
        emit("sagemaker:ListTags", arn, {})
        rule = f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:rule/{SYNC_RULES[kind]}"
        for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
            emit(action, rule, {})
        if "RoleArn" in p:
            emit("iam:PassRole", p["RoleArn"], {"iam:PassedToService": SAGEMAKER})
        if "TrainingJobDefinition" in p:  # a tuning job passes its training jobs' role
            role = p.raw["TrainingJobDefinition"]["RoleArn"]
            emit("iam:PassRole", role, {"iam:PassedToService": SAGEMAKER})
        for key in p.literal_key_arns():
            # SageMaker encrypts the job's volume and output through grants on the key.
            emit(
                "kms:CreateGrant",
                key,
                {
                    "kms:GrantIsForAWSResource": "true",
                    "kms:ViaService": f"sagemaker.{REGION}.amazonaws.com",
                },
            )

    return calls


def _create_model(p: Params, emit: Emit) -> None:
    arn = _sagemaker_arn("model", p["ModelName"])
    emit("sagemaker:CreateModel", arn, {})
    if p.get("Tags"):
        emit("sagemaker:AddTags", arn, {})
    emit("iam:PassRole", p["ExecutionRoleArn"], {"iam:PassedToService": SAGEMAKER})
    # A Model from a registry version (the batch run's): the caller reads the version.
    container = Params(p.raw.get("PrimaryContainer", {}), p.samples)
    if "ModelPackageName" in container:
        emit("sagemaker:DescribeModelPackage", container["ModelPackageName"], {})


def _create_model_package(p: Params, emit: Emit) -> None:
    # A versioned package: arn:...:model-package/<group>/<version> (version 1 as a sample).
    # No Tags in the call, so no sagemaker:AddTags.
    arn = _sagemaker_arn("model-package", f"{p['ModelPackageGroupName']}/1")
    emit("sagemaker:CreateModelPackage", arn, {})


def _sagemaker_named(kind: str, field: str, action: str) -> Callable[[Params, Emit], None]:
    def calls(p: Params, emit: Emit) -> None:
        value = p[field]
        arn = value if value.startswith("arn:") else _sagemaker_arn(kind, value)
        emit(f"sagemaker:{action}", arn, {})

    return calls


def _list_model_packages(p: Params, emit: Emit) -> None:
    # No resource-level permission: authorized on "*".
    emit("sagemaker:ListModelPackages", "*", {})


def _stack_arn(name: str) -> str:
    return f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/0123abcd-0000-0000-0000-000000000000"


def _update_stack(p: Params, emit: Emit) -> None:
    emit("cloudformation:UpdateStack", _stack_arn(p["StackName"]), {})
    # The service role CloudFormation then acts with (its calls: calls.yaml).
    emit(
        "iam:PassRole",
        p["RoleARN"],
        {"iam:PassedToService": "cloudformation.amazonaws.com"},
    )


def _describe_stacks(p: Params, emit: Emit) -> None:
    emit("cloudformation:DescribeStacks", _stack_arn(p["StackName"]), {})


def _object(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def _s3_get(p: Params, emit: Emit) -> None:
    emit("s3:GetObject", _object(p["Bucket"], p["Key"]), {})


def _s3_put(p: Params, emit: Emit) -> None:
    emit("s3:PutObject", _object(p["Bucket"], p["Key"]), {})


def _s3_copy(p: Params, emit: Emit) -> None:
    # CopyObject: GetObject on the source, PutObject on the target (S3 API reference).
    source_bucket, _, source_key = p["CopySource"].partition("/")
    emit("s3:GetObject", _object(source_bucket, source_key), {})
    emit("s3:PutObject", _object(p["Bucket"], p["Key"]), {})


def _ssm(action: str) -> Callable[[Params, Emit], None]:
    def calls(p: Params, emit: Emit) -> None:
        name = p["Name"].lstrip("/")
        emit(f"ssm:{action}", f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter/{name}", {})

    return calls


def _list_executions(p: Params, emit: Emit) -> None:
    emit("states:ListExecutions", p["StateMachineArn"], {})


def _sns_publish(p: Params, emit: Emit) -> None:
    emit("sns:Publish", p["TopicArn"], {})


def _lambda_invoke(p: Params, emit: Emit) -> None:
    emit("lambda:InvokeFunction", p["FunctionName"], {})


TASKS: dict[str, Callable[[Params, Emit], None]] = {
    "sagemaker:createTrainingJob.sync": _sync_job("training-job", "TrainingJob", "TrainingJobName"),
    "sagemaker:createTransformJob.sync": _sync_job(
        "transform-job", "TransformJob", "TransformJobName"
    ),
    "sagemaker:createHyperParameterTuningJob.sync": _sync_job(
        "hyper-parameter-tuning-job", "HyperParameterTuningJob", "HyperParameterTuningJobName"
    ),
    "aws-sdk:sagemaker:describeTrainingJob": _sagemaker_named(
        "training-job", "TrainingJobName", "DescribeTrainingJob"
    ),
    "aws-sdk:sagemaker:listTrainingJobsForHyperParameterTuningJob": _sagemaker_named(
        "hyper-parameter-tuning-job",
        "HyperParameterTuningJobName",
        "ListTrainingJobsForHyperParameterTuningJob",
    ),
    "sagemaker:createModel": _create_model,
    "aws-sdk:sagemaker:createModelPackage": _create_model_package,
    "aws-sdk:sagemaker:describeModelPackage": _sagemaker_named(
        "model-package", "ModelPackageName", "DescribeModelPackage"
    ),
    "aws-sdk:sagemaker:listModelPackages": _list_model_packages,
    "aws-sdk:sagemaker:deleteModel": _sagemaker_named("model", "ModelName", "DeleteModel"),
    "aws-sdk:sagemaker:describeEndpoint": _sagemaker_named(
        "endpoint", "EndpointName", "DescribeEndpoint"
    ),
    "aws-sdk:sagemaker:describeEndpointConfig": _sagemaker_named(
        "endpoint-config", "EndpointConfigName", "DescribeEndpointConfig"
    ),
    "aws-sdk:cloudformation:updateStack": _update_stack,
    "aws-sdk:cloudformation:describeStacks": _describe_stacks,
    "aws-sdk:s3:getObject": _s3_get,
    "aws-sdk:s3:putObject": _s3_put,
    "aws-sdk:s3:copyObject": _s3_copy,
    "aws-sdk:ssm:getParameter": _ssm("GetParameter"),
    "aws-sdk:ssm:putParameter": _ssm("PutParameter"),
    "aws-sdk:sfn:listExecutions": _list_executions,
    "sns:publish": _sns_publish,
    "lambda:invoke": _lambda_invoke,
}


# A Lambda task may name the function itself as its Resource (payload_response_only).
DIRECT_LAMBDA = "lambda function ARN"


def task_resource(state: Mapping[str, Any]) -> str:
    resource = state["Resource"]
    if resource.startswith(f"arn:{PARTITION}:lambda:") and ":function:" in resource:
        return DIRECT_LAMBDA
    if not resource.startswith(_STATES_PREFIX):
        raise UnknownTaskError(f"task Resource {resource} is not a Step Functions integration")
    return resource.removeprefix(_STATES_PREFIX)


def state_machine_calls(model: AccessModel, samples: Mapping[str, str]) -> Iterator[Call]:
    """Every call of every Task state of every state machine of the app."""
    for stack, logical_id, resource in model.resources_of_type("AWS::StepFunctions::StateMachine"):
        props = resource["Properties"]
        # `$$.StateMachine.Id` is the machine's own ARN (a machine that lists its executions;
        # only a named machine can grant that without referring to itself).
        own = {}
        if "StateMachineName" in props:
            own_arn = f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:"
            own["$$.StateMachine.Id"] = own_arn + props["StateMachineName"]
        sample = Samples({**samples, **own})
        definition = json.loads(props["DefinitionString"])
        role_name = props["RoleArn"].rsplit("/", 1)[1]
        role_path = model.role_named(role_name).path
        machine = model.paths.get((stack, logical_id), logical_id)
        for name, state in iter_states(definition):
            if state["Type"] != "Task":
                continue
            integration = task_resource(state)
            if integration not in TASKS and integration != DIRECT_LAMBDA:
                raise UnknownTaskError(
                    f"{machine} state {name!r}: no calls known for {integration}; add it to "
                    "TASKS in tests/access/state_machine_calls.py"
                )
            emit = Emit()
            if integration == DIRECT_LAMBDA:
                emit("lambda:InvokeFunction", state["Resource"], {})
            else:
                TASKS[integration](Params(state.get("Parameters", {}), sample), emit)
            for action, arn, context in emit.calls:
                yield Call(
                    id=f"{machine} / {name} / {action} {arn.rsplit(':', 1)[-1]}",
                    who=role_path,
                    action=action,
                    resource=arn,
                    context=context,
                    why=f"task {name} ({integration})",
                )


def task_states(model: AccessModel) -> list[tuple[str, str, str]]:
    """(state machine path, state name, integration) of every Task state."""
    found = []
    for stack, logical_id, resource in model.resources_of_type("AWS::StepFunctions::StateMachine"):
        definition = json.loads(resource["Properties"]["DefinitionString"])
        machine = model.paths.get((stack, logical_id), logical_id)
        for name, state in iter_states(definition):
            if state["Type"] == "Task":
                found.append((machine, name, task_resource(state)))
    return found
