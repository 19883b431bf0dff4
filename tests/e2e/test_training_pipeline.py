"""The training stack's REAL state machine definition, executed in moto.

Only the GPU training task is faked: the test-only rewrite (tests/support/sfn_local.py)
turns `createTrainingJob.sync` into a task-token callback, and the test answers with a
DescribeTrainingJob-shaped result (or a failure). Everything else runs as deployed: S3
reads and copies, CreateModel, SSM PutParameter, SNS notifications (read through an SQS
subscription), Choice gates and Fail causes.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import boto3
import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from moto import mock_aws

from stacks.config import config_from_context
from stacks.names import NO_APPROVED_MODEL, approved_model_parameter
from stacks.storage_stack import StorageStack
from stacks.training_stack import TrainingStack
from tests.infrastructure.conftest import CDK_JSON_CONTEXT
from tests.support import sfn_local

DATASET = "datasets/grocery/"
LABELS = ["Golden-Delicious", "Granny-Smith", "Banana"]
MANIFEST = {"num_classes": 3, "num_training_samples": 20, "num_validation_samples": 6}
DATA_BUCKET, ARTIFACTS_BUCKET = "grocery-training-data", "grocery-artifacts"
TRAINING_ROLE = f"arn:aws:iam::{sfn_local.ACCOUNT}:role/training-job"
MODEL_ROLE = f"arn:aws:iam::{sfn_local.ACCOUNT}:role/model"
KEY_ARN = (
    f"arn:aws:kms:{sfn_local.REGION}:{sfn_local.ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)
PREFIX = "grocery"


@functools.cache
def _synthesized() -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(storage template, training template, storage logical ids) of a Storage + Training app."""
    app = App(context=CDK_JSON_CONTEXT)
    config = config_from_context(app.node.try_get_context)
    storage = StorageStack(app, "Storage", config=config, stack_name="Grocery-Storage")
    training = TrainingStack(
        app, "Training", config=config, storage=storage, stack_name="Grocery-Training"
    )
    training_json = Template.from_stack(training).to_json()
    logical = {
        name: storage.resolve(storage.get_logical_id(construct.node.default_child))
        for name, construct in (
            ("training_data", storage.training_data),
            ("artifacts", storage.artifacts),
            ("topic", storage.topic),
            ("key", storage.key),
        )
    }
    logical.update(
        {
            name: training.resolve(training.get_logical_id(role.node.default_child))
            for name, role in (
                ("training_role", training.training_role),
                ("model_role", training.model_role),
            )
        }
    )
    return Template.from_stack(storage).to_json(), training_json, logical


def _values(topic_arn: str) -> dict[str, str]:
    """What the definition references, mapped to the moto resources of this test."""
    storage_json, _, logical = _synthesized()
    by_reference = {
        json.dumps({"Ref": logical["training_data"]}): DATA_BUCKET,
        json.dumps({"Ref": logical["artifacts"]}): ARTIFACTS_BUCKET,
        json.dumps({"Ref": logical["topic"]}): topic_arn,
        json.dumps({"Fn::GetAtt": [logical["key"], "Arn"]}): KEY_ARN,
    }
    values = {
        f"{logical['training_role']}.Arn": TRAINING_ROLE,
        f"{logical['model_role']}.Arn": MODEL_ROLE,
    }
    for output in storage_json["Outputs"].values():
        export = output.get("Export", {}).get("Name")
        key = json.dumps(output["Value"])
        if export and key in by_reference:
            values[export] = by_reference[key]
    return values


