"""The classify function's part of the review loop: its environment and its grants.

With `review_keep_api_images` the function may write exactly two prefixes of the
inference bucket, review/images/* (the photo) and review/queue/* (the ReviewItem), and
generate data keys of the bucket's KMS key: SSE-KMS uploads need kms:GenerateDataKey
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html). Without
it the function writes nothing to S3 and only publishes the confidence metrics.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.batch.access import acknowledge_wildcards
from stacks.config import Config
from stacks.prediction_metrics import (
    REVIEW_IMAGES_PREFIX,
    REVIEW_QUEUE_PREFIX,
    review_environment,
)


class ClassifyReviewAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        function: lambda_.Function,
        inference: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {
            **review_environment(config.prefix, threshold=config.review_threshold),
            "REVIEW_KEEP_IMAGES": "true" if config.review_keep_api_images else "false",
        }
        self.grants = config.review_keep_api_images
        if self.grants:
            environment["REVIEW_BUCKET"] = inference.bucket_name
            images = inference.arn_for_objects(f"{REVIEW_IMAGES_PREFIX}*")
            queue = inference.arn_for_objects(f"{REVIEW_QUEUE_PREFIX}*")
            role = function.role
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:PutObject"], resources=[images, queue])
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["kms:GenerateDataKey"], resources=[key.key_arn])
            )
            acknowledge_wildcards(
                role.node.find_child("DefaultPolicy"),
                {
                    images: "Each unsure photo gets a new key review/images/<date>/<random id>.",
                    queue: "Each unsure prediction gets a new item review/queue/<random id>.json.",
                },
            )
        for name, value in environment.items():
            function.add_environment(name, value)
