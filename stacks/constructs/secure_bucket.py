"""Buckets that are private, encrypted, SSL-only, versioned and logged by construction."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.acknowledge import skip_checkov

NONCURRENT_VERSION_DAYS = 30
INCOMPLETE_UPLOAD_DAYS = 7


def _lifecycle_rules() -> list[s3.LifecycleRule]:
    return [
        s3.LifecycleRule(
            id="expire-noncurrent-versions",
            noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
        ),
        s3.LifecycleRule(
            id="abort-incomplete-multipart-uploads",
            abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
        ),
    ]


def _removal(retain_data: bool) -> dict:
    if retain_data:
        return {"removal_policy": RemovalPolicy.RETAIN}
    return {"removal_policy": RemovalPolicy.DESTROY, "auto_delete_objects": True}


def access_log_bucket(scope: Construct, construct_id: str, *, retain_data: bool) -> s3.Bucket:
    """The target of server access logging.

    S3 delivers server access logs only to a bucket with SSE-S3 default
    encryption (SSE-KMS is not supported for the target), so this one bucket
    is S3-managed; it holds only logs.
    """
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=True,
        lifecycle_rules=_lifecycle_rules(),
        **_removal(retain_data),
    )
    skip_checkov(
        bucket,
        "CKV_AWS_18",
        "This is the server access log target; logging it into itself would loop.",
    )
    return bucket


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    access_logs: s3.IBucket,
    retain_data: bool,
    event_bridge: bool = False,
) -> s3.Bucket:
    """A KMS-encrypted data bucket that logs its access under `<construct_id>/`."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=True,
        lifecycle_rules=_lifecycle_rules(),
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{construct_id}/",
        **_removal(retain_data),
    )
    if event_bridge:
        # Set natively on AWS::S3::Bucket; `event_bridge_enabled=True` would add a
        # custom-resource Lambda to do the same thing at deploy time.
        cfn_bucket: s3.CfnBucket = bucket.node.default_child
        cfn_bucket.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
    return bucket