class Pipeline:
    """The moto world of one test: buckets, topic (+ SQS subscriber), parameters, state machine."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3")
        self.sfn = boto3.client("stepfunctions")
        self.ssm = boto3.client("ssm")
        self.sqs = boto3.client("sqs")
        self.sagemaker = boto3.client("sagemaker")
        for bucket in (DATA_BUCKET, ARTIFACTS_BUCKET):
            self.s3.create_bucket(Bucket=bucket)
        topic_arn = boto3.client("sns").create_topic(Name="notifications")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        for field in ("model-name", "labels-uri"):
            self.ssm.put_parameter(
                Name=approved_model_parameter(PREFIX, field), Value=NO_APPROVED_MODEL, Type="String"
            )
        _, training_json, _ = _synthesized()
        definition = sfn_local.render_definition(training_json, values=_values(topic_arn))
        self.definition = definition
        self.arn = sfn_local.create_state_machine(
            self.sfn, sfn_local.rewrite_sync_to_callback(definition)
        )

    def upload_dataset(self, *, manifest: Any = MANIFEST, labels: Any = LABELS) -> None:
        for name, content in (("labels.json", labels), ("manifest.json", manifest)):
            if content is not None:
                body = content if isinstance(content, str) else json.dumps(content)
                self.s3.put_object(Bucket=DATA_BUCKET, Key=f"{DATASET}{name}", Body=body)

    def start(self, payload: dict[str, Any] | None = None) -> str:
        return sfn_local.start_execution(
            self.sfn, self.arn, {"dataset": DATASET} if payload is None else payload
        )

    def finish_training(self, execution_arn: str, *, accuracy: float | None) -> dict[str, Any]:
        """Answers the training task as a Completed job would; returns its Parameters.

        accuracy=None: a job without FinalMetricDataList (moto cannot evaluate a JSONPath
        filter that matches nothing, so the list is left out rather than emptied).
        """
        task = sfn_local.wait_for_task_token(self.sfn, execution_arn, "createTrainingJob")
        job = task.parameters["TrainingJobName"]
        output = task.parameters["OutputDataConfig"]["S3OutputPath"]
        description = {
            "TrainingJobName": job,
            "TrainingJobArn": f"arn:aws:sagemaker:{sfn_local.REGION}:{sfn_local.ACCOUNT}:training-job/{job}",
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"{output}{job}/output/model.tar.gz"},
            "HyperParameters": task.parameters["HyperParameters"],
        }
        if accuracy is not None:
            description["FinalMetricDataList"] = [
                {
                    "MetricName": "train:accuracy",
                    "Value": 0.99,
                    "Timestamp": "2026-11-25T14:00:00Z",
                },
                {
                    "MetricName": "validation:accuracy",
                    "Value": accuracy,
                    "Timestamp": "2026-11-25T14:00:00Z",
                },
            ]
        self.sfn.send_task_success(taskToken=task.token, output=json.dumps(description))
        return task.parameters

    def wait(self, execution_arn: str) -> dict[str, Any]:
        return sfn_local.wait_for_execution(self.sfn, execution_arn)

    def parameter(self, field: str) -> str:
        name = approved_model_parameter(PREFIX, field)
        return self.ssm.get_parameter(Name=name)["Parameter"]["Value"]

    def notifications(self) -> list[dict[str, str]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@pytest.fixture
def pipeline(aws_credentials):
    with mock_aws(config=sfn_local.MOTO_CONFIG), sfn_local.aws_sdk_like_aws():
        yield Pipeline()


def test_success_registers_model_moves_pointer_and_notifies(pipeline):
    pipeline.upload_dataset()
    execution = pipeline.start({"dataset": DATASET, "hyperparameters": {"epochs": "2"}})
    params = pipeline.finish_training(execution, accuracy=0.91)

    result = pipeline.wait(execution)

    assert result["status"] == "SUCCEEDED", result
    job = params["TrainingJobName"]
    hps = params["HyperParameters"]
    # Manifest values, execution override, configured defaults, and the clamp to 20 images.
    assert (hps["num_classes"], hps["num_training_samples"]) == ("3", "20")
    assert hps["epochs"] == "2"
    assert hps["use_pretrained_model"] == "1"
    assert hps["mini_batch_size"] == "20"
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in params["InputDataConfig"]
    }
    assert channels == {
        name: f"s3://{DATA_BUCKET}/{DATASET}{name}/"
        for name in ("train", "validation", "train_lst", "validation_lst")
    }
    assert params["CheckpointConfig"]["S3Uri"] == f"s3://{ARTIFACTS_BUCKET}/checkpoints/{job}/"

    model_name = pipeline.parameter("model-name")
    assert model_name == f"{job}-0"
    model = pipeline.sagemaker.describe_model(ModelName=model_name)
    assert model["ExecutionRoleArn"] == MODEL_ROLE
    assert model["PrimaryContainer"]["ModelDataUrl"] == (
        f"s3://{ARTIFACTS_BUCKET}/training-jobs/{job}/output/model.tar.gz"
    )

    labels_uri = pipeline.parameter("labels-uri")
    assert labels_uri == f"s3://{ARTIFACTS_BUCKET}/training-jobs/{job}/labels.json"
    copied = pipeline.s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=f"training-jobs/{job}/labels.json")
    assert json.loads(copied["Body"].read()) == LABELS

    (notification,) = pipeline.notifications()
    assert "new model approved" in notification["Subject"]
    assert "validation:accuracy 0.91" in notification["Message"]
    assert f"training-jobs/{job}/output/model.tar.gz" in notification["Message"]
    assert result["output_json"]["model"]["name"] == model_name
    assert result["output_json"]["validation_accuracy"] == 0.91


def test_accuracy_below_threshold_registers_nothing(pipeline):
    pipeline.upload_dataset()
    execution = pipeline.start()
    params = pipeline.finish_training(execution, accuracy=0.42)

    result = pipeline.wait(execution)

    assert result["status"] == "FAILED"
    assert result["error"] == "TrainingPipelineFailed"
    assert result["cause"].startswith("AccuracyBelowThreshold: validation:accuracy 0.42")
    assert "below the threshold 0.8" in result["cause"]
    assert params["TrainingJobName"] in result["cause"]
    assert pipeline.parameter("model-name") == NO_APPROVED_MODEL
    assert pipeline.parameter("labels-uri") == NO_APPROVED_MODEL
    assert pipeline.sagemaker.list_models()["Models"] == []
    (notification,) = pipeline.notifications()
    assert "failed" in notification["Subject"]
    assert "validation:accuracy 0.42" in notification["Message"]
    assert "threshold 0.8" in notification["Message"]


def test_missing_accuracy_metric_fails_without_registering(pipeline):
    pipeline.upload_dataset()
    execution = pipeline.start()
    pipeline.finish_training(execution, accuracy=None)

    result = pipeline.wait(execution)

    assert result["status"] == "FAILED"
    assert result["cause"].startswith("AccuracyMissing:")
    assert pipeline.parameter("model-name") == NO_APPROVED_MODEL


def test_training_failure_is_notified_with_its_cause(pipeline):
    pipeline.upload_dataset()
    execution = pipeline.start()
    task = sfn_local.wait_for_task_token(pipeline.sfn, execution, "createTrainingJob")
    reason = (
        "ClientError: The number of input images must be bigger or equal to the mini_batch_size"
    )
    # AWS reports a failed .sync job as States.TaskFailed; moto refuses "States." names
    # from send_task_failure, so the fake uses another name (the path is the same Catch).
    sfn_local.fail_task(
        task.token,
        error="TrainingJobFailed",
        cause=json.dumps({"TrainingJobStatus": "Failed", "FailureReason": reason}),
    )

    result = pipeline.wait(execution)

    assert result["status"] == "FAILED"
    assert result["cause"].startswith("TrainingJobFailed: ")
    assert reason in result["cause"]
    assert pipeline.parameter("model-name") == NO_APPROVED_MODEL
    (notification,) = pipeline.notifications()
    assert reason in notification["Message"]


def test_missing_manifest_fails_at_once_with_a_clear_cause(pipeline):
    pipeline.upload_dataset(manifest=None)
    execution = pipeline.start()

    result = pipeline.wait(execution)

    assert result["status"] == "FAILED"
    assert result["cause"].startswith(
        f"DatasetIncomplete: No manifest.json under s3://{DATA_BUCKET}/{DATASET}"
    )
    states = sfn_local.state_sequence(pipeline.sfn, execution)
    assert "Train" not in states
    assert states[-3:] == ["Missing manifest.json", "Notify failure", "Failed"]
    (notification,) = pipeline.notifications()
    assert "No manifest.json" in notification["Message"]


@pytest.mark.parametrize(
    ("manifest", "labels", "expected"),
    [
        (
            {"num_classes": 3},
            LABELS,
            "ManifestInvalid: manifest.json under datasets/grocery/ must hold",
        ),
        (
            {**MANIFEST, "num_classes": 4},
            LABELS,
            "ManifestInvalid: manifest.json under datasets/grocery/ is inconsistent: num_classes=4",
        ),
        ({**MANIFEST, "num_training_samples": 0}, LABELS, "is inconsistent"),
        (MANIFEST, None, "DatasetIncomplete: No labels.json under"),
    ],
    ids=["counts-missing", "labels-mismatch", "no-training-images", "labels-missing"],
)
def test_bad_dataset_fails_before_training(pipeline, manifest, labels, expected):
    pipeline.upload_dataset(manifest=manifest, labels=labels)
    execution = pipeline.start()

    result = pipeline.wait(execution)

    assert result["status"] == "FAILED"
    assert expected in result["cause"]
    assert "Train" not in sfn_local.state_sequence(pipeline.sfn, execution)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"dataset": f"s3://{DATA_BUCKET}/{DATASET}"},
        {"dataset": "datasets/grocery"},
        {"dataset": DATASET, "hyperparameters": "epochs=2"},
        {"dataset": DATASET, "instance_type": "p3.2xlarge"},
        {"dataset": DATASET, "hyperparameters": {"mini_batch_size": 16}},
    ],
    ids=[
        "no-dataset",
        "s3-uri",
        "no-trailing-slash",
        "hyperparameters-not-object",
        "bad-instance",
        "number-hp",
    ],
)
def test_invalid_input_is_rejected_with_the_expected_shape(pipeline, payload):
    pipeline.upload_dataset()
    execution = pipeline.start(payload)

    result = pipeline.wait(execution)

    assert result["status"] == "FAILED"
    assert result["cause"].startswith("InvalidInput: ")
    assert "Train" not in sfn_local.state_sequence(pipeline.sfn, execution)


def test_instance_type_override_reaches_the_training_job(pipeline):
    pipeline.upload_dataset(manifest={**MANIFEST, "num_training_samples": 500})
    execution = pipeline.start({"dataset": DATASET, "instance_type": "ml.g4dn.xlarge"})
    params = pipeline.finish_training(execution, accuracy=0.85)

    assert pipeline.wait(execution)["status"] == "SUCCEEDED"
    assert params["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    assert params["HyperParameters"]["mini_batch_size"] == "32"  # not clamped: 500 images
