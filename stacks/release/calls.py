"""The release workflow's AWS calls (Step Functions SDK integrations), each with its IAM.

Each task grants exactly its own action on its own resources (CallAwsService's
`iam_resources`); UpdateStack also passes the CloudFormation service role.
Step Functions aws-sdk integrations and IAM:
https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
"""

from __future__ import annotations

import dataclasses

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.names import (
    APPROVED,
    METADATA_LABELS_URI,
    METADATA_TRAINING_JOB,
    approved_model_parameter,
    model_package_group,
    release_parameter,
)
from stacks.serving.names import endpoint_name
from stacks.training.names import LABELS_FILE, TRAINING_JOBS_PREFIX

THROTTLING = [
    "ThrottlingException",
    "SageMaker.ThrottlingException",
    "Ssm.ThrottlingException",
    "Ssm.TooManyUpdatesException",
    "CloudFormation.ThrottlingException",
    "S3.SlowDownException",
    "SNS.ThrottledException",
]

# How often the workflow looks at the serving stack, and the statuses that mean "not done".
POLL = Duration.seconds(30)
STACK_UPDATING = (
    "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
    "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
)


def retry(state) -> None:
    state.add_retry(
        errors=THROTTLING,
        interval=Duration.seconds(2),
        backoff_rate=2.0,
        max_attempts=5,
        max_delay=Duration.seconds(60),
        jitter_strategy=sfn.JitterType.FULL,
    )


