"""The quality gates: validation:accuracy of the training job (always), and the optional
test-set gate (config test_accuracy_threshold > 0): a batch transform of the dataset's
test/ channel with a temporary SageMaker Model, scored by a Lambda.

"Has metrics" -> "Read accuracy" -> "Check accuracy" -> `then`.
Test gate: "Create model" -> "Evaluate on test channel" (.sync) -> "Score test predictions"
-> "Delete test model" -> "Check test accuracy" -> `then`. A failed transform or scoring goes
through "Delete test model after failure" to the failure notification: the gate's Model
never outlives the execution (`cdk destroy` cannot remove Models a state machine created;
the serving stack declares the served one from the registered version).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from stacks.config import Config
from stacks.instance_storage import has_instance_storage
from stacks.training.common import FAILURE, THROTTLING, Resources, Stage, retry_throttling
from stacks.training.job import tags
from stacks.training.names import (
    ACCURACY_TAG,
    LABELS_FILE,
    TRAINING_JOBS_PREFIX,
    job_name_prefix,
)
from stacks.training.tuning import tuning_job_prefix

TEST_PREDICTIONS = "test-predictions/"
EVALUATION_REPORT = "evaluation.json"


def accuracy_gate(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    """validation:accuracy of `$.training` (a DescribeTrainingJob) >= accuracy_threshold."""
    scope, threshold = stage.scope, stage.config.accuracy_threshold
    accuracy = "$.metrics.validation_accuracy[0]"
    job = sfn.JsonPath.string_at("$.training.TrainingJobName")
    no_metric = stage.fail(
        "No accuracy metric",
        "AccuracyMissing",
        sfn.JsonPath.format(
            "Training job {} reported no validation:accuracy: nothing was registered.", job
        ),
    )
    too_low = stage.fail(
        "Accuracy below threshold",
        "AccuracyBelowThreshold",
        sfn.JsonPath.format(
            f"validation:accuracy {{}} of training job {{}} is below the threshold {threshold}: "
            "nothing was registered.",
            sfn.JsonPath.string_at(accuracy),
            job,
        ),
    )
    read = sfn.Pass(
        scope,
        "Read accuracy",
        parameters={
            "validation_accuracy": sfn.JsonPath.list_at(
                "$.training.FinalMetricDataList[?(@.MetricName == 'validation:accuracy')].Value"
            )
        },
        result_path="$.metrics",
    )
    is_number = sfn.Condition.and_(
        sfn.Condition.is_present(accuracy), sfn.Condition.is_numeric(accuracy)
    )
    gate = (
        sfn.Choice(
            scope, "Check accuracy", comment=f"Quality gate: validation:accuracy >= {threshold}"
        )
        .when(
            sfn.Condition.and_(
                sfn.Condition.is_present(accuracy),
                sfn.Condition.is_numeric(accuracy),
                sfn.Condition.number_greater_than_equals(accuracy, threshold),
            ),
            then,
        )
        .when(is_number, too_low)
        .otherwise(no_metric)
    )
    return (
        sfn.Choice(scope, "Has metrics")
        .when(sfn.Condition.is_present("$.training.FinalMetricDataList"), read.next(gate))
        .otherwise(no_metric)
    )


def model_parameters(res: Resources) -> dict:
    """CreateModel of the new artifact (the test gate's transform job runs it)."""
    return {
        # Unique per execution (the job name) and per retry of this state.
        "ModelName.$": "States.Format('{}-{}', $.training_job, $$.State.RetryCount)",
        "PrimaryContainer": {"Image": res.image_uri, "ModelDataUrl.$": "$.artifact"},
        "ExecutionRoleArn": res.model_role.role_arn,
        "EnableNetworkIsolation": True,
        "Tags": [
            *tags(),
            {"Key": ACCURACY_TAG, "Value.$": "States.Format('{}', $.validation_accuracy)"},
        ],
    }


def create_model(stage: Stage) -> sfn.CustomState:
    state = sfn.CustomState(
        stage.scope,
        "Create model",
        state_json={
            "Type": "Task",
            "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createModel",
            "Parameters": model_parameters(stage.res),
            # The Model's name is the last part of its ARN.
            "ResultSelector": {
                "name.$": "States.ArrayGetItem(States.StringSplit($.ModelArn, '/'), 1)",
                "arn.$": "$.ModelArn",
            },
            "ResultPath": "$.model",
        },
    )
    state.add_retry(
        errors=["ThrottlingException", *THROTTLING["sagemaker"]],
        interval=Duration.seconds(2),
        backoff_rate=2.0,
        max_attempts=5,
        jitter_strategy=sfn.JitterType.FULL,
    )
    stage.catch(state)
    return state


def transform_parameters(config: Config, res: Resources) -> dict:
    """CreateTransformJob on the dataset's test/ channel with the new model."""
    data, artifacts = res.training_data.bucket_name, res.artifacts.bucket_name
    resources = {"InstanceType": config.transform_instance_type, "InstanceCount": 1}
    if not has_instance_storage(config.transform_instance_type):
        resources["VolumeKmsKeyId"] = res.key.key_arn
    return {
        # <model name>-<attempt>: unique per execution and retry, <= 63 characters.
        "TransformJobName.$": "States.Format('{}-{}', $.model.name, $$.State.RetryCount)",
        "ModelName.$": "$.model.name",
        "BatchStrategy": "SingleRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "ContentType": "application/x-image",
            "SplitType": "None",
            "CompressionType": "None",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri.$": f"States.Format('s3://{data}/{{}}test/', $.dataset)",
                }
            },
        },
        "TransformOutput": {
            "S3OutputPath.$": f"States.Format('s3://{artifacts}/{TRAINING_JOBS_PREFIX}"
            f"{{}}/{TEST_PREDICTIONS}', $.training_job)",
            "KmsKeyId": res.key.key_arn,
            "AssembleWith": "None",
        },
        "TransformResources": resources,
        "Tags": tags(),
    }


