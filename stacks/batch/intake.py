"""Upload intake: inference bucket `incoming/` -> EventBridge rule -> SQS (+ DLQ, alarms) -> trigger."""

from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.batch import BATCHES_PREFIX
from stacks.batch.access import (
    acknowledge_wildcards,
    grant_list,
    grant_objects,
    skip_lambda_checks,
)
from stacks.config import Config
from stacks.constructs.python_function import PythonFunction
from stacks.names import INCOMING_PREFIX

TRIGGER_TIMEOUT = Duration.minutes(2)
MAX_RECEIVE_COUNT = 5
# At most this many batches are gathered at once: fewer, larger transform jobs.
TRIGGER_CONCURRENCY = 2
OLDEST_MESSAGE_ALARM = Duration.hours(1)


def object_created_pattern(bucket_name: str) -> events.EventPattern:
    """S3 "Object Created" events of this bucket under incoming/ (any depth), nothing else."""
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={
            "bucket": {"name": [bucket_name]},
            "object": {"key": [{"prefix": INCOMING_PREFIX}]},
        },
    )


@jsii.implements(events.IRuleTarget)
class _QueueTarget:
    """An SQS target whose queue policy admits only this rule.

    CDK's `targets.SqsQueue` drops the `aws:SourceArn` condition when the queue is
    KMS-encrypted (aws-cdk issue 11158); here the rule is in the same stack as the
    queue and the key lives elsewhere, so the condition costs no dependency cycle.
    """

    def __init__(self, queue: sqs.Queue, dead_letter_queue: sqs.Queue) -> None:
        self._queue = queue
        self._dead_letter_queue = dead_letter_queue

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        for queue in (self._queue, self._dead_letter_queue):
            queue.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowThisRuleOnly",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sqs:SendMessage"],
                    resources=[queue.queue_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": rule.rule_arn}},
                )
            )
        return events.RuleTargetConfig(
            arn=self._queue.queue_arn,
            # Events EventBridge cannot deliver land in the DLQ too, which alarms.
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                arn=self._dead_letter_queue.queue_arn
            ),
            retry_policy=events.CfnRule.RetryPolicyProperty(
                maximum_retry_attempts=185, maximum_event_age_in_seconds=86400
            ),
            target_resource=self._queue,
        )


class BatchIntake(Construct):
    """Gathers upload events into batches and starts one state machine execution per batch."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        key: kms.IKey,
        bucket: s3.IBucket,
        topic: sns.ITopic,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(4),
            # AWS guidance for SQS event sources: 6 x the function timeout + the batching window.
            visibility_timeout=Duration.seconds(
                6 * TRIGGER_TIMEOUT.to_seconds() + config.batch_window_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT
            ),
        )
        self.rule = events.Rule(
            self,
            "UploadsRule",
            description=f"{config.prefix}: photos created under {INCOMING_PREFIX} start a batch",
            event_pattern=object_created_pattern(bucket.bucket_name),
        )
        self.rule.add_target(_QueueTarget(self.queue, self.dead_letter_queue))

        trigger = PythonFunction(
            self,
            "Trigger",
            handler="batch_trigger.handler.handler",
            description="Gathers uploaded photos into one batch and starts its transform",
            key=key,
            service="batch-trigger",
            environment={
                "INFERENCE_BUCKET": bucket.bucket_name,
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
            },
            timeout=TRIGGER_TIMEOUT,
            memory_size=512,
        )
        self.trigger_function = trigger.function
        # Reads the first bytes of each upload; checks and writes the batch record.
        grant_objects(trigger.role, bucket, ["s3:GetObject"], [INCOMING_PREFIX, BATCHES_PREFIX])
        grant_objects(trigger.role, bucket, ["s3:PutObject"], [BATCHES_PREFIX])
        grant_list(trigger.role, bucket)
        key.grant(trigger.role, "kms:GenerateDataKey")
        acknowledge_wildcards(
            trigger.role.node.find_child("DefaultPolicy"),
            {
                bucket.arn_for_objects(f"{INCOMING_PREFIX}*"): (
                    "Any photo uploaded under incoming/ can join a batch; only its first bytes are read."
                ),
                bucket.arn_for_objects(f"{BATCHES_PREFIX}*"): (
                    "Each batch records its manifest and record under batches/<batch id>/ (new id each batch)."
                ),
            },
        )
        state_machine.grant_start_execution(trigger.role)
        self.trigger_function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=config.batch_max_images,
                max_batching_window=Duration.seconds(config.batch_window_seconds),
                report_batch_item_failures=True,
                max_concurrency=TRIGGER_CONCURRENCY,
            )
        )
        skip_lambda_checks(
            self.trigger_function,
            invoked_by="its SQS event source (failed messages go to the queue's dead-letter queue)",
            bounded_by=f"the event source runs at most {TRIGGER_CONCURRENCY} at once",
        )
        self._alarms(config, topic)

    def _alarms(self, config: Config, topic: sns.ITopic) -> None:
        action = cw_actions.SnsAction(topic)
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_description=(
                f"{config.prefix}: upload events in the batch dead-letter queue (unreadable, or "
                "their batch could not be started): inspect them, then redrive the queue"
            ),
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.backlog_alarm = cloudwatch.Alarm(
            self,
            "BacklogAlarm",
            alarm_description=(
                f"{config.prefix}: upload events wait in the batch queue for over an hour: "
                "is the trigger Lambda failing or throttled?"
            ),
            metric=self.queue.metric_approximate_age_of_oldest_message(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=OLDEST_MESSAGE_ALARM.to_seconds(),
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.dead_letter_alarm, self.backlog_alarm):
            alarm.add_alarm_action(action)
