"""`python -m grocery train` against the real training definition running in moto."""

from __future__ import annotations

import io
import json
import time

import boto3
import pytest

from grocery import train
from grocery.__main__ import build_parser
from grocery.__main__ import main as cli_main
from grocery.errors import CommandError
from stacks.names import NO_APPROVED_MODEL
from tests.e2e.conftest import ARTIFACTS_BUCKET, DATA_BUCKET, DATASET, LABELS, PACKAGE_GROUP
from tests.support import sfn_local


@pytest.fixture
def deployed(pipeline, monkeypatch):
    """The stack outputs the command reads, pointing at the moto pipeline."""
    outputs = {
        ("Grocery-Training", train.STATE_MACHINE_OUTPUT): pipeline.arn,
        ("Grocery-Storage", train.BUCKET_OUTPUT): DATA_BUCKET,
    }
    asked = []

    def stack_output(stack, key, *, session=None):
        asked.append((stack, key))
        return outputs[(stack, key)]

    monkeypatch.setattr(train, "stack_output", stack_output)
    pipeline.asked = asked
    return pipeline


def _args(*argv: str):
    return build_parser().parse_args(["train", *argv])


class TrainingAnswer:
    """The `sleep` of the follow loop: finishes the training job once, then just waits."""

    def __init__(self, pipeline, accuracy: float | None) -> None:
        self.pipeline, self.accuracy, self.done, self.calls = pipeline, accuracy, False, []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if not self.done:
            (execution,) = self.pipeline.sfn.list_executions(stateMachineArn=self.pipeline.arn)[
                "executions"
            ]
            self.pipeline.finish_training(execution["executionArn"], accuracy=self.accuracy)
            self.done = True
        time.sleep(0.05)


def test_train_follows_the_run_and_prints_the_registered_version(deployed):
    deployed.upload_dataset()
    out = io.StringIO()
    sleep = TrainingAnswer(deployed, accuracy=0.93)
    args = _args(
        "--dataset",
        f"s3://{DATA_BUCKET}/{DATASET}",
        "--hyperparameter",
        "epochs=3",
        "--poll-seconds",
        "7",
    )

    assert train.run(args, session=boto3.Session(), sleep=sleep, out=out) == 0

    text = out.getvalue()
    # Training registers a version; the approved-model pointer moves only on a release.
    assert deployed.parameter("model-name") == NO_APPROVED_MODEL
    assert "model: " not in text  # no SageMaker Model: the version is what gets served
    assert "registered: version 1 of the model registry" in text
    assert "validation:accuracy: 0.93 (threshold 0.8)" in text
    assert "state: Train" in text
    assert "training job: grocery-train-" in text
    assert set(sleep.calls) == {7.0}
    started = json.loads(text.split("input: ", 1)[1].splitlines()[0])
    assert started == {"dataset": DATASET, "hyperparameters": {"epochs": "3"}}
    assert ("Grocery-Storage", train.BUCKET_OUTPUT) in deployed.asked


def test_train_exits_1_with_the_gate_cause(deployed):
    deployed.upload_dataset()
    args = _args("--dataset", DATASET, "--poll-seconds", "1")

    with pytest.raises(CommandError) as failure:
        train.run(
            args, session=boto3.Session(), sleep=TrainingAnswer(deployed, 0.5), out=io.StringIO()
        )

    assert failure.value.exit_code == 1
    assert "AccuracyBelowThreshold: validation:accuracy 0.5" in str(failure.value)
    assert "threshold 0.8" in str(failure.value)
    assert deployed.parameter("model-name") == NO_APPROVED_MODEL


def test_no_wait_starts_and_returns(deployed):
    deployed.upload_dataset()
    out = io.StringIO()

    assert (
        train.run(_args("--dataset", DATASET, "--no-wait"), session=boto3.Session(), out=out) == 0
    )

    (execution,) = deployed.sfn.list_executions(stateMachineArn=deployed.arn)["executions"]
    assert execution["executionArn"] in out.getvalue()
    assert execution["name"].startswith("train-")


def test_dataset_in_another_bucket_is_refused_before_starting(deployed):
    with pytest.raises(CommandError, match="reads the training-data bucket"):
        train.run(_args("--dataset", "s3://elsewhere/datasets/grocery/"), session=boto3.Session())
    assert deployed.sfn.list_executions(stateMachineArn=deployed.arn)["executions"] == []


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ("datasets/grocery", "datasets/grocery/"),
        ("/datasets/grocery/", "datasets/grocery/"),
        ("s3://bucket/datasets/grocery", "datasets/grocery/"),
    ],
)
def test_dataset_prefix_is_normalized(dataset, expected):
    assert train.dataset_prefix(dataset, "bucket") == expected


@pytest.mark.parametrize("dataset", ["s3://bucket/", "", "s3:/bucket/x", "a//b"])
def test_unusable_dataset_is_a_one_line_error(dataset):
    with pytest.raises(CommandError, match="--dataset"):
        train.dataset_prefix(dataset, "bucket")


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["epochs"], "KEY=VALUE"),
        (["num_classes=3"], "manifest.json"),
        (["mini_batch_size=big"], "positive whole number"),
        (["mini_batch_size=0"], "positive whole number"),
        ([f"optimizer={'x' * 257}"], "256 characters"),
    ],
)
def test_bad_hyperparameters_are_refused(pairs, message):
    with pytest.raises(CommandError, match=message):
        train.hyperparameter_overrides(pairs)