def _score_payload(stage: Stage) -> dict:
    res = stage.res
    data, artifacts = res.training_data.bucket_name, res.artifacts.bucket_name
    job = sfn.JsonPath.string_at("$.training_job")
    return {
        "truth": {
            "bucket": data,
            "lst_key": sfn.JsonPath.format(
                "{}test_lst/test.lst", sfn.JsonPath.string_at("$.dataset")
            ),
            "labels_key": sfn.JsonPath.format(
                f"{{}}{LABELS_FILE}", sfn.JsonPath.string_at("$.dataset")
            ),
        },
        "predictions": {
            "bucket": artifacts,
            "prefix": sfn.JsonPath.format(f"{TRAINING_JOBS_PREFIX}{{}}/{TEST_PREDICTIONS}", job),
        },
        "report": {
            "bucket": artifacts,
            "key": sfn.JsonPath.format(f"{TRAINING_JOBS_PREFIX}{{}}/{EVALUATION_REPORT}", job),
        },
        "threshold": stage.config.test_accuracy_threshold,
    }


def evaluation_gate(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    """Transform the test/ channel with `$.model`, score it, gate on top-1 test accuracy."""
    scope, threshold = stage.scope, stage.config.test_accuracy_threshold
    transform = sfn.CustomState(
        scope,
        "Evaluate on test channel",
        state_json={
            "Type": "Task",
            "Comment": "Batch transform of the held-out test/ images with the new model",
            "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTransformJob.sync",
            "Parameters": transform_parameters(stage.config, stage.res),
            "TimeoutSeconds": int(Duration.hours(3).to_seconds()),
            # (CDK drops a None ResultPath from raw state JSON: keep a small result.)
            "ResultSelector": {"name.$": "$.TransformJobName"},
            "ResultPath": "$.transform",
        },
    )
    transform.add_retry(
        errors=["ThrottlingException", *THROTTLING["sagemaker"]],
        interval=Duration.seconds(5),
        backoff_rate=2.0,
        max_attempts=3,
        jitter_strategy=sfn.JitterType.FULL,
    )
    score = tasks.LambdaInvoke(
        scope,
        "Score test predictions",
        lambda_function=stage.res.evaluate_function,
        payload=sfn.TaskInput.from_object(_score_payload(stage)),
        retry_on_service_exceptions=False,
        result_selector={
            "accuracy": sfn.JsonPath.number_at("$.Payload.test_accuracy"),
            "images": sfn.JsonPath.number_at("$.Payload.images"),
            "passed": sfn.JsonPath.string_at("$.Payload.passed"),
            "report_uri": sfn.JsonPath.string_at("$.Payload.report_uri"),
        },
        result_path="$.test",
    )
    retry_throttling(score, "lambda")
    # The Model is deleted once the gate has its result, whichever it is.
    delete, delete_after_failure = (
        delete_model(stage, name)
        for name in ("Delete test model", "Delete test model after failure")
    )
    delete_after_failure.next(stage.notify_failure)
    for state in (transform, score):
        state.add_catch(delete_after_failure, errors=["States.ALL"], result_path=FAILURE)
    too_low = stage.fail(
        "Test accuracy below threshold",
        "TestAccuracyBelowThreshold",
        sfn.JsonPath.format(
            f"test accuracy {{}} of model {{}} on {{}} test images is below the threshold "
            f"{threshold}: nothing was registered; report {{}}.",
            sfn.JsonPath.string_at("$.test.accuracy"),
            sfn.JsonPath.string_at("$.model.name"),
            sfn.JsonPath.string_at("$.test.images"),
            sfn.JsonPath.string_at("$.test.report_uri"),
        ),
    )
    gate = (
        sfn.Choice(scope, "Check test accuracy", comment=f"Test-set gate: accuracy >= {threshold}")
        .when(sfn.Condition.boolean_equals("$.test.passed", True), then)
        .otherwise(too_low)
    )
    return create_model(stage).next(transform).next(score).next(delete).next(gate)


def delete_model(stage: Stage, name: str) -> tasks.CallAwsService:
    """DeleteModel of `$.model.name` (aws-sdk: DeleteModel has no optimized integration).
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteModel.html"""
    prefix = job_name_prefix(stage.config.prefix)
    state = tasks.CallAwsService(
        stage.scope,
        name,
        service="sagemaker",
        action="deleteModel",
        parameters={"ModelName": sfn.JsonPath.string_at("$.model.name")},
        iam_action="sagemaker:DeleteModel",
        # Only the gate's Models (<prefix>-train-<hash>-<attempt>, or a tuning run's
        # <prefix>-t-<n>-<NNN>-<id>-<attempt>), never a served one.
        iam_resources=[
            Stack.of(stage.scope).format_arn(
                service="sagemaker", resource="model", resource_name=f"{name_prefix}*"
            )
            for name_prefix in (prefix, tuning_job_prefix(stage.config.prefix))
        ],
        result_path=sfn.JsonPath.DISCARD,
    )
    retry_throttling(state, "sagemaker")
    if name.endswith("after failure"):
        # Keep the first failure's cause: a failed delete is still notified with it.
        state.add_catch(stage.notify_failure, errors=["States.ALL"], result_path="$.delete_error")
    else:
        stage.catch(state)
    return state
