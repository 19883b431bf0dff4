"""The one kind of log group this project creates."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


def encrypted_log_group(scope: Construct, construct_id: str, *, key: kms.IKey) -> logs.LogGroup:
    """KMS-encrypted, kept for three months, deleted with its stack (logs are not data)."""
    return logs.LogGroup(
        scope,
        construct_id,
        retention=LOG_RETENTION,
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
    )
