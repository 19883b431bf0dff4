"""Storage: the KMS key, the data buckets, the access-log bucket and the notification topic."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks.config import Config
from stacks.constructs.api_gateway_logging import ApiGatewayAccountLogging
from stacks.constructs.secure_bucket import access_log_bucket, secure_bucket
from stacks.prediction_metrics import REVIEW_IMAGES_PREFIX


class StorageStack(Stack):
    """Holds every piece of state, so that other stacks can be destroyed and redeployed freely."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        retain = config.retain_data

        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{config.prefix}-data",
            description=f"{config.prefix}: encrypts training data, models, inference data, queues and topics",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            pending_window=Duration.days(30),
        )
        # CloudWatch alarms publish to the encrypted topic as the CloudWatch service itself.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        # Lambda and Step Functions log groups are encrypted with this key too.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=[
                    # AWS's documented set for CloudWatch Logs, spelled out (no wildcards).
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey",
                ],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:*"
                    }
                },
            )
        )

        # EventBridge delivers the inference bucket's events to the batch stack's encrypted queues.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowEventBridgeToUseEncryptedQueues",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )

        # REST API access logging (serving stack) needs the account's API Gateway role.
        self.api_gateway_logging = (
            ApiGatewayAccountLogging(self, "ApiGatewayLogging")
            if config.api_gateway_logging_role == "create"
            else None
        )

        self.access_logs = access_log_bucket(self, "AccessLogs", retain_data=retain)
        # EventBridge only with the new-dataset retraining trigger (stacks/training/triggers.py):
        # S3 events on EventBridge are billed opt-in data events, one per uploaded image.
        self.training_data = secure_bucket(
            self,
            "TrainingData",
            key=self.key,
            access_logs=self.access_logs,
            retain_data=retain,
            event_bridge=config.retrain_on_new_dataset,
        )
        self.artifacts = secure_bucket(
            self, "Artifacts", key=self.key, access_logs=self.access_logs, retain_data=retain
        )
        # Events go to EventBridge so that the batch stack subscribes without a dependency cycle.
        self.inference = secure_bucket(
            self,
            "Inference",
            key=self.key,
            access_logs=self.access_logs,
            retain_data=retain,
            event_bridge=True,
        )
        # Photos the API kept for review (python -m grocery review) expire; the bucket is
        # versioned, so the expired version goes after the noncurrent-version rule's days too.
        self.inference.add_lifecycle_rule(
            id="expire-review-images",
            prefix=REVIEW_IMAGES_PREFIX,
            expiration=Duration.days(config.review_image_retention_days),
        )

        self.topic = sns.Topic(
            self,
            "Notifications",
            display_name=f"{config.prefix} grocery classifier",
            master_key=self.key,
            enforce_ssl=True,
        )
        # `enforce_ssl` writes a TopicPolicy, which replaces SNS's default policy: CloudWatch
        # alarms (which publish as the service, not as a role) need their own Allow, scoped
        # to this account's alarms (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger,
        # https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html).
        # The state machines publish with their roles' identity policies (same account).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:*"
                    },
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        for name, bucket in (
            ("TrainingData", self.training_data),
            ("Artifacts", self.artifacts),
            ("Inference", self.inference),
            ("AccessLogs", self.access_logs),
        ):
            CfnOutput(self, f"{name}BucketName", value=bucket.bucket_name)
            CfnOutput(self, f"{name}BucketArn", value=bucket.bucket_arn)
        CfnOutput(self, "DataKeyArn", value=self.key.key_arn)
        CfnOutput(self, "NotificationsTopicArn", value=self.topic.topic_arn)
