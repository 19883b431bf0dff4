"""Shared moto worlds: the training pipeline's (e2e and CLI tests) and the batch pipeline's
(`world`, built in tests/e2e/batch_world.py).

The training stack's REAL state machine definition runs in moto; only the GPU training
task is faked: the test-only rewrite (tests/support/sfn_local.py) turns
`createTrainingJob.sync` into a task-token callback, and `Pipeline.finish_training`
answers with a DescribeTrainingJob-shaped result.
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
from stacks.names import approved_model_parameter
from stacks.storage_stack import StorageStack
from stacks.training_stack import TrainingStack
from tests.infrastructure.conftest import CDK_JSON_CONTEXT
from tests.support import custom_resources, sfn_local

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
PACKAGE_GROUP = "grocery-classifier"


MOTO_CONFIG = {**sfn_local.MOTO_CONFIG, "lambda": {"use_docker": False}}
TEST_GATE = json.dumps({"test_accuracy_threshold": "0.75"})
AUTO_APPROVAL = json.dumps({"model_approval": "auto"})


@functools.cache
def _synthesized(
    context: str = "{}",
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(storage template, training template, logical ids) of a Storage + Training app.

    `context`: extra CDK context as JSON (hashable, for the cache), e.g. TEST_GATE.
    """
    app = App(context={**CDK_JSON_CONTEXT, **json.loads(context)})
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
    if training.evaluate_function is not None:
        logical["evaluate_function"] = training.resolve(
            training.get_logical_id(training.evaluate_function.function.node.default_child)
        )
    return Template.from_stack(storage).to_json(), training_json, logical


def _values(topic_arn: str, context: str, function_arn: str | None) -> dict[str, str]:
    """What the definition references, mapped to the moto resources of this test."""
    storage_json, _, logical = _synthesized(context)
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
    if function_arn:
        values[f"{logical['evaluate_function']}.Arn"] = function_arn
    for output in storage_json["Outputs"].values():
        export = output.get("Export", {}).get("Name")
        key = json.dumps(output["Value"])
        if export and key in by_reference:
            values[export] = by_reference[key]
    return values


class Pipeline:
    """The moto world of one test: buckets, topic (+ SQS subscriber), parameters, state machine."""

    def __init__(self, context: str = "{}") -> None:
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
        _, training_json, logical = _synthesized(context)
        # The approved-model pointer ("none"), created as the stack's custom resources do.
        custom_resources.run_sdk_calls(training_json, "Create")
        # The model registry's group, as the stack declares it.
        custom_resources.create_model_package_groups(training_json)
        self.training_template = training_json
        function_arn = None
        if "evaluate_function" in logical:
            role = boto3.client("iam").create_role(
                RoleName="score-test-set", AssumeRolePolicyDocument="{}"
            )["Role"]["Arn"]
            function_arn = boto3.client("lambda").create_function(
                FunctionName="score-test-set",
                Runtime="python3.11",
                Role=role,
                Handler="training_evaluate.handler.handler",
                Code={"ZipFile": b"PK\x05\x06" + bytes(18)},
            )["FunctionArn"]
        definition = sfn_local.render_definition(
            training_json, values=_values(topic_arn, context, function_arn)
        )
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
    with (
        mock_aws(config=MOTO_CONFIG),
        sfn_local.aws_sdk_like_aws(),
        sfn_local.sync_failures_like_aws(),
    ):
        yield Pipeline()


@pytest.fixture
def gated_pipeline(aws_credentials):
    """The pipeline synthesized with the optional test-set gate on (threshold 0.75)."""
    with (
        mock_aws(config=MOTO_CONFIG),
        sfn_local.aws_sdk_like_aws(),
        sfn_local.sync_failures_like_aws(),
    ):
        yield Pipeline(TEST_GATE)


@pytest.fixture
def auto_pipeline(aws_credentials):
    """The pipeline synthesized with model_approval=auto (versions registered Approved)."""
    with (
        mock_aws(config=MOTO_CONFIG),
        sfn_local.aws_sdk_like_aws(),
        sfn_local.sync_failures_like_aws(),
    ):
        yield Pipeline(AUTO_APPROVAL)


@pytest.fixture
def world(aws_credentials, monkeypatch):
    """The batch pipeline's moto world (tests/e2e/batch_world.py)."""
    from tests.e2e.batch_world import MOTO_CONFIG as BATCH_MOTO_CONFIG
    from tests.e2e.batch_world import World

    with mock_aws(config=BATCH_MOTO_CONFIG), sfn_local.sync_failures_like_aws():
        yield World(monkeypatch)
