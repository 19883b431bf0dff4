"""CloudWatch alarms on the endpoint; they notify the project's topic and gate promotions."""

from __future__ import annotations

from aws_cdk import CfnCondition, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.serving.names import VARIANT_NAME

# ModelLatency is reported in microseconds. One ResNet-50 image on an ml.m4.xlarge takes
# well under a second; 2 s at p90 for 3 minutes means the fleet is saturated or broken.
MODEL_LATENCY_P90_THRESHOLD_US = 2_000_000


def _endpoint_metric(endpoint_name: str, metric_name: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/SageMaker",
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT_NAME},
        statistic=statistic,
        period=Duration.minutes(1),
    )


class EndpointAlarms(Construct):
    """5XX errors and model latency of the variant, by fixed names (`{endpoint}-...`).

    The names are fixed so that the endpoint's auto-rollback configuration and the model's
    execution role (`cloudwatch:DescribeAlarms`) can refer to them without a cycle.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        topic: sns.ITopic,
        condition: CfnCondition,
    ) -> None:
        super().__init__(scope, construct_id)
        self.errors = cloudwatch.Alarm(
            self,
            "Invocation5xxErrors",
            alarm_name=f"{endpoint_name}-5xx-errors",
            alarm_description=f"{endpoint_name} answered with 5XX errors in 2 of the last 3 minutes",
            metric=_endpoint_metric(endpoint_name, "Invocation5XXErrors", "Sum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency = cloudwatch.Alarm(
            self,
            "ModelLatency",
            alarm_name=f"{endpoint_name}-model-latency",
            alarm_description=f"{endpoint_name}: p90 model latency above "
            f"{MODEL_LATENCY_P90_THRESHOLD_US / 1e6:g} s for 3 minutes",
            metric=_endpoint_metric(endpoint_name, "ModelLatency", "p90"),
            threshold=MODEL_LATENCY_P90_THRESHOLD_US,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in self.all:
            alarm.add_alarm_action(actions.SnsAction(topic))
            alarm.node.default_child.cfn_options.condition = condition

    @property
    def all(self) -> list[cloudwatch.Alarm]:
        return [self.errors, self.latency]