@dataclasses.dataclass
class Calls:
    """What the calls point at."""

    prefix: str
    serving_stack_name: str
    serving_parameters: list[str]
    deploy_role: iam.IRole
    artifacts: s3.IBucket

    def _arn(self, scope: Construct, service: str, resource: str, name: str) -> str:
        return Stack.of(scope).format_arn(service=service, resource=resource, resource_name=name)

    def _parameter_arn(self, scope: Construct, name: str) -> str:
        return self._arn(scope, "ssm", "parameter", name.lstrip("/"))

    def package_arns(self, scope: Construct) -> list[str]:
        return [
            self._arn(scope, "sagemaker", "model-package", f"{model_package_group(self.prefix)}/*")
        ]

    def stack_arn(self, scope: Construct) -> str:
        return self._arn(scope, "cloudformation", "stack", f"{self.serving_stack_name}/*")

    def _task(self, scope: Construct, name: str, service: str, action: str, **kwargs):
        # IAM spells actions in PascalCase (UpdateStack), the SDK integration in camelCase.
        kwargs.setdefault("iam_action", f"{service}:{action[0].upper()}{action[1:]}")
        task = tasks.CallAwsService(scope, name, service=service, action=action, **kwargs)
        retry(task)
        return task

    def _get(self, scope: Construct, name: str, parameter: str, result_path: str):
        return self._task(
            scope,
            name,
            "ssm",
            "getParameter",
            parameters={"Name": parameter},
            iam_resources=[self._parameter_arn(scope, parameter)],
            result_selector={"value": sfn.JsonPath.string_at("$.Parameter.Value")},
            result_path=result_path,
        )

    def _put(self, scope: Construct, name: str, parameter: str, value_path: str):
        return self._task(
            scope,
            name,
            "ssm",
            "putParameter",
            parameters={
                "Name": parameter,
                "Value": sfn.JsonPath.string_at(value_path),
                "Overwrite": True,
            },
            iam_resources=[self._parameter_arn(scope, parameter)],
            result_path=sfn.JsonPath.DISCARD,
        )

    # --- the queue -----------------------------------------------------------------------

    def running_releases(self, scope: Construct):
        """The RUNNING executions of this state machine, oldest last.

        ListExecutions sorts "by time, with the most recent execution first" and is
        eventually consistent (https://docs.aws.amazon.com/step-functions/latest/apireference/
        API_ListExecutions.html). The ARN is built from the machine's fixed name: a
        reference to the machine itself would make its role depend on it (a cycle).
        """
        machine = Stack.of(scope).format_arn(
            service="states",
            resource="stateMachine",
            resource_name=f"{self.prefix}-release",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        return self._task(
            scope,
            "List running releases",
            "sfn",
            "listExecutions",
            iam_action="states:ListExecutions",
            parameters={
                "StateMachineArn": sfn.JsonPath.string_at("$$.StateMachine.Id"),
                "StatusFilter": "RUNNING",
                "MaxResults": 1000,
            },
            iam_resources=[machine],
            result_selector={
                "count": sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.Executions")),
                "arns": sfn.JsonPath.list_at("$.Executions[*].ExecutionArn"),
            },
            result_path="$.queue",
        )

    # --- the release record ---------------------------------------------------------------

    def read_record(self, scope: Construct):
        arn = self._get(
            scope,
            "Read release record",
            release_parameter(self.prefix, "model-package-arn"),
            "$.current_arn",
        )
        labels = self._get(
            scope,
            "Read released labels URI",
            release_parameter(self.prefix, "labels-uri"),
            "$.current_labels",
        )
        shape = sfn.Pass(
            scope,
            "Released now",
            parameters={
                "arn": sfn.JsonPath.string_at("$.current_arn.value"),
                "labels_uri": sfn.JsonPath.string_at("$.current_labels.value"),
            },
            result_path="$.current",
        )
        return arn, labels, shape

    def write_record(self, scope: Construct):
        return (
            self._put(
                scope,
                "Record release labels",
                release_parameter(self.prefix, "labels-uri"),
                "$.target.labels_uri",
            ),
            self._put(
                scope,
                "Record release version",
                release_parameter(self.prefix, "model-package-arn"),
                "$.target.arn",
            ),
        )

    def restore_record(
        self,
        scope: Construct,
        names: tuple[str, str] = ("Restore release labels", "Restore release version"),
    ):
        """The record back to the released version ('none' before the first release)."""
        labels, version = names
        return (
            self._put(
                scope,
                labels,
                release_parameter(self.prefix, "labels-uri"),
                "$.current.labels_uri",
            ),
            self._put(
                scope,
                version,
                release_parameter(self.prefix, "model-package-arn"),
                "$.current.arn",
            ),
        )

    def write_pointer(self, scope: Construct):
        """The approved-model pointer the batch pipeline reads (stacks/names.py)."""
        return (
            self._put(
                scope,
                "Point batch at new labels",
                approved_model_parameter(self.prefix, "labels-uri"),
                "$.target.labels_uri",
            ),
            self._put(
                scope,
                "Point batch at new model",
                approved_model_parameter(self.prefix, "model-name"),
                "$.expected_model",
            ),
        )

    # --- the registry -----------------------------------------------------------------------

    def newest_approved(self, scope: Construct):
        # ListModelPackages has no resource-level permission (IAM5 acknowledged).
        return self._task(
            scope,
            "Find newest approved",
            "sagemaker",
            "listModelPackages",
            parameters={
                "ModelPackageGroupName": model_package_group(self.prefix),
                "ModelApprovalStatus": APPROVED,
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 1,
            },
            iam_resources=["*"],
            result_selector={
                "ModelPackageSummaryList": sfn.JsonPath.list_at("$.ModelPackageSummaryList")
            },
            result_path="$.approved",
        )

    def _describe_package(self, scope: Construct, name: str, arn_path: str, result_path: str):
        metadata = "$.CustomerMetadataProperties"
        return self._task(
            scope,
            name,
            "sagemaker",
            "describeModelPackage",
            parameters={"ModelPackageName": sfn.JsonPath.string_at(arn_path)},
            iam_resources=self.package_arns(scope),
            result_selector={
                "arn": sfn.JsonPath.string_at("$.ModelPackageArn"),
                "version": sfn.JsonPath.format(
                    "{}", sfn.JsonPath.string_at("$.ModelPackageVersion")
                ),
                "status": sfn.JsonPath.string_at("$.ModelApprovalStatus"),
                "group": sfn.JsonPath.string_at("$.ModelPackageGroupName"),
                "training_job": sfn.JsonPath.string_at(f"{metadata}.{METADATA_TRAINING_JOB}"),
                "labels_uri": sfn.JsonPath.string_at(f"{metadata}.{METADATA_LABELS_URI}"),
            },
            result_path=result_path,
        )

    def describe_target(self, scope: Construct):
        return self._describe_package(scope, "Describe version", "$.target_ref.arn", "$.target")

    def describe_released(self, scope: Construct):
        return self._describe_package(
            scope, "Describe released version", "$.current.arn", "$.released"
        )

    def read_labels(self, scope: Construct, name: str, job_path: str, result_path: str):
        return self._task(
            scope,
            name,
            "s3",
            "getObject",
            parameters={
                "Bucket": self.artifacts.bucket_name,
                "Key": sfn.JsonPath.format(
                    f"{TRAINING_JOBS_PREFIX}{{}}/{LABELS_FILE}", sfn.JsonPath.string_at(job_path)
                ),
            },
            iam_action="s3:GetObject",
            iam_resources=[
                self.artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/{LABELS_FILE}")
            ],
            result_selector={"body": sfn.JsonPath.string_at("$.Body")},
            result_path=result_path,
        )

    # --- the serving stack -------------------------------------------------------------------

    def update_stack(self, scope: Construct, name: str = "Update serving stack"):
        # Previous template, every parameter UsePreviousValue: for an SSM-typed parameter that
        # keeps the parameter *key*, "not its value. CloudFormation always fetches the latest
        # values from Parameter Store when it updates stacks" (the release record), so nothing
        # else changes. https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
        # systems-manager-parameter-types.html, and API_UpdateStack.html of the API reference.
        return self._task(
            scope,
            name,
            "cloudformation",
            "updateStack",
            parameters={
                "StackName": self.serving_stack_name,
                "UsePreviousTemplate": True,
                "Parameters": [
                    {"ParameterKey": key, "UsePreviousValue": True}
                    for key in self.serving_parameters
                ],
                "Capabilities": ["CAPABILITY_IAM"],
                "RoleARN": self.deploy_role.role_arn,
            },
            iam_resources=[self.stack_arn(scope)],
            additional_iam_statements=[
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[self.deploy_role.role_arn],
                    conditions={
                        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
                    },
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
        )

    def describe_stack(
        self, scope: Construct, name: str = "Describe serving stack", result_path: str = "$.stack"
    ):
        return self._task(
            scope,
            name,
            "cloudformation",
            "describeStacks",
            parameters={"StackName": self.serving_stack_name},
            iam_resources=[self.stack_arn(scope)],
            # The first element whole, then its field (moto renders `[0].Field` as a list).
            result_selector={"stack": sfn.JsonPath.object_at("$.Stacks[0]")},
            result_path=result_path,
        )

    def describe_endpoint(self, scope: Construct):
        name = endpoint_name(self.prefix)
        endpoint = self._task(
            scope,
            "Describe endpoint",
            "sagemaker",
            "describeEndpoint",
            parameters={"EndpointName": name},
            iam_resources=[self._arn(scope, "sagemaker", "endpoint", name)],
            result_selector={"config": sfn.JsonPath.string_at("$.EndpointConfigName")},
            result_path="$.endpoint",
        )
        config = self._task(
            scope,
            "Describe endpoint config",
            "sagemaker",
            "describeEndpointConfig",
            parameters={"EndpointConfigName": sfn.JsonPath.string_at("$.endpoint.config")},
            iam_resources=[
                self._arn(
                    scope, "sagemaker", "endpoint-config", f"{model_package_group(self.prefix)}-v*"
                )
            ],
            result_selector={"variant": sfn.JsonPath.object_at("$.ProductionVariants[0]")},
            result_path="$.served",
        )
        return endpoint, config
