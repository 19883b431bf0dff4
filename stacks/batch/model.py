"""The batch run's own SageMaker Model, from the released model package version.

    ReadPackageArn + ReadLabelsUri (the release record) -> NameVersion
      -> CreateModel (<prefix>-b-<execution name>) -> Transform -> DeleteModel -> Decode
                                                       | failed: DeleteModel too

Batch never uses the Model the serving stack declares (`<prefix>-classifier-v<N>`):
`npx cdk destroy Grocery-Serving` deletes that one, and batch must keep working
without an endpoint. Each run creates its own Model from the version's model package
ARN (CreateModel with PrimaryContainer.ModelPackageName, network isolation as for the
serving Model) and deletes it once the transform job has ended, successfully or not.
The name carries the execution name, so a re-run (`<batch id>-r<time>`) never meets
a Model an earlier run left (a run stopped by hand ends without its Catch).
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModel.html
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.batch.transform import batch_model_name, transform_job_prefix
from stacks.config import Config
from stacks.names import model_package_group

# Throttling (and SageMaker's generic API error, which is how throttling on CreateModel
# surfaces in Step Functions' optimized integration); the same names as the training
# pipeline's CreateModel and the release workflow's SageMaker calls.
THROTTLING = [
    "ThrottlingException",
    "SageMaker.ThrottlingException",
    "SageMaker.AmazonSageMakerException",
]


def version_name_parameters() -> dict:
    """`$.model` once a version is released: its package ARN and `<group>-v<N>`.

    arn:...:model-package/<group>/<N> splits on '/' into [..., <group>, <N>]. The name is
    what results rows, status.json and notifications call the model: the registry
    version (`python -m grocery models show 3`), not the transient SageMaker Model.
    """
    parts = "States.StringSplit($.model.package_arn, '/')"
    return {
        "package_arn.$": "$.model.package_arn",
        "name.$": (
            f"States.Format('{{}}-v{{}}', States.ArrayGetItem({parts}, 1), "
            f"States.ArrayGetItem({parts}, 2))"
        ),
    }


def create_model_parameters(config: Config, model_role_arn: str) -> dict:
    """CreateModel's Parameters (JsonPath values end in `.$`)."""
    return {
        "ModelName.$": batch_model_name(config),
        "PrimaryContainer": {"ModelPackageName.$": "$.model.package_arn"},
        "ExecutionRoleArn": model_role_arn,
        # As the serving stack's Model: the container makes no network calls.
        "EnableNetworkIsolation": True,
        "Tags": [
            {"Key": "project", "Value": config.prefix},
            {"Key": "batch-id", "Value.$": "$.batch_id"},
        ],
    }


def _retry(state: sfn.TaskStateBase | sfn.CustomState) -> None:
    state.add_retry(
        errors=THROTTLING,
        interval=Duration.seconds(2),
        backoff_rate=2.0,
        max_attempts=5,
        max_delay=Duration.seconds(60),
        jitter_strategy=sfn.JitterType.FULL,
    )


def version_name(scope: Construct) -> sfn.Pass:
    return sfn.Pass(
        scope,
        "NameVersion",
        comment="The released version's name, <group>-v<N>, from its model package ARN",
        parameters=version_name_parameters(),
        result_path="$.model",
    )


def create_model_task(scope: Construct, config: Config, model_role: iam.IRole) -> sfn.CustomState:
    """The `CreateModel` state (Step Functions' optimized SageMaker integration)."""
    partition = Stack.of(scope).partition
    state = sfn.CustomState(
        scope,
        "CreateModel",
        state_json={
            "Type": "Task",
            "Comment": "This run's own Model from the released model package version",
            "Resource": f"arn:{partition}:states:::sagemaker:createModel",
            "Parameters": create_model_parameters(config, model_role.role_arn),
            # (A null ResultPath would be dropped from a CustomState's JSON.)
            "ResultSelector": {"arn.$": "$.ModelArn"},
            "ResultPath": "$.batch_model",
        },
    )
    _retry(state)
    return state


def delete_model_task(scope: Construct, config: Config) -> tasks.CallAwsService:
    """The `DeleteModel` state: after the transform job ended, on every path."""
    state = tasks.CallAwsService(
        scope,
        "DeleteModel",
        comment="The run's Model is deleted once its transform job ended (Models cost nothing, "
        "but would pile up)",
        service="sagemaker",
        action="deleteModel",
        parameters={
            "ModelName": sfn.JsonPath.format(
                f"{transform_job_prefix(config)}-{{}}", sfn.JsonPath.execution_name
            )
        },
        iam_resources=[model_arn(scope, config)],
        iam_action="sagemaker:DeleteModel",
        result_path=sfn.JsonPath.DISCARD,
    )
    _retry(state)
    return state


def model_arn(scope: Construct, config: Config) -> str:
    return Stack.of(scope).format_arn(
        service="sagemaker",
        resource="model",
        resource_name=f"{transform_job_prefix(config)}-*",
    )


def package_arn(scope: Construct, config: Config) -> str:
    """Every version of this deployment's model package group."""
    return Stack.of(scope).format_arn(
        service="sagemaker",
        resource="model-package",
        resource_name=f"{model_package_group(config.prefix)}/*",
    )


def grant_create_model(
    scope: Construct, role: iam.IRole, config: Config, model_role: iam.IRole
) -> None:
    """What CreateModel from a package needs: the Model (and its tags, given at creation),
    reading the package version (as the release's CloudFormation role does for the
    serving Model; access to a version's group is what deploying it takes,
    https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-deploy.html), and
    passing the model role to SageMaker (CreateModel's ExecutionRoleArn: "the caller of
    this API must have the iam:PassRole permission")."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:CreateModel", "sagemaker:AddTags"],
            resources=[model_arn(scope, config)],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:DescribeModelPackage"], resources=[package_arn(scope, config)]
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[model_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    )
