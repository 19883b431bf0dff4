"""Confidence and drift monitoring: the daily drift check, its alarms and dashboard row.

- DriftCheck function, started daily by an EventBridge schedule rule (01:00 UTC).
- Alarm `<prefix>-prediction-drift`: PredictionDriftPSI above 0.2 (lambdas/grocery_common/
  drift.py says why PSI and why 0.2).
- Alarms `<prefix>-low-confidence-api` / `-batch`: over a day, more than
  LOW_CONFIDENCE_SHARE of the predictions were below review_threshold (counted only
  from MIN_DAILY_PREDICTIONS predictions on: a handful of odd photos is not a trend).
All notify the SNS topic; docs/operations.md says what each means and what to do.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.batch.access import acknowledge_wildcards
from stacks.config import Config
from stacks.constructs.acknowledge import acknowledge_nag, skip_checkov
from stacks.constructs.python_function import PythonFunction
from stacks.names import model_package_group, release_parameter
from stacks.prediction_metrics import (
    BELOW_REVIEW_THRESHOLD,
    DRIFT_SCORE,
    SOURCE,
    SOURCES,
    TOP1_CONFIDENCE,
    prediction_metrics_namespace,
)
from stacks.training.names import LABELS_FILE
from stacks.training.triggers import DATASETS_PREFIX

DRIFT_THRESHOLD = 0.2  # = grocery_common.drift.ALARM_THRESHOLD (tested)
# The dataset layout of preprocessing prepare/upload (= drift_check.handler.TRAIN_LST, tested).
TRAIN_LST = "train_lst/train.lst"
LOW_CONFIDENCE_SHARE = 0.4
MIN_DAILY_PREDICTIONS = 50
ONE_DAY = Duration.days(1)
ONE_HOUR = Duration.hours(1)


def drift_alarm_name(prefix: str) -> str:
    return f"{prefix}-prediction-drift"


def low_confidence_alarm_name(prefix: str, source: str) -> str:
    return f"{prefix}-low-confidence-{source}"


class DriftMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        key: kms.IKey,
        topic: sns.ITopic,
        artifacts: s3.IBucket,
        training_data: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.namespace = prediction_metrics_namespace(config.prefix)
        self.function = self._function(config, key, artifacts, training_data)
        self.rule = events.Rule(
            self,
            "Daily",
            description="Runs the prediction drift check once a day",
            schedule=events.Schedule.cron(minute="0", hour="1"),
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=2)],
        )
        self.drift_alarm = cloudwatch.Alarm(
            self,
            "DriftAlarm",
            alarm_name=drift_alarm_name(config.prefix),
            alarm_description=(
                f"The served version's predicted-class mix moved away from its baseline, its "
                "test split predictions or else its training split labels "
                f"(PSI > {DRIFT_THRESHOLD}): review unsure photos (python -m grocery review) "
                "and retrain. See docs/operations.md."
            ),
            metric=self.drift_metric(),
            threshold=DRIFT_THRESHOLD,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.low_confidence_alarms = [
            self._low_confidence_alarm(config, source) for source in SOURCES
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(topic))

    @property
    def alarms(self) -> list[cloudwatch.Alarm]:
        return [self.drift_alarm, *self.low_confidence_alarms]

    # --- metrics -----------------------------------------------------------------------------

    def drift_metric(self, label: str | None = None) -> cloudwatch.Metric:
        # No label on the alarm's metric: CDK would render it as a metric-math alarm.
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=DRIFT_SCORE,
            statistic="Maximum",
            period=ONE_DAY,
            label=label,
        )

    def _by_source(self, name: str, statistic: str, source: str, period: Duration):
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map={SOURCE: source},
            statistic=statistic,
            period=period,
            label=f"{source}",
        )

    def low_confidence_share(self, source: str, period: Duration = ONE_DAY):
        """Share below the review threshold, or 0 while there are too few predictions."""
        return cloudwatch.MathExpression(
            # Ids unique per source: the dashboard graphs both sources in one widget.
            expression=f"IF(n{source} >= {MIN_DAILY_PREDICTIONS}, share{source}, 0)",
            using_metrics={
                f"share{source}": self._by_source(
                    BELOW_REVIEW_THRESHOLD, "Average", source, period
                ),
                f"n{source}": self._by_source(
                    BELOW_REVIEW_THRESHOLD, "SampleCount", source, period
                ),
            },
            label=f"{source}: share below review_threshold",
            period=period,
        )

    def _low_confidence_alarm(self, config: Config, source: str) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            f"LowConfidence-{source}",
            alarm_name=low_confidence_alarm_name(config.prefix, source),
            alarm_description=(
                f"More than {LOW_CONFIDENCE_SHARE:.0%} of a day's {source} predictions were "
                f"below review_threshold {config.review_threshold}: review them "
                "(python -m grocery review), then retrain. See docs/operations.md."
            ),
            metric=self.low_confidence_share(source),
            threshold=LOW_CONFIDENCE_SHARE,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def widgets(self) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.TextWidget(markdown="## Confidence and drift", width=24, height=1),
            cloudwatch.GraphWidget(
                title="Mean top-1 confidence (hourly)",
                left=[self._by_source(TOP1_CONFIDENCE, "Average", s, ONE_HOUR) for s in SOURCES],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=1, show_units=False),
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Share below the review threshold (daily)",
                left=[self.low_confidence_share(s) for s in SOURCES],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=LOW_CONFIDENCE_SHARE, label="alarm")
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=1, show_units=False),
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Prediction drift, PSI against the version's baseline (daily)",
                left=[self.drift_metric("drift (PSI)")],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=DRIFT_THRESHOLD, label="alarm")
                ],
                left_y_axis=cloudwatch.YAxisProps(min=0, show_units=False),
                width=8,
                height=6,
            ),
        ]

    # --- the function ------------------------------------------------------------------------

    def _function(
        self, config: Config, key: kms.IKey, artifacts: s3.IBucket, training_data: s3.IBucket
    ) -> PythonFunction:
        stack = Stack.of(self)
        parameter = release_parameter(config.prefix, "model-package-arn")
        function = PythonFunction(
            self,
            "DriftCheck",
            handler="drift_check.handler.handler",
            description="Daily: PSI of the served version's predicted classes against its baseline",
            key=key,
            service="drift-check",
            timeout=Duration.minutes(2),
            environment={
                "RELEASE_PARAMETER": parameter,
                "PREDICTION_METRICS_NAMESPACE": self.namespace,
            },
        )
        role = function.role
        package_arn = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{model_package_group(config.prefix)}/*",
        )
        reports = artifacts.arn_for_objects("*evaluation.json")
        # The training split baseline (no test report): a dataset's labels.json and train
        # .lst only, never its images. Both are SSE-KMS with the data key, which
        # PythonFunction already lets the role decrypt (GetObject of an SSE-KMS object needs
        # kms:Decrypt: https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-express-UsingKMSEncryption.html).
        dataset_labels = training_data.arn_for_objects(f"{DATASETS_PREFIX}*/{LABELS_FILE}")
        train_lists = training_data.arn_for_objects(f"{DATASETS_PREFIX}*/{TRAIN_LST}")
        for actions_, resources in (
            (
                ["ssm:GetParameter"],
                [
                    stack.format_arn(
                        service="ssm", resource="parameter", resource_name=parameter.lstrip("/")
                    )
                ],
            ),
            (["sagemaker:DescribeModelPackage"], [package_arn]),
            (["s3:GetObject"], [reports, dataset_labels, train_lists]),
            # GetMetricData has no resource-level permissions (IAM5 acknowledged below).
            (["cloudwatch:GetMetricData"], ["*"]),
        ):
            role.add_to_principal_policy(iam.PolicyStatement(actions=actions_, resources=resources))
        policy = role.node.find_child("DefaultPolicy")
        acknowledge_wildcards(
            policy,
            {
                package_arn: "Any version of this deployment's model package group: the served one changes with each release.",
                reports: "The test report of whichever version is served (training-jobs/<job>/evaluation.json).",
                dataset_labels: "The labels.json of whichever dataset the served version was trained on (datasets/<name>/).",
                train_lists: "The train .lst of whichever dataset the served version was trained on (its label mix is the baseline without a test report).",
            },
        )
        acknowledge_nag(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray's and CloudWatch GetMetricData's actions support no resource-level permissions.",
        )
        for check, reason in (
            (
                "CKV_AWS_115",
                "No reserved concurrency: one invocation a day (a fresh account's "
                "quota is 10, the floor Lambda keeps unreserved).",
            ),
            (
                "CKV_AWS_116",
                "A failed daily check is retried twice by EventBridge, shows in the "
                "dashboard's Lambda errors, and the next day's run recomputes everything: a DLQ "
                "would hold nothing to replay.",
            ),
            (
                "CKV_AWS_117",
                "Calls only AWS APIs (SSM, SageMaker, S3, CloudWatch) over TLS with "
                "IAM; a VPC would add NAT or endpoint costs and no control.",
            ),
        ):
            skip_checkov(function.function, check, reason)
        return function