def test_instance_type_must_be_a_sagemaker_type():
    args = _args("--dataset", DATASET, "--instance-type", "p3.2xlarge")
    with pytest.raises(CommandError, match="--instance-type"):
        train.execution_input(args, None)


def test_failed_training_job_reason_is_extracted():
    cause = json.dumps({"TrainingJobName": "j", "FailureReason": "ClientError: bad channel"})
    description = {"status": "FAILED", "cause": f"States.TaskFailed: {cause}"}
    assert train.failure_message(description) == (
        "States.TaskFailed: training job j failed: ClientError: bad channel"
    )
    assert train.failure_message({"status": "ABORTED"}) == "ABORTED"


def test_storage_stack_follows_the_training_stack_name():
    assert train._storage_stack(_args("--dataset", DATASET, "--stack", "Shop-Training")) == (
        "Shop-Storage"
    )
    assert train._storage_stack(_args("--dataset", DATASET, "--storage-stack", "S")) == "S"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", DATASET, "--hyperparameter", "epochs"], "--hyperparameter 'epochs': use"),
        (["--dataset", "http://x/y"], "--dataset 'http://x/y': the pipeline reads S3 only"),
        (["--dataset", DATASET, "--instance-type", "p3"], "--instance-type 'p3'"),
        (["--dataset", DATASET, "--poll-seconds", "0"], "--poll-seconds 0"),
    ],
)
def test_arguments_are_checked_before_aws_is_reached(argv, message, monkeypatch, capsys):
    def no_aws(*_args, **_kwargs):
        raise AssertionError("AWS reached before the arguments were checked")

    monkeypatch.setattr(train, "stack_output", no_aws)
    monkeypatch.setattr(train, "aws_session", no_aws)
    assert cli_main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}")
    assert err.count("\n") == 1


# --- --from-version (incremental training) ---------------------------------------------------


def _register_version(pipeline, labels: list[str]) -> str:
    """Version 1 of the group, as the pipeline registers it; returns its ModelDataUrl."""
    job = "grocery-train-0a1b"
    model_data = f"s3://{ARTIFACTS_BUCKET}/training-jobs/{job}/output/model.tar.gz"
    labels_key = f"training-jobs/{job}/labels.json"
    pipeline.s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=labels_key, Body=json.dumps(labels))
    pipeline.sagemaker.create_model_package(
        ModelPackageGroupName=PACKAGE_GROUP,
        InferenceSpecification={
            "Containers": [{"Image": "image-classification:1", "ModelDataUrl": model_data}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={
            "training_job": job,
            "labels_uri": f"s3://{ARTIFACTS_BUCKET}/{labels_key}",
        },
        ModelApprovalStatus="Approved",
    )
    return model_data


def test_from_version_with_the_same_labels_starts_an_incremental_training(deployed):
    deployed.upload_dataset()
    model_data = _register_version(deployed, LABELS)
    out = io.StringIO()
    args = _args("--dataset", DATASET, "--from-version", "1", "--no-wait")

    assert train.run(args, session=boto3.Session(), out=out) == 0

    (execution,) = deployed.sfn.list_executions(stateMachineArn=deployed.arn)["executions"]
    started = json.loads(
        deployed.sfn.describe_execution(executionArn=execution["executionArn"])["input"]
    )
    assert started == {
        "dataset": DATASET,
        "initial_model": {"version": "1", "model_data": model_data},
    }
    assert f"incremental training from version 1 ({model_data})" in out.getvalue()
    # The pipeline takes it: the training job gets the version's model channel.
    task = sfn_local.wait_for_task_token(
        deployed.sfn, execution["executionArn"], "createTrainingJob"
    )
    channels = {c["ChannelName"]: c for c in task.parameters["InputDataConfig"]}
    assert channels["model"]["DataSource"]["S3DataSource"]["S3Uri"] == model_data


@pytest.mark.parametrize(
    ("version_labels", "difference"),
    [
        (
            ["Golden-Delicious", "Pink-Lady", "Banana"],
            "the dataset has 3 classes, the version 3; the first difference is class 1: "
            "'Granny-Smith' in the dataset, 'Pink-Lady' in the version",
        ),
        (
            [*LABELS, "Kiwi"],
            "the dataset has 3 classes, the version 4; the version also has class 3: 'Kiwi'",
        ),
    ],
    ids=["renamed", "one-more-class"],
)
def test_from_version_with_other_labels_is_refused_before_starting(
    deployed, version_labels, difference
):
    deployed.upload_dataset()
    _register_version(deployed, version_labels)

    with pytest.raises(CommandError) as refused:
        train.run(_args("--dataset", DATASET, "--from-version", "1"), session=boto3.Session())

    assert refused.value.exit_code == 2
    message = str(refused.value)
    assert message.startswith("--from-version 1: the dataset's labels differ from the version's")
    assert difference in message
    assert "train fully instead: omit --from-version" in message
    assert deployed.sfn.list_executions(stateMachineArn=deployed.arn)["executions"] == []


def test_from_an_unknown_version_is_refused(deployed):
    deployed.upload_dataset()
    with pytest.raises(CommandError, match="has no version 7"):
        train.run(_args("--dataset", DATASET, "--from-version", "7"), session=boto3.Session())


def test_from_version_may_not_change_the_network():
    args = _args("--dataset", DATASET, "--from-version", "2", "--hyperparameter", "num_layers=18")
    with pytest.raises(CommandError, match="--hyperparameter num_layers: it defines the network"):
        train.execution_input(args, None)
