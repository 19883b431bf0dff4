"""The training stack's REAL state machine definition, executed in moto.

Only the GPU training task is faked (see conftest.py). Everything else runs as deployed:
S3 reads and copies, CreateModel, SSM PutParameter, SNS notifications (read through an
SQS subscription), Choice gates and Fail causes.
"""

from __future__ import annotations

import json

import pytest

from stacks.names import NO_APPROVED_MODEL
from tests.e2e.conftest import (
    ARTIFACTS_BUCKET,
    DATA_BUCKET,
    DATASET,
    KEY_ARN,
    LABELS,
    MANIFEST,
    PACKAGE_GROUP,
)
from tests.support import custom_resources, sfn_local


def test_success_registers_a_version_leaves_the_pointer_to_the_release_and_notifies(pipeline):
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
    assert params["OutputDataConfig"]["KmsKeyId"] == KEY_ARN
    assert params["ResourceConfig"] == {
        "InstanceCount": 1,
        "InstanceType": "ml.p3.2xlarge",
        "VolumeSizeInGB": 50,
        "VolumeKmsKeyId": KEY_ARN,
    }

    # Only an approval releases the version (stacks/release): batch keeps its model.
    assert pipeline.parameter("model-name") == NO_APPROVED_MODEL
    assert pipeline.parameter("labels-uri") == NO_APPROVED_MODEL
    # No SageMaker Model is left behind (only the test gate creates one, and deletes it).
    assert pipeline.sagemaker.list_models()["Models"] == []

    copied = pipeline.s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=f"training-jobs/{job}/labels.json")
    assert json.loads(copied["Body"].read()) == LABELS

    (notification,) = pipeline.notifications()
    assert "new model version awaits approval" in notification["Subject"]
    assert "validation:accuracy 0.91" in notification["Message"]
    assert (
        "version 1 of model package group grocery-classifier (PendingManualApproval)"
        in (notification["Message"])
    )
    assert "python -m grocery models approve 1" in notification["Message"]
    assert f"training-jobs/{job}/output/model.tar.gz" in notification["Message"]
    assert "model" not in result["output_json"]
    assert result["output_json"]["validation_accuracy"] == 0.91
    assert result["output_json"]["model_package"]["version"] == "1"


def test_success_registers_a_model_package_version_pending_approval(pipeline):
    pipeline.upload_dataset()
    execution = pipeline.start()
    job = pipeline.finish_training(execution, accuracy=0.91)["TrainingJobName"]
    assert pipeline.wait(execution)["status"] == "SUCCEEDED"

    (summary,) = pipeline.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)[
        "ModelPackageSummaryList"
    ]
    package = pipeline.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert package["ModelPackageVersion"] == 1
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    spec = package["InferenceSpecification"]
    (container,) = spec["Containers"]
    assert container["ModelDataUrl"] == (
        f"s3://{ARTIFACTS_BUCKET}/training-jobs/{job}/output/model.tar.gz"
    )
    assert container["Image"].endswith("/image-classification:1")
    assert spec["SupportedContentTypes"] == ["image/jpeg", "image/png", "application/x-image"]
    assert spec["SupportedResponseMIMETypes"] == ["application/json"]
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == ["ml.m4.xlarge"]
    assert spec["SupportedTransformInstanceTypes"] == ["ml.m4.xlarge"]
    assert package["CustomerMetadataProperties"] == {
        "training_job": job,
        "dataset_manifest": f"s3://{DATA_BUCKET}/{DATASET}manifest.json",
        "labels_uri": f"s3://{ARTIFACTS_BUCKET}/training-jobs/{job}/labels.json",
        "validation_accuracy": "0.91",
        "trained_from_version": "none",  # a full training
        "tuning_summary": "none",  # one training job, no tuning run
    }
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    metrics_key = f"training-jobs/{job}/metrics.json"
    assert statistics == {
        "ContentType": "application/json",
        "S3Uri": f"s3://{ARTIFACTS_BUCKET}/{metrics_key}",
    }
    metrics = json.loads(
        pipeline.s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=metrics_key)["Body"].read()
    )
    assert metrics == {
        "training_job": job,
        "dataset": DATASET,
        "validation": {"accuracy": 0.91, "threshold": 0.8},
    }


def test_each_passing_model_is_the_next_version(pipeline):
    pipeline.upload_dataset()
    for _ in range(2):
        execution = pipeline.start()
        pipeline.finish_training(execution, accuracy=0.9)
        assert pipeline.wait(execution)["status"] == "SUCCEEDED"
    versions = [
        p["ModelPackageVersion"]
        for p in pipeline.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)[
            "ModelPackageSummaryList"
        ]
    ]
    assert sorted(versions) == [1, 2]


