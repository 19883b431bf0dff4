"""Retraining triggers: a dataset upload and/or a schedule start the training state machine.

- `retrain_on_new_dataset`: an EventBridge rule on the training-data bucket's S3
  "Object Created" events for `datasets/*/manifest.json` (written last by
  `python -m preprocessing upload`) invokes the trigger function;
- `retrain_schedule`: an EventBridge Scheduler schedule invokes it with
  `{"trigger": "schedule", "scheduled_time": <aws.scheduler.scheduled-time>}`.

The function (lambdas/retrain_trigger) decides what to train and starts the state machine.
Both invocations are asynchronous: what neither EventBridge, the Scheduler nor Lambda's
own retries can deliver lands in one dead-letter queue, which alarms on the topic.
Nothing here exists when both keys are off (`retrain_triggers` returns None).
"""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.batch.access import acknowledge_wildcards
from stacks.config import Config
from stacks.constructs.acknowledge import acknowledge_nag, skip_checkov
from stacks.constructs.dependencies import depend_on_policy_only
from stacks.constructs.python_function import PythonFunction
from stacks.names import model_package_group, release_parameter
from stacks.storage_stack import StorageStack
from stacks.training.names import LABELS_FILE, MANIFEST_FILE, TRAINING_JOBS_PREFIX
from stacks.training.retrain_config import triggers_enabled

DATASETS_PREFIX = "datasets/"  # preprocessing upload's default prefix (datasets/<name>/)
MANIFEST_PATTERN = f"{DATASETS_PREFIX}*/{MANIFEST_FILE}"
# Asynchronous deliveries: a few retries within an hour, then the dead-letter queue.
RETRY_ATTEMPTS = 3
MAX_EVENT_AGE = Duration.hours(1)


def retrain_triggers(
    scope: Construct,
    *,
    config: Config,
    storage: StorageStack,
    state_machine: sfn.IStateMachine,
    release_parameter_arn: str,
) -> RetrainTriggers | None:
    """The triggers the config turns on, or None (nothing created) when both are off."""
    if not triggers_enabled(config):
        return None
    return RetrainTriggers(
        scope,
        "RetrainTriggers",
        config=config,
        storage=storage,
        state_machine=state_machine,
        release_parameter_arn=release_parameter_arn,
    )


def manifest_created_pattern(bucket_name: str) -> events.EventPattern:
    """S3 "Object Created" events of this bucket whose key is datasets/*/manifest.json.

    S3 writes the key unencoded in EventBridge events (S3 guide, ev-events.html); a
    wildcard needs no escaping here (EventBridge content filtering, wildcard matching:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html).
    """
    return events.EventPattern(
        source=["aws.s3"],
        detail_type=["Object Created"],
        detail={
            "bucket": {"name": [bucket_name]},
            "object": {"key": events.Match.wildcard(MANIFEST_PATTERN)},
        },
    )


