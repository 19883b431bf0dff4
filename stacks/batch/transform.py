"""The batch state machine's transform task: CreateTransformJob (.sync), its parameters and IAM.

Each run writes its output under `predictions/<batch id>/<execution name>/` and names
its job after the execution and the attempt, so re-runs and retries never collide.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import TRANSFORM_PAYLOAD_MB, Config
from stacks.instance_storage import has_instance_storage

# The algorithm's batch settings: one image per request, at most 6 MB.
MAX_PAYLOAD_MB = TRANSFORM_PAYLOAD_MB
TRANSFORM_TIMEOUT = Duration.hours(6)
SYNC_RULE = "StepFunctionsGetEventsForSageMakerTransformJobsRule"


def transform_job_prefix(config: Config) -> str:
    return f"{config.prefix}-b"


def batch_model_name(config: Config) -> str:
    """`<prefix>-b-<execution name>` (JsonPath): the run's Model, named as its job without
    the attempt. <= 60 characters: prefix (<= 20) + 3 + execution name (<= 37, see
    grocery/batch.py); CreateModel allows 63."""
    return f"States.Format('{transform_job_prefix(config)}-{{}}', $$.Execution.Name)"


def transform_parameters(config: Config, key_arn: str) -> dict:
    """CreateTransformJob's Parameters (JsonPath values end in `.$`)."""
    resources: dict = {
        "InstanceType": config.transform_instance_type,
        "InstanceCount": config.transform_instance_count,
    }
    if not has_instance_storage(config.transform_instance_type):
        resources["VolumeKmsKeyId"] = key_arn
    parameters = {
        # <= 63 characters: prefix (<= 22) + execution name (<= 37, see grocery/batch.py) + attempt.
        "TransformJobName.$": (
            f"States.Format('{transform_job_prefix(config)}-{{}}-{{}}', "
            "$$.Execution.Name, $$.State.RetryCount)"
        ),
        # The run's own Model (stacks/batch/model.py), created from the released version.
        "ModelName.$": batch_model_name(config),
        "BatchStrategy": "SingleRecord",
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri.$": "$.manifest_uri"}
            },
            "ContentType": "application/x-image",
            "SplitType": "None",
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath.$": (
                "States.Format('s3://{}/{}{}/', $.bucket, $.predictions_prefix, $$.Execution.Name)"
            ),
            "Accept": "application/json",
            "AssembleWith": "None",
            "KmsKeyId": key_arn,
        },
        "TransformResources": resources,
        "Tags": [
            {"Key": "project", "Value": config.prefix},
            {"Key": "batch-id", "Value.$": "$.batch_id"},
        ],
    }
    if config.transform_max_concurrent:
        parameters["MaxConcurrentTransforms"] = config.transform_max_concurrent
    return parameters


def transform_task(scope: Construct, config: Config, key: kms.IKey) -> sfn.CustomState:
    """The `Transform` state: the job's name and status go to `$.transform`."""
    partition = Stack.of(scope).partition
    state = sfn.CustomState(
        scope,
        "Transform",
        state_json={
            "Type": "Task",
            "Resource": f"arn:{partition}:states:::sagemaker:createTransformJob.sync",
            "Parameters": transform_parameters(config, key.key_arn),
            "ResultSelector": {
                "job_name.$": "$.TransformJobName",
                "status.$": "$.TransformJobStatus",
            },
            "ResultPath": "$.transform",
            "TimeoutSeconds": int(TRANSFORM_TIMEOUT.to_seconds()),
        },
    )
    # Throttled or refused CreateTransformJob calls; the next attempt has a new job name.
    state.add_retry(
        errors=["SageMaker.AmazonSageMakerException"],
        max_attempts=2,
        interval=Duration.seconds(30),
        backoff_rate=2,
    )
    return state


def job_arn(scope: Construct, config: Config) -> str:
    return Stack.of(scope).format_arn(
        service="sagemaker",
        resource="transform-job",
        resource_name=f"{transform_job_prefix(config)}-*",
    )


def grant_transform(scope: Construct, role: iam.IRole, config: Config, key: kms.IKey) -> None:
    """Exactly what createTransformJob.sync needs, scoped to this stack's job names.

    AWS's policy for the `.sync` task lists these actions, ListTags included
    (https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html); ListTags
    takes the job as resource, so it is scoped like the others.
    """
    stack = Stack.of(scope)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
                "sagemaker:ListTags",
            ],
            resources=[job_arn(scope, config)],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[
                stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)
            ],
        )
    )
    # SageMaker encrypts the job's volume with the data key through a grant.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:CreateGrant"],
            resources=[key.key_arn],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        )
    )