def test_auto_approval_registers_the_version_approved(auto_pipeline):
    auto_pipeline.upload_dataset()
    execution = auto_pipeline.start()
    auto_pipeline.finish_training(execution, accuracy=0.9)
    assert auto_pipeline.wait(execution)["status"] == "SUCCEEDED"
    (summary,) = auto_pipeline.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)[
        "ModelPackageSummaryList"
    ]
    assert summary["ModelApprovalStatus"] == "Approved"
    (notification,) = auto_pipeline.notifications()
    assert "new model version approved" in notification["Subject"]
    assert "(Approved)" in notification["Message"]


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
    packages = pipeline.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)
    assert packages["ModelPackageSummaryList"] == []
    (notification,) = pipeline.notifications()
    assert "failed" in notification["Subject"]
    assert "validation:accuracy 0.42" in notification["Message"]
    assert "threshold 0.8" in notification["Message"]


@pytest.mark.parametrize(
    ("accuracy", "approved"), [(0.8, True), (0.7999, False)], ids=["at", "just-below"]
)
def test_the_gate_passes_at_exactly_the_threshold(pipeline, accuracy, approved):
    pipeline.upload_dataset()
    execution = pipeline.start()
    pipeline.finish_training(execution, accuracy=accuracy)  # the threshold is 0.8

    result = pipeline.wait(execution)

    assert result["status"] == ("SUCCEEDED" if approved else "FAILED"), result
    packages = pipeline.sagemaker.list_model_packages(ModelPackageGroupName="grocery-classifier")
    assert len(packages["ModelPackageSummaryList"]) == (1 if approved else 0)
    assert pipeline.parameter("model-name") == NO_APPROVED_MODEL
    (notification,) = pipeline.notifications()
    assert f"validation:accuracy {accuracy}" in notification["Message"]


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
    error, cause = sfn_local.fail_sync_job(task, reason)  # what AWS reports for a failed job

    result = pipeline.wait(execution)

    assert result["status"] == "FAILED"
    assert result["cause"] == f"{error}: {cause}"  # States.TaskFailed: {"TrainingJobName": ...
    assert json.loads(cause)["FailureReason"] == reason
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
    assert "VolumeKmsKeyId" not in params["ResourceConfig"]  # NVMe storage: hardware-encrypted
    assert params["HyperParameters"]["mini_batch_size"] == "32"  # not clamped: 500 images


def test_recreating_the_pointer_never_resets_an_approved_model(pipeline):
    # The pipeline moved the pointer (as its PutParameter states do, Overwrite true) ...
    for field, value in (("model-name", "grocery-train-1-0"), ("labels-uri", "s3://a/l.json")):
        pipeline.ssm.put_parameter(
            Name=f"/grocery/approved-model/{field}", Value=value, Type="String", Overwrite=True
        )

    # ... then CloudFormation replays the custom resources' calls (a re-create or an update).
    created = custom_resources.run_sdk_calls(pipeline.training_template, "Create")
    updated = custom_resources.run_sdk_calls(pipeline.training_template, "Update")

    assert len(created) == 4  # the approved-model pointer and the release record
    assert updated == []
    assert pipeline.parameter("model-name") == "grocery-train-1-0"
    assert pipeline.parameter("labels-uri") == "s3://a/l.json"


def test_with_the_test_gate_the_version_carries_the_test_report(gated_pipeline):
    from tests.e2e.test_training_evaluation import GOOD, _run_gated

    described, job, *_ = _run_gated(gated_pipeline, GOOD)

    assert described["status"] == "SUCCEEDED", described
    (summary,) = gated_pipeline.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)[
        "ModelPackageSummaryList"
    ]
    package = gated_pipeline.sagemaker.describe_model_package(
        ModelPackageName=summary["ModelPackageArn"]
    )
    report = f"s3://{ARTIFACTS_BUCKET}/training-jobs/{job}/evaluation.json"
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["test_accuracy"], metadata["test_report"]) == ("0.75", report)
    metrics = json.loads(
        gated_pipeline.s3.get_object(
            Bucket=ARTIFACTS_BUCKET, Key=f"training-jobs/{job}/metrics.json"
        )["Body"].read()
    )
    assert metrics["test"] == {"accuracy": 0.75, "images": 4, "threshold": 0.75, "report": report}


def test_a_second_training_while_one_runs_is_refused_and_notified(pipeline):
    pipeline.upload_dataset()
    first = pipeline.start()
    task = sfn_local.wait_for_task_token(pipeline.sfn, first, "createTrainingJob")

    second = pipeline.start()
    refused = pipeline.wait(second)

    assert refused["status"] == "FAILED"
    assert refused["cause"].startswith(
        f"TrainingAlreadyRunning: execution {first} is running; wait for it or stop it with "
        f"`aws stepfunctions stop-execution --execution-arn {first}`"
    )
    states = sfn_local.state_sequence(pipeline.sfn, second)
    assert "Read manifest" not in states  # refused before anything else
    assert states[-3:] == ["Training already running", "Notify failure", "Failed"]
    (notification,) = pipeline.notifications()
    assert "TrainingAlreadyRunning" in notification["Message"]
    # The running one is untouched and finishes as usual.
    pipeline.sfn.send_task_success(
        taskToken=task.token,
        output=json.dumps({"TrainingJobName": task.parameters["TrainingJobName"]}),
    )
    finished = pipeline.wait(first)
    assert finished["cause"].startswith("AccuracyMissing:")  # that answer had no metrics