class RetrainTriggers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        storage: StorageStack,
        state_machine: sfn.IStateMachine,
        release_parameter_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        key = self._key = storage.key
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge_nag(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue IS the dead-letter queue of the retraining trigger (its function, "
            "rule target and schedule target); it has no consumer to fail.",
        )
        function = PythonFunction(
            self,
            "Trigger",
            handler="retrain_trigger.handler.handler",
            description="Retraining: a new dataset or the schedule starts the training "
            "state machine (incremental from the serving version when labels match)",
            key=key,
            service="retrain-trigger",
            environment={
                "TRAINING_BUCKET": storage.training_data.bucket_name,
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "RELEASE_PARAMETER": release_parameter(config.prefix, "model-package-arn"),
                "TOPIC_ARN": storage.topic.topic_arn,
                "RETRAIN_INCREMENTAL": str(config.retrain_incremental).lower(),
            },
            timeout=Duration.minutes(1),
        )
        self.function = function.function
        self.role = function.role
        self._grant(config, storage, state_machine, release_parameter_arn)
        self._dead_letters(function)

        self.rule = None
        if config.retrain_on_new_dataset:
            self.rule = events.Rule(
                self,
                "NewDatasetRule",
                description=f"{config.prefix}: a dataset's manifest.json uploaded under "
                f"{DATASETS_PREFIX} starts a training",
                event_pattern=manifest_created_pattern(storage.training_data.bucket_name),
            )
            self.rule.add_target(
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=RETRY_ATTEMPTS,
                    max_event_age=MAX_EVENT_AGE,
                )
            )
        self.schedule = None
        self.schedule_role = None
        if config.retrain_schedule:
            self._schedule(config)
        self._alarm(config, storage)

    # --- the function's permissions ---------------------------------------------------------

    def _grant(
        self,
        config: Config,
        storage: StorageStack,
        state_machine: sfn.IStateMachine,
        release_parameter_arn: str,
    ) -> None:
        stack = Stack.of(self)
        role, data, artifacts = self.role, storage.training_data, storage.artifacts
        packages = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{model_package_group(config.prefix)}/*",
        )
        statements = [
            # Lists dataset folders and each folder's manifest.json, nothing outside datasets/.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[data.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [DATASETS_PREFIX, f"{DATASETS_PREFIX}*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    data.arn_for_objects(f"{DATASETS_PREFIX}*/{LABELS_FILE}"),
                    artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/{LABELS_FILE}"),
                ],
            ),
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[release_parameter_arn]),
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages]),
            iam.PolicyStatement(actions=["sns:Publish"], resources=[storage.topic.topic_arn]),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)
        state_machine.grant_start_execution(role)
        # SSE-KMS objects (Decrypt, granted by PythonFunction) and the encrypted topic.
        storage.key.grant(role, "kms:GenerateDataKey")
        acknowledge_wildcards(
            role.node.find_child("DefaultPolicy"),
            {
                data.arn_for_objects(f"{DATASETS_PREFIX}*/{LABELS_FILE}"): (
                    "The newest dataset is chosen at run time; only its labels.json is read."
                ),
                artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/{LABELS_FILE}"): (
                    "The serving version's labels.json sits beside its job's artifact; "
                    "only labels.json files are readable."
                ),
                packages: (
                    "DescribeModelPackage of the serving version, numbered by SageMaker; "
                    "scoped to this deployment's model package group."
                ),
            },
        )

    def _dead_letters(self, function: PythonFunction) -> None:
        """Asynchronous invocations that fail after Lambda's retries go to the queue."""
        cfn_function: lambda_.CfnFunction = self.function.node.default_child
        cfn_function.dead_letter_config = lambda_.CfnFunction.DeadLetterConfigProperty(
            target_arn=self.dead_letter_queue.queue_arn
        )
        self._grant_dead_letters(self.role)
        self.function.configure_async_invoke(retry_attempts=2, max_event_age=Duration.hours(1))
        skip_checkov(
            self.function,
            "CKV_AWS_115",
            "No reserved concurrency: invoked once per dataset upload or schedule tick, and "
            "the training state machine refuses a second concurrent training itself.",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_117",
            "Calls only AWS APIs (S3, SSM, SageMaker, Step Functions, SNS) over TLS with IAM; "
            "a VPC would add NAT or endpoint costs and no control.",
        )

    def _grant_dead_letters(self, role: iam.IRole) -> None:
        """SendMessage to the encrypted queue: sqs:SendMessage and the key's data keys
        (grant_send_messages would add kms:GenerateDataKey* and kms:ReEncrypt*)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sqs:SendMessage"], resources=[self.dead_letter_queue.queue_arn]
            )
        )
        self._key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")

    # --- the schedule -----------------------------------------------------------------------

    def _schedule(self, config: Config) -> None:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            "ScheduleRole",
            # Confused-deputy guard: only schedules of this account may use the role.
            # https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="EventBridge Scheduler: invokes the retraining trigger function only",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
            )
        )
        # The schedule's dead letters are sent with this role
        # (https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-dlq.html).
        self._grant_dead_letters(role)
        self.schedule_role = role
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description=f"{config.prefix}: retrain on the newest dataset ({config.retrain_schedule} UTC)",
            schedule_expression=config.retrain_schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=role.role_arn,
                # Context attributes are filled in per invocation
                # (https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html).
                input=json.dumps(
                    {
                        "trigger": "schedule",
                        "scheduled_time": scheduler.ContextAttribute.scheduled_time,
                    }
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=RETRY_ATTEMPTS,
                    maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds()),
                ),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(
                    arn=self.dead_letter_queue.queue_arn
                ),
            ),
        )
        depend_on_policy_only(self.schedule, role)

    def _alarm(self, config: Config, storage: StorageStack) -> None:
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_description=(
                f"{config.prefix}: a retraining trigger could not be delivered or failed "
                "(its event is in the retraining dead-letter queue): read it, fix the cause, "
                "then start the training with python -m grocery train"
            ),
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm.add_alarm_action(cw_actions.SnsAction(storage.topic))
