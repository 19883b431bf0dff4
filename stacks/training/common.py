"""What every stage of the training definition shares: the resources it points at, the
failure path it ends on, and the retry policy for throttling.

Each stage module (inputs, job, tuning, gate, register, notify) builds its states in the
one `TrainingDefinition` construct (`Stage.scope`), so state names stay unique and flat.
"""

from __future__ import annotations

import dataclasses

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import Config

# Where a failing state puts {"Error", "Cause"} for the failure notification.
FAILURE = "$.failure"

# Errors worth retrying with backoff: throttling (and SageMaker's generic API error, which
# is what throttling on CreateTrainingJob/CreateModel surfaces as in Step Functions).
THROTTLING = {
    "s3": ["S3.SlowDownException", "S3.ServiceUnavailableException"],
    "ssm": ["Ssm.ThrottlingException", "Ssm.TooManyUpdatesException"],
    "sns": ["SNS.ThrottledException", "SNS.KMSThrottlingException"],
    "sagemaker": ["SageMaker.ThrottlingException", "SageMaker.AmazonSageMakerException"],
    "sfn": ["Sfn.ThrottlingException"],
    "lambda": [
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    ],
}


@dataclasses.dataclass(frozen=True)
class Resources:
    """What the definition points at (the stack passes its constructs)."""

    training_data: s3.IBucket
    artifacts: s3.IBucket
    key: kms.IKey
    topic: sns.ITopic
    training_role: iam.IRole
    model_role: iam.IRole
    image_uri: str
    # The optional test-set gate's scoring Lambda (config test_accuracy_threshold > 0).
    evaluate_function: lambda_.IFunction | None = None


def retry_throttling(
    state, service: str, *, interval: int = 2, max_attempts: int = 5, max_delay: int | None = 60
) -> None:
    state.add_retry(
        errors=["ThrottlingException", *THROTTLING[service]],
        interval=Duration.seconds(interval),
        backoff_rate=2.0,
        max_attempts=max_attempts,
        max_delay=Duration.seconds(max_delay) if max_delay else None,
        jitter_strategy=sfn.JitterType.FULL,
    )


@dataclasses.dataclass(frozen=True)
class Stage:
    """The context every stage builder takes: where to build, what with, where failures go."""

    scope: Construct
    config: Config
    res: Resources
    notify_failure: sfn.IChainable

    def catch(self, state) -> None:
        """Any error of `state` is notified and fails the execution."""
        state.add_catch(self.notify_failure, errors=["States.ALL"], result_path=FAILURE)

    def fail(self, name: str, error: str, cause: str) -> sfn.IChainable:
        """A Pass that states why the execution fails (cause: plain text or a States.Format),
        then the failure notification."""
        return sfn.Pass(
            self.scope,
            name,
            parameters={"Error": error, "Cause": cause},
            result_path=FAILURE,
        ).next(self.notify_failure)
