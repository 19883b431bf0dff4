"""Hyperparameter tuning (issue 12) in the REAL training definition, executed in moto:
tune -> best training job -> the same gate -> registration with the tuning summary.

moto runs no `.sync` (sfn_local rewrites createHyperParameterTuningJob.sync to a callback
that this test answers as the tuning job's Describe output), and has neither the tuning
job's training jobs nor ListTrainingJobsForHyperParameterTuningJob: `sagemaker_jobs`
answers DescribeTrainingJob and that list from a table, in the API's shapes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.core.responses import ActionResult
from moto.sagemaker.responses import SageMakerResponse

from tests.e2e.conftest import ARTIFACTS_BUCKET, DATASET, PACKAGE_GROUP
from tests.support import sfn_local

BEST = "grocery-t-000000001-003-0a1b2c3d"


def _job(name: str, status: str, accuracy: float, rate: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "TrainingJobStatus": status,
        "TunedHyperParameters": {"learning_rate": rate, "mini_batch_size": "16"},
        "FinalHyperParameterTuningJobObjectiveMetric": {
            "MetricName": "validation:accuracy",
            "Value": accuracy,
        },
    }


@pytest.fixture
def sagemaker_jobs(monkeypatch):
    """The tuning run's training jobs, as DescribeTrainingJob and the list answer them."""
    table: dict[str, list[dict[str, Any]]] = {"jobs": []}

    def describe(self) -> ActionResult:
        name = self._get_param("TrainingJobName")
        (job,) = [j for j in table["jobs"] if j["TrainingJobName"] == name]
        accuracy = job["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        return ActionResult(
            {
                "TrainingJobName": name,
                "TrainingJobArn": job["TrainingJobArn"],
                "TuningJobArn": "arn:aws:sagemaker:us-east-1:123456789012:"
                "hyper-parameter-tuning-job/grocery-t-000000001",
                "TrainingJobStatus": job["TrainingJobStatus"],
                "ModelArtifacts": {
                    "S3ModelArtifacts": f"s3://{ARTIFACTS_BUCKET}/training-jobs/{name}/output/"
                    "model.tar.gz"
                },
                "FinalMetricDataList": [{"MetricName": "validation:accuracy", "Value": accuracy}],
            }
        )

    def listing(self) -> ActionResult:
        assert self._get_param("HyperParameterTuningJobName")
        return ActionResult({"TrainingJobSummaries": table["jobs"]})

    monkeypatch.setattr(SageMakerResponse, "describe_training_job", describe)
    monkeypatch.setattr(
        SageMakerResponse,
        "list_training_jobs_for_hyper_parameter_tuning_job",
        listing,
        raising=False,
    )
    return table


def _finish_tuning(pipeline, execution: str, best: str | None) -> sfn_local.ScheduledTask:
    task = sfn_local.wait_for_task_token(pipeline.sfn, execution, "createHyperParameterTuningJob")
    description = {
        "HyperParameterTuningJobName": task.parameters["HyperParameterTuningJobName"],
        "HyperParameterTuningJobStatus": "Completed",
    }
    if best:
        description["BestTrainingJob"] = {"TrainingJobName": best}
    pipeline.sfn.send_task_success(taskToken=task.token, output=json.dumps(description))
    return task


