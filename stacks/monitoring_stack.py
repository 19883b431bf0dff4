"""Monitoring: the one operations dashboard of the system.

Alarms stay next to what they watch, in each stack, and notify the storage
stack's topic; this stack only shows them (and every metric worth a look)
on one page. The functions and alarms of the watched stacks are found in their
construct trees, so a function or alarm added later shows up without wiring.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import Config
from stacks.constructs.python_function import PythonFunction
from stacks.monitoring.dashboard import DEFAULT_VARIANT_NAME, OperationsDashboard


def dashboard_name(prefix: str) -> str:
    return f"{prefix}-operations"


def product_functions(stacks: Sequence[Stack]) -> dict[str, lambda_.IFunction]:
    """Every function built with PythonFunction in `stacks`, by `<stack>/<construct id>`."""
    return {
        f"{stack.node.id}/{construct.node.id}": construct.function
        for stack in stacks
        for construct in stack.node.find_all()
        if isinstance(construct, PythonFunction)
    }


def product_alarms(stacks: Sequence[Stack]) -> list[cloudwatch.Alarm]:
    return [
        construct
        for stack in stacks
        for construct in stack.node.find_all()
        if isinstance(construct, cloudwatch.Alarm)
    ]


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        watched: Sequence[Stack],
        training_state_machine: sfn.IStateMachine | None = None,
        training_job_prefix: str | None = None,
        endpoint_name: str | None = None,
        endpoint_variant_name: str = DEFAULT_VARIANT_NAME,
        batch_state_machine: sfn.IStateMachine | None = None,
        queue: sqs.IQueue | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        name = dashboard_name(config.prefix)
        self.operations = OperationsDashboard(
            self,
            "Operations",
            dashboard_name=name,
            training_state_machine=training_state_machine,
            training_job_prefix=training_job_prefix,
            endpoint_name=endpoint_name,
            endpoint_variant_name=endpoint_variant_name,
            batch_state_machine=batch_state_machine,
            queue=queue,
            dead_letter_queue=dead_letter_queue,
            functions=product_functions(watched),
            alarms=product_alarms(watched),
        )
        CfnOutput(self, "DashboardName", value=name)
        CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home"
            f"?region={Aws.REGION}#dashboards:name={name}",
        )
