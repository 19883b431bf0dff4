"""serving_mode=async: the endpoint config's AsyncInferenceConfig, what the model's role needs
for it, and scaling to zero instances and back.

Requests are queued by SageMaker; the model reads each image from S3 and writes its answer
to S3 (success and error notified on the deployment's topic). With MinCapacity 0 the
endpoint bills nothing while the queue is empty; a step-scaling policy on
HasBacklogWithoutCapacity starts the first instance when a request arrives (target tracking
alone would wait for the backlog to exceed its target).
https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html
https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-autoscale.html
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.constructs.acknowledge import acknowledge_nag
from stacks.constructs.nag_findings import iam5_findings
from stacks.names import ASYNC_FAILURES_PREFIX, ASYNC_INPUT_PREFIX, ASYNC_OUTPUT_PREFIX

# Queued requests per instance that target tracking aims at (AWS's example value).
BACKLOG_PER_INSTANCE_TARGET = 5.0
# Scale in only after 10 quiet minutes: a started instance takes minutes to be in service.
SCALE_IN_COOLDOWN_SECONDS = 600
SCALE_OUT_COOLDOWN_SECONDS = 60
STEP_COOLDOWN_SECONDS = 300


def s3_uri(bucket: s3.IBucket, prefix: str) -> str:
    return f"s3://{bucket.bucket_name}/{prefix.rstrip('/')}"


def backlog_alarm_name(endpoint_name: str) -> str:
    """Fixed, so that the release's service role can be scoped to it."""
    return f"{endpoint_name}-backlog-without-capacity"


def async_inference_config(
    *, bucket: s3.IBucket, key: kms.IKey, topic: sns.ITopic
) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
    """Output and failure prefixes of the inference bucket, under the data key; both outcomes
    notified on the topic (what the API's GET and `python -m grocery classify` poll is S3)."""
    return sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
        output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
            s3_output_path=s3_uri(bucket, ASYNC_OUTPUT_PREFIX),
            s3_failure_path=s3_uri(bucket, ASYNC_FAILURES_PREFIX),
            kms_key_id=key.key_arn,
            notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                success_topic=topic.topic_arn, error_topic=topic.topic_arn
            ),
        )
    )


def allow_async_io(
    scope: Construct,
    *,
    model_role: iam.IRole,
    bucket: s3.IBucket,
    key: kms.IKey,
    topic: sns.ITopic,
) -> iam.Policy:
    """The endpoint reads the queued image and writes the answer with the model's role, and
    publishes the notifications with it (async-inference-create-endpoint-prerequisites)."""
    policy = iam.Policy(
        scope,
        "AsyncInferenceIo",
        roles=[model_role],
        statements=[
            iam.PolicyStatement(
                sid="ReadQueuedRequests",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{ASYNC_INPUT_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="WriteAnswers",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[
                    bucket.arn_for_objects(f"{ASYNC_OUTPUT_PREFIX}*"),
                    bucket.arn_for_objects(f"{ASYNC_FAILURES_PREFIX}*"),
                ],
            ),
            iam.PolicyStatement(
                sid="NotifyOutcome", actions=["sns:Publish"], resources=[topic.topic_arn]
            ),
            iam.PolicyStatement(
                sid="EncryptAnswersAndNotifications",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            ),
        ],
    )
    for prefix, reason in (
        (ASYNC_INPUT_PREFIX, "the queued images the API stored, one folder per request id"),
        (ASYNC_OUTPUT_PREFIX, "the answers, named by SageMaker under the output path"),
        (ASYNC_FAILURES_PREFIX, "the failures, named by SageMaker under the failure path"),
    ):
        for finding in iam5_findings(f"{{}}/{prefix}*", bucket):
            acknowledge_nag(policy, finding, reason)
    return policy


class ScaleToZero(Construct):
    """MinCapacity 0; target tracking on ApproximateBacklogSizePerInstance; a step-scaling
    policy (alarm on HasBacklogWithoutCapacity) to go from 0 to 1 instance."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        variant_name: str,
        max_instances: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.target = autoscaling.CfnScalableTarget(
            self,
            "ScalableTarget",
            service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=f"endpoint/{endpoint.attr_endpoint_name}/variant/{variant_name}",
            min_capacity=0,
            max_capacity=max_instances,
        )
        self.tracking = autoscaling.CfnScalingPolicy(
            self,
            "BacklogPerInstance",
            policy_name=f"{endpoint_name}-backlog-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.target.ref,
            target_tracking_scaling_policy_configuration=autoscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=BACKLOG_PER_INSTANCE_TARGET,
                customized_metric_specification=autoscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metric_name="ApproximateBacklogSizePerInstance",
                    namespace="AWS/SageMaker",
                    dimensions=[
                        autoscaling.CfnScalingPolicy.MetricDimensionProperty(
                            name="EndpointName", value=endpoint_name
                        )
                    ],
                    statistic="Average",
                ),
                scale_in_cooldown=SCALE_IN_COOLDOWN_SECONDS,
                scale_out_cooldown=SCALE_OUT_COOLDOWN_SECONDS,
            ),
        )
        self.from_zero = autoscaling.CfnScalingPolicy(
            self,
            "StartFromZero",
            policy_name=f"{endpoint_name}-start-from-zero",
            policy_type="StepScaling",
            scaling_target_id=self.target.ref,
            step_scaling_policy_configuration=autoscaling.CfnScalingPolicy.StepScalingPolicyConfigurationProperty(
                adjustment_type="ChangeInCapacity",
                metric_aggregation_type="Average",
                cooldown=STEP_COOLDOWN_SECONDS,
                step_adjustments=[
                    autoscaling.CfnScalingPolicy.StepAdjustmentProperty(
                        metric_interval_lower_bound=0, scaling_adjustment=1
                    )
                ],
            ),
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "BacklogWithoutCapacity",
            alarm_name=backlog_alarm_name(endpoint_name),
            alarm_description=f"{endpoint_name} has queued requests and no instance: "
            "starts one (scaling action, not a fault)",
            metric=cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="HasBacklogWithoutCapacity",
                dimensions_map={"EndpointName": endpoint_name},
                statistic="Average",
                period=Duration.minutes(1),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )
        # CfnScalingPolicy's Ref is the policy ARN, the alarm action Application Auto Scaling expects.
        self.alarm.node.default_child.alarm_actions = [self.from_zero.ref]

    @property
    def resources(self) -> list:
        return [self.target, self.tracking, self.from_zero, self.alarm.node.default_child]
