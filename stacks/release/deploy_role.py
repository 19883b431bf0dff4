"""The CloudFormation service role the release workflow passes to UpdateStack.

It may do what an update of the serving stack with the previous template does when the
release record changes (and its rollback): replace the Model and the EndpointConfig
(named `<group>-v<N>`), update/create the endpoint, its scaling, its two alarms and the
two inline policies that name the labels and the alarms, and the classify Lambda's
environment; read the SSM-typed parameters. Nothing else: a template change still needs
`cdk deploy` with CDK's own deploy role. A stack remembers the role passed to it, and
`cdk deploy` passes its own, so this role never serves CDK deploys.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks.names import model_package_group
from stacks.serving.names import classify_function_name, endpoint_name

AUTOSCALING = "sagemaker.application-autoscaling.amazonaws.com"


def deploy_role(
    scope: Construct,
    *,
    prefix: str,
    model_role: iam.IRole,
    serving_stack_name: str,
    key: kms.IKey,
) -> iam.Role:
    stack = Stack.of(scope)
    group = model_package_group(prefix)
    endpoint = endpoint_name(prefix)

    def arn(service: str, resource: str, name: str, sep: str = "/") -> str:
        return stack.format_arn(
            service=service,
            resource=resource,
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME
            if sep == ":"
            else ArnFormat.SLASH_RESOURCE_NAME,
        )

    role = iam.Role(
        scope,
        "DeployRole",
        assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"),
        description="CloudFormation service role of the release workflow's serving-stack update",
    )
    models = arn("sagemaker", "model", f"{group}-v*")
    configs = arn("sagemaker", "endpoint-config", f"{group}-v*")
    endpoint_arn = arn("sagemaker", "endpoint", endpoint)
    alarms = [
        arn("cloudwatch", "alarm", f"{endpoint}-5xx-errors", ":"),
        arn("cloudwatch", "alarm", f"{endpoint}-model-latency", ":"),
        # serving_mode=async: the alarm that starts an instance from zero (its action is
        # the step-scaling policy, stacks/serving/async_inference.py).
        arn("cloudwatch", "alarm", f"{endpoint}-backlog-without-capacity", ":"),
    ]
    statements = [
        iam.PolicyStatement(
            sid="ModelsOfReleasedVersions",
            actions=["sagemaker:CreateModel", "sagemaker:DeleteModel", "sagemaker:DescribeModel"],
            resources=[models],
        ),
        iam.PolicyStatement(
            sid="ReadReleasedPackage",
            actions=["sagemaker:DescribeModelPackage"],
            resources=[arn("sagemaker", "model-package", f"{group}/*")],
        ),
        iam.PolicyStatement(
            sid="EndpointConfigs",
            actions=[
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
            ],
            resources=[configs],
        ),
        iam.PolicyStatement(
            sid="Endpoint",
            actions=[
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:DescribeEndpoint",
            ],
            resources=[endpoint_arn],
        ),
        # The stack's tags (project=<prefix>) go onto what it creates.
        iam.PolicyStatement(
            sid="TagServingResources",
            actions=["sagemaker:AddTags", "sagemaker:ListTags"],
            resources=[models, configs, endpoint_arn],
        ),
        iam.PolicyStatement(
            sid="PassModelRole",
            actions=["iam:PassRole"],
            resources=[model_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        iam.PolicyStatement(
            sid="EndpointAlarms",
            actions=[
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:TagResource",
            ],
            resources=alarms,
        ),
        # The target and policy writes name a scalable target, whose ARN ends in an id
        # Application Auto Scaling generates; the condition keeps them to SageMaker variants
        # (Service Authorization Reference, Application Auto Scaling).
        iam.PolicyStatement(
            sid="EndpointScaling",
            actions=[
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:DeleteScalingPolicy",
                # endpoint_schedule: the scalable target's scheduled actions.
                "application-autoscaling:PutScheduledAction",
                "application-autoscaling:DeleteScheduledAction",
            ],
            resources=[
                f"arn:{Aws.PARTITION}:application-autoscaling:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                "scalable-target/*"
            ],
            conditions={
                "StringEquals": {
                    "application-autoscaling:service-namespace": "sagemaker",
                    "application-autoscaling:scalable-dimension": (
                        "sagemaker:variant:DesiredInstanceCount"
                    ),
                }
            },
        ),
        # The two Describe calls support no resource-level permissions.
        iam.PolicyStatement(
            sid="EndpointScalingReads",
            actions=[
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:DescribeScheduledActions",
            ],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="ScalingServiceLinkedRole",
            actions=["iam:CreateServiceLinkedRole"],
            resources=[
                f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/aws-service-role/{AUTOSCALING}/"
                "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
            ],
            conditions={"StringEquals": {"iam:AWSServiceName": AUTOSCALING}},
        ),
        iam.PolicyStatement(
            sid="InlinePoliciesNamingLabelsAndAlarms",
            actions=["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"],
            # The classify Lambda's role, named <serving stack>-<id>-<suffix> by CloudFormation
            # (matched by name, so the serving stack exports nothing).
            resources=[
                model_role.role_arn,
                f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{serving_stack_name}-*",
            ],
        ),
        iam.PolicyStatement(
            sid="ClassifyFunctionEnvironment",
            actions=[
                "lambda:UpdateFunctionConfiguration",
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
            ],
            resources=[arn("lambda", "function", classify_function_name(prefix), ":")],
        ),
        iam.PolicyStatement(
            sid="ResolveTheStackParameters",
            actions=["ssm:GetParameters"],
            resources=[
                arn("ssm", "parameter", f"{prefix}/release/*"),
                arn("ssm", "parameter", "cdk-bootstrap/*"),
                f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}::parameter/aws/service/powertools/*",
            ],
        ),
        # The endpoint config's volume key and the Lambda's environment key: grants for AWS
        # resources only, used through SageMaker and Lambda.
        iam.PolicyStatement(
            sid="UseTheDataKeyThroughServices",
            actions=["kms:CreateGrant", "kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"],
            resources=[key.key_arn],
            conditions={
                "StringEquals": {
                    "kms:ViaService": [
                        f"sagemaker.{Aws.REGION}.amazonaws.com",
                        f"lambda.{Aws.REGION}.amazonaws.com",
                    ]
                }
            },
        ),
    ]
    for statement in statements:
        role.add_to_policy(statement)
    return role
