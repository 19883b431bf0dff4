"""The one way this project builds a Lambda function.

Every function ships the whole `lambdas/` folder (handlers + `grocery_common`,
a few kilobytes) and takes Powertools from the AWS-published layer, found
through the public SSM parameter for the pinned version: no Docker bundling,
and the layer matches the version the tests run against.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.constructs.acknowledge import acknowledge_nag
from stacks.constructs.dependencies import depend_on_policy_only
from stacks.constructs.log_group import encrypted_log_group

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
# The newest Python runtime (cdk-nag L1); the code also runs on the local 3.11 used by tests.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# Keep equal to aws-lambda-powertools in requirements-dev.txt (what the tests use).
POWERTOOLS_VERSION = "3.37.0"
DEFAULT_TIMEOUT = Duration.seconds(30)


def powertools_layer_parameter() -> str:
    """Public SSM parameter holding the layer ARN of this region, e.g. .../arm64/python3.14/3.37.0."""
    return f"/aws/service/powertools/python/arm64/{RUNTIME.name}/{POWERTOOLS_VERSION}"


class PythonFunction(Construct):
    """A Lambda function with its own role, log group (KMS, retention) and X-Ray tracing.

    The role starts with nothing but writing its own log group; grant the rest
    to `function.role` (or use `grant_*` on the target resource).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        key: kms.IKey,
        service: str,
        environment: dict[str, str] | None = None,
        timeout: Duration = DEFAULT_TIMEOUT,
        memory_size: int = 256,
        function_name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = encrypted_log_group(self, "Logs", key=key)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{construct_id}: writes its own logs; everything else is granted explicitly",
        )
        self.log_group.grant_write(self.role)
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self, powertools_layer_parameter()
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_.Code.from_asset(
                str(LAMBDAS_DIR), exclude=["**/__pycache__", "**/*.pyc", "**/tests"]
            ),
            description=description,
            role=self.role,
            log_group=self.log_group,
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)],
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": f"{stack.stack_name}",
                "LOG_LEVEL": "INFO",
                **(environment or {}),
            },
            environment_encryption=key,
        )
        key.grant_decrypt(self.role)
        depend_on_policy_only(self.function, self.role)
        acknowledge_nag(
            self.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions.",
        )
