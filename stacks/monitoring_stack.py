"""Monitoring: the one operations dashboard of the system.

Alarms stay next to what they watch, in each stack, and notify the storage
stack's topic; this stack only shows them (and every metric worth a look)
on one page. The functions and alarms of the watched stacks are found in their
construct trees, so a function or alarm added later shows up without wiring.

Resources under a CloudFormation condition (the serving stack's endpoint and its
alarms exist only once a model is approved) must not be exported to another
stack: an output of an absent resource fails the deployment. Functions and alarms
with a fixed name are therefore referenced by name (no export at all: an export in
use blocks replacing the resource and ties the watched stack's lifetime to this
one); conditional resources without one are left out and listed in `skipped`.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, CfnOutput, CfnResource, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import Config
from stacks.constructs.python_function import PythonFunction
from stacks.monitoring.dashboard import DEFAULT_VARIANT_NAME, OperationsDashboard
from stacks.monitoring.drift import DriftMonitoring


def dashboard_name(prefix: str) -> str:
    return f"{prefix}-operations"


def _conditional(construct: Construct) -> bool:
    resource = construct.node.default_child
    return isinstance(resource, CfnResource) and resource.cfn_options.condition is not None


def _fixed_name(name: str | None) -> str | None:
    return name if name and not Token.is_unresolved(name) else None


def product_functions(
    stacks: Sequence[Stack],
) -> tuple[dict[str, lambda_.IFunction | str], list[str]]:
    """Every function built with PythonFunction in `stacks`, by `<stack>/<construct id>`,
    and the paths of those left out because they are conditional. A function with a fixed
    name is given by that name (the dashboard needs no cross-stack export for it)."""
    functions: dict[str, lambda_.IFunction | str] = {}
    skipped: list[str] = []
    for stack in stacks:
        for construct in stack.node.find_all():
            if not isinstance(construct, PythonFunction):
                continue
            key = f"{stack.node.id}/{construct.node.id}"
            name = _fixed_name(construct.function.node.default_child.function_name)
            if name:
                functions[key] = name
            elif _conditional(construct.function):
                skipped.append(construct.node.path)
            else:
                functions[key] = construct.function
    return functions, skipped


def product_alarms(stacks: Sequence[Stack]) -> list[cloudwatch.Alarm]:
    return [
        construct
        for stack in stacks
        for construct in stack.node.find_all()
        if isinstance(construct, cloudwatch.Alarm)
    ]


def alarm_references(
    scope: Construct, alarms: Sequence[cloudwatch.Alarm]
) -> tuple[list[cloudwatch.IAlarm], list[str]]:
    """Alarms as the dashboard may reference them from `scope`'s stack, and the skipped paths."""
    references: list[cloudwatch.IAlarm] = []
    skipped: list[str] = []
    for alarm in alarms:
        name = _fixed_name(alarm.node.default_child.alarm_name)
        if name:
            # By name: no cross-stack export, and fine while the alarm does not exist yet.
            references.append(cloudwatch.Alarm.from_alarm_name(scope, alarm.node.addr, name))
        elif _conditional(alarm):
            skipped.append(alarm.node.path)
        else:
            references.append(alarm)
    return references, skipped


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
        key: kms.IKey | None = None,
        topic: sns.ITopic | None = None,
        artifacts: s3.IBucket | None = None,
        training_data: s3.IBucket | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        name = dashboard_name(config.prefix)
        functions, skipped_functions = product_functions(watched)
        alarms, skipped_alarms = alarm_references(self, product_alarms(watched))
        # Watched resources the dashboard cannot show (see the module docstring).
        self.skipped = [*skipped_functions, *skipped_alarms]
        # The daily drift check and the confidence alarms (with the storage stack's key,
        # topic, and the artifacts and training-data buckets, where the baselines are);
        # their row goes last.
        self.drift = None
        if None not in (key, topic, artifacts, training_data):
            self.drift = DriftMonitoring(
                self,
                "Drift",
                config=config,
                # Imported by ARN: the grants go to this stack's role, Storage's key
                # policy is never edited from here (as in the batch stack).
                key=kms.Key.from_key_arn(self, "DataKey", key.key_arn),
                topic=topic,
                artifacts=artifacts,
                training_data=training_data,
            )
            alarms = [*alarms, *self.drift.alarms]
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
            functions=functions,
            alarms=alarms,
        )
        if self.drift is not None:
            self.operations.dashboard.add_widgets(*self.drift.widgets())
        CfnOutput(self, "DashboardName", value=name)
        CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home"
            f"?region={Aws.REGION}#dashboards:name={name}",
        )
