"""Batch: photos dropped under `incoming/` of the inference bucket come back labelled in `results/`."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.batch import BATCHES_PREFIX
from stacks.batch.access import acknowledge_wildcards
from stacks.batch.intake import BatchIntake
from stacks.batch.workflow import BatchWorkflow
from stacks.config import Config


class BatchStack(Stack):
    """EventBridge -> SQS (+ DLQ, alarms) -> trigger -> one transform per batch -> decode -> SNS.

    Exposes `state_machine`, `queue`, `dead_letter_queue`, `trigger_function` and
    `decode_function` for the dashboard.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        key: kms.IKey,
        inference_bucket: s3.IBucket,
        label_buckets: Sequence[s3.IBucket],
        topic: sns.ITopic,
        model_role: iam.IRole,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Imported by ARN: grants then go to this stack's roles, and the key policy (in
        # Storage) is never edited from here. Storage's policy lets EventBridge use the
        # key for the encrypted queues.
        key = kms.Key.from_key_arn(self, "DataKey", key.key_arn)
        workflow = BatchWorkflow(
            self,
            "Workflow",
            config=config,
            key=key,
            bucket=inference_bucket,
            topic=topic,
            label_buckets=label_buckets,
            model_role=model_role,
        )
        intake = BatchIntake(
            self,
            "Intake",
            config=config,
            key=key,
            bucket=inference_bucket,
            topic=topic,
            state_machine=workflow.state_machine,
        )
        # Each run's Model (and so its transform job) runs as the model role (training
        # stack): let it read this stack's manifests. The policy lives here, beside what
        # needs it.
        manifests = inference_bucket.arn_for_objects(f"{BATCHES_PREFIX}*/manifest.json")
        policy = iam.Policy(
            self,
            "ModelReadsManifests",
            roles=[model_role],
            statements=[iam.PolicyStatement(actions=["s3:GetObject"], resources=[manifests])],
        )
        acknowledge_wildcards(
            policy,
            {
                manifests: "Transform jobs read the ManifestFile of their batch, batches/<batch id>/."
            },
        )
        self.state_machine = workflow.state_machine
        self.decode_function = workflow.decode_function
        self.queue = intake.queue
        self.dead_letter_queue = intake.dead_letter_queue
        self.trigger_function = intake.trigger_function

        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "QueueUrl", value=self.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