def test_tune_then_the_best_job_is_gated_and_registered_with_the_summary(pipeline, sagemaker_jobs):
    sagemaker_jobs["jobs"] = [
        _job(BEST, "Completed", 0.91, "0.003"),
        _job("grocery-t-000000001-002-9f8e7d6c", "Stopped", 0.55, "0.09"),
    ]
    pipeline.upload_dataset()
    execution = pipeline.start(
        {"dataset": DATASET, "tuning": {"max_jobs": 4}, "hyperparameters": {"epochs": "5"}}
    )
    task = _finish_tuning(pipeline, execution, BEST)

    result = pipeline.wait(execution)

    assert result["status"] == "SUCCEEDED", result
    params = task.parameters
    name = params["HyperParameterTuningJobName"]
    assert name.startswith("grocery-t-")
    assert len(name) == len("grocery-t-") + 9  # <prefix>-t-<9 digits> (States.MathRandom)
    config = params["HyperParameterTuningJobConfig"]
    # max_jobs from the run, max_parallel_jobs from the config (2).
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    job = params["TrainingJobDefinition"]
    static = job["StaticHyperParameters"]
    assert (static["epochs"], static["num_classes"], static["num_training_samples"]) == (
        "5",
        "3",
        "20",
    )
    assert not {"learning_rate", "mini_batch_size", "momentum", "weight_decay"} & set(static)
    assert job["CheckpointConfig"]["S3Uri"] == f"s3://{ARTIFACTS_BUCKET}/checkpoints/{name}/"
    assert job["EnableManagedSpotTraining"] is True
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == [
        "train",
        "validation",
        "train_lst",
        "validation_lst",
    ]
    assert "WarmStartConfig" not in params

    summary_key = f"training-jobs/{BEST}/tuning-summary.json"
    summary = json.loads(
        pipeline.s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=summary_key)["Body"].read()
    )
    assert summary["tuning_job"] == name
    assert summary["best_training_job"] == BEST
    assert summary["objective"] == {"metric": "validation:accuracy", "type": "Maximize"}
    assert [
        (j["TrainingJobName"], j["TrainingJobStatus"], j["TunedHyperParameters"]["learning_rate"])
        for j in summary["training_jobs"]
    ] == [(BEST, "Completed", "0.003"), ("grocery-t-000000001-002-9f8e7d6c", "Stopped", "0.09")]
    (package,) = pipeline.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)[
        "ModelPackageSummaryList"
    ]
    metadata = pipeline.sagemaker.describe_model_package(
        ModelPackageName=package["ModelPackageArn"]
    )["CustomerMetadataProperties"]
    assert metadata["training_job"] == BEST
    assert metadata["validation_accuracy"] == "0.91"
    assert metadata["tuning_summary"] == f"s3://{ARTIFACTS_BUCKET}/{summary_key}"
    assert metadata["trained_from_version"] == "none"
    states = sfn_local.state_sequence(pipeline.sfn, execution)
    assert "Train" not in states
    assert states.index("Describe best training job") < states.index("Check accuracy")


BAD_TUNING = [
    ({"max_jobs": 2, "max_parallel_jobs": 3}, {}, "InvalidInput: tuning must be"),
    ({"max_jobs": "12"}, {}, "InvalidInput: tuning must be"),
    (True, {}, "InvalidInput: tuning must be"),
    ({}, {"learning_rate": "0.1"}, "InvalidInput: hyperparameters learning_rate"),
]


def test_bad_tuning_input_is_refused_before_training(pipeline):
    # Parallel above max, a number as text, not an object, a tuned key set by the run.
    pipeline.upload_dataset()
    for tuning, hyperparameters, cause in BAD_TUNING:
        execution = pipeline.start(
            {"dataset": DATASET, "tuning": tuning, "hyperparameters": hyperparameters}
        )

        result = pipeline.wait(execution)

        assert result["status"] == "FAILED", tuning
        assert result["cause"].startswith(cause), result["cause"]
        assert "Read manifest" not in sfn_local.state_sequence(pipeline.sfn, execution)


def test_a_warm_start_names_the_parent_and_no_best_job_registers_nothing(pipeline, sagemaker_jobs):
    pipeline.upload_dataset()
    execution = pipeline.start(
        {"dataset": DATASET, "tuning": {"warm_start_from": "grocery-t-000000001"}}
    )
    task = _finish_tuning(pipeline, execution, best=None)

    result = pipeline.wait(execution)

    assert task.parameters["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "grocery-t-000000001"}],
        "WarmStartType": "IdenticalDataAndAlgorithm",
    }
    assert result["status"] == "FAILED"
    assert result["cause"].startswith("TuningFoundNoModel: tuning job grocery-t-")
    packages = pipeline.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)
    assert packages["ModelPackageSummaryList"] == []
