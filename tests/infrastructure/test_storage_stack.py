"""Storage stack: the key, the buckets, the topic, and what other stacks read from it."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match

from tests.infrastructure.conftest import build_app

DATA_BUCKETS = ("TrainingData", "Artifacts", "Inference")


def _buckets(template) -> dict[str, dict]:
    return template.find_resources("AWS::S3::Bucket")


def _bucket(template, name: str) -> dict:
    (resource,) = [r for lid, r in _buckets(template).items() if lid.startswith(name)]
    return resource


class TestKey:
    def test_customer_managed_key_rotates(self, template_of):
        template_of("storage").has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})

    def test_key_is_retained_by_default(self, template_of):
        template_of("storage").has_resource(
            "AWS::KMS::Key", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
        )

    def test_cloudwatch_may_use_key_for_encrypted_alarm_topic(self, template_of):
        template_of("storage").has_resource_properties(
            "AWS::KMS::Key",
            {
                "KeyPolicy": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                }
                            )
                        ]
                    )
                }
            },
        )

    def test_eventbridge_may_use_key_for_encrypted_queues_of_this_account(self, template_of):
        template_of("storage").has_resource_properties(
            "AWS::KMS::Key",
            {
                "KeyPolicy": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Principal": {"Service": "events.amazonaws.com"},
                                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                    "Condition": {
                                        "StringEquals": {
                                            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
                                        }
                                    },
                                }
                            )
                        ]
                    )
                }
            },
        )


class TestBuckets:
    def test_four_buckets(self, template_of):
        assert len(_buckets(template_of("storage"))) == 4

    @pytest.mark.parametrize("name", [*DATA_BUCKETS, "AccessLogs"])
    def test_private_versioned_and_retained(self, template_of, name):
        bucket = _bucket(template_of("storage"), name)
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert bucket["DeletionPolicy"] == "Retain"
        rules = {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}
        assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {
            "NoncurrentDays": 30
        }
        assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": 7
        }

    @pytest.mark.parametrize("name", DATA_BUCKETS)
    def test_data_buckets_use_the_customer_key_and_log_access(self, template_of, name):
        props = _bucket(template_of("storage"), name)["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0].startswith(
            "DataKey"
        )
        assert rule["BucketKeyEnabled"] is True
        logging = props["LoggingConfiguration"]
        assert logging["DestinationBucketName"]["Ref"].startswith("AccessLogs")
        assert logging["LogFilePrefix"] == f"{name}/"

    def test_access_log_bucket_uses_s3_managed_encryption(self, template_of):
        # S3 server access logs cannot be delivered to an SSE-KMS bucket.
        props = _bucket(template_of("storage"), "AccessLogs")["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}

    @pytest.mark.parametrize("name", [*DATA_BUCKETS, "AccessLogs"])
    def test_bucket_policy_denies_plain_http_and_old_tls(self, template_of, name):
        policies = template_of("storage").find_resources("AWS::S3::BucketPolicy")
        (policy,) = [
            p for p in policies.values() if p["Properties"]["Bucket"]["Ref"].startswith(name)
        ]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies = [s for s in statements if s["Effect"] == "Deny"]
        conditions = [s["Condition"] for s in denies]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions

    def test_only_inference_bucket_sends_events_to_eventbridge(self, template_of):
        template = template_of("storage")
        for name in ("TrainingData", "Artifacts", "AccessLogs"):
            assert "NotificationConfiguration" not in _bucket(template, name)["Properties"]
        props = _bucket(template, "Inference")["Properties"]
        assert props["NotificationConfiguration"] == {
            "EventBridgeConfiguration": {"EventBridgeEnabled": True}
        }

    def test_no_custom_resource_lambda_is_needed(self, template_of):
        template_of("storage").resource_count_is("AWS::Lambda::Function", 0)
        template_of("storage").resource_count_is("Custom::S3BucketNotifications", 0)


class TestTopic:
    def test_topic_is_encrypted_and_ssl_only(self, template_of):
        template = template_of("storage")
        template.has_resource_properties(
            "AWS::SNS::Topic",
            {"KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("DataKey"), "Arn"]}},
        )
        template.has_resource_properties(
            "AWS::SNS::TopicPolicy",
            {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            },
        )

    def test_no_subscription_unless_configured(self, template_of):
        template_of("storage").resource_count_is("AWS::SNS::Subscription", 0)

    def test_email_subscription_from_configuration(self):
        from aws_cdk.assertions import Template

        stacks = build_app({"alarm_email": "ops@example.com"})
        Template.from_stack(stacks.storage).has_resource_properties(
            "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
        )


class TestOutputs:
    @pytest.mark.parametrize("name", [*DATA_BUCKETS, "AccessLogs"])
    def test_bucket_names_and_arns_are_outputs(self, template_of, name):
        outputs = template_of("storage").to_json()["Outputs"]
        assert outputs[f"{name}BucketName"]["Value"]["Ref"].startswith(name)
        assert outputs[f"{name}BucketArn"]["Value"]["Fn::GetAtt"][1] == "Arn"

    def test_key_and_topic_are_outputs(self, template_of):
        outputs = template_of("storage").to_json()["Outputs"]
        assert {"DataKeyArn", "NotificationsTopicArn"} <= set(outputs)


class TestDestroyMode:
    """retain_data=false: the data goes with the stack (for throw-away environments)."""

    @pytest.fixture(scope="class")
    @staticmethod
    def template():
        from aws_cdk.assertions import Template

        return Template.from_stack(build_app({"retain_data": "false"}).storage)

    def test_buckets_and_key_are_deleted(self, template):
        for bucket in template.find_resources("AWS::S3::Bucket").values():
            assert bucket["DeletionPolicy"] == "Delete"
        template.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Delete"})

    def test_buckets_are_emptied_first(self, template):
        assert len(template.find_resources("Custom::S3AutoDeleteObjects")) == 4
