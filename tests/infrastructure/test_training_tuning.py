"""Hyperparameter tuning in Grocery-Training (issue 12): the CreateHyperParameterTuningJob
task (validated against botocore), its inputs, the best-job path and the IAM it needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.config import Config
from stacks.training.tuning import parameter_ranges, tuning_job_prefix
from tests.infrastructure.test_training_stack import (
    MODES,
    _by_action,
    _channels,
    _policy_statements,
    _resource_configs,
)
from tests.support.state_machines import (
    iter_states,
    sagemaker_parameter_errors,
    state_machine_definitions,
)

TUNE = "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync"


@pytest.fixture(scope="module")
def template(template_of):
    return template_of("training")


@pytest.fixture(scope="module")
def states(template) -> dict[str, dict[str, Any]]:
    (definition,) = state_machine_definitions(template.to_json()).values()
    return dict(iter_states(definition))


@pytest.fixture(scope="module")
def definition(template):
    (definition,) = state_machine_definitions(template.to_json()).values()
    return definition


def _complete(parameters: dict[str, Any], definition, mode: str, resources: str) -> dict:
    """The Parameters with what earlier states set filled in (as Step Functions would)."""
    complete = json.loads(json.dumps(parameters))
    complete["HyperParameterTuningJobName"] = complete.pop("HyperParameterTuningJobName.$") and (
        "grocery-t-123456789"
    )
    limits = complete["HyperParameterTuningJobConfig"]["ResourceLimits"]
    limits.clear()
    limits.update({"MaxNumberOfTrainingJobs": 12, "MaxParallelTrainingJobs": 2})
    job = complete["TrainingJobDefinition"]
    for key in ("InputDataConfig.$", "ResourceConfig.$", "StaticHyperParameters.$"):
        job.pop(key)
    job["InputDataConfig"] = _channels(definition, mode)
    job["ResourceConfig"] = _resource_configs(definition)[resources]
    job["StaticHyperParameters"] = {"epochs": "30", "num_classes": "81"}
    job["CheckpointConfig"] = {"S3Uri": "s3://artifacts/checkpoints/grocery-t-123456789/"}
    warm = complete.get("WarmStartConfig", {}).get("ParentHyperParameterTuningJobs", [])
    for parent in warm:
        parent["HyperParameterTuningJobName"] = parent.pop("HyperParameterTuningJobName.$")
    return complete


@pytest.mark.parametrize("name", ["Tune", "Tune from earlier run"])
def test_tuning_parameters_match_the_api(states, definition, name):
    parameters = states[name]["Parameters"]
    assert states[name]["Resource"] == TUNE
    for mode in MODES:
        for resources in _resource_configs(definition):
            complete = _complete(parameters, definition, mode, resources)
            errors = sagemaker_parameter_errors("CreateHyperParameterTuningJob", complete)
            assert errors == "", (name, mode, resources)


def test_validation_catches_a_misspelt_tuning_key(states, definition):
    complete = _complete(
        states["Tune"]["Parameters"], definition, "Full training", "Use encrypted instance storage"
    )
    complete["HyperParameterTuningJobConfig"]["Stratgy"] = "Random"
    assert "Stratgy" in sagemaker_parameter_errors("CreateHyperParameterTuningJob", complete)


def test_bayesian_on_validation_accuracy_with_early_stopping_and_spot(states, default_config):
    parameters = states["Tune"]["Parameters"]
    config = parameters["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Maximize",
        "MetricName": "validation:accuracy",
    }
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    assert config["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs.$": "$.tuning.max_jobs",
        "MaxParallelTrainingJobs.$": "$.tuning.max_parallel_jobs",
    }
    assert config["ParameterRanges"] == parameter_ranges(default_config.tuning_ranges)
    job = parameters["TrainingJobDefinition"]
    # The same builder as the single training job (job.py): spot, checkpoints, isolation.
    train = next(
        s for s in states.values() if s.get("Resource", "").endswith("createTrainingJob.sync")
    )
    shared = {
        k: v
        for k, v in train["Parameters"].items()
        if k not in ("TrainingJobName.$", "HyperParameters.$", "Tags", "CheckpointConfig")
    }
    assert {k: job[k] for k in shared} == shared
    assert job["EnableManagedSpotTraining"] is True
    assert job["CheckpointConfig"]["S3Uri.$"].endswith("/checkpoints/{}/', $.tuning_run.name)")
    assert job["StaticHyperParameters.$"] == "$.static_hyperparameters"
    assert "WarmStartConfig" not in parameters
    warm = states["Tune from earlier run"]["Parameters"]["WarmStartConfig"]
    assert warm == {
        "ParentHyperParameterTuningJobs": [
            {"HyperParameterTuningJobName.$": "$.tuning.warm_start_from"}
        ],
        "WarmStartType": "IdenticalDataAndAlgorithm",
    }


def test_ranges_follow_the_config():
    ranges = Config(
        tuning_ranges={
            "optimizer": {"type": "categorical", "values": ["sgd", "adam"]},
            "mini_batch_size": {"type": "integer", "min": 16, "max": 32},
        }
    ).tuning_ranges
    assert parameter_ranges(ranges) == {
        "IntegerParameterRanges": [
            {"Name": "mini_batch_size", "MinValue": "16", "MaxValue": "32", "ScalingType": "Auto"}
        ],
        "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["sgd", "adam"]}],
    }


def test_static_hyperparameters_leave_out_the_tuned_ones(states, default_config):
    collect = states["Collect hyperparameters"]["Parameters"]
    tuned = set(default_config.tuning_ranges)
    assert not tuned & set(collect["configured_static"])
    assert set(collect["configured_static"]) == set(collect["configured"]) - tuned
    merge = states["Merge hyperparameters"]["Parameters"]
    assert merge["static_hyperparameters.$"].startswith(
        "States.JsonMerge(States.JsonMerge(States.JsonMerge($.configured_static, $.mode"
    )
    assert merge["tuning.$"] == "$.tuning"


def test_the_tuning_input_is_checked_with_config_defaults(states, default_config):
    assert states["Read input"]["Parameters"]["defaults"]["tuning"] is False
    assert states["Check initial model"]["Choices"][0]["Next"] == "Check tuning"
    assert states["Tuning limits"]["Parameters"]["defaults"] == {
        "max_jobs": default_config.tuning_max_jobs,
        "max_parallel_jobs": default_config.tuning_max_parallel_jobs,
    }
    check = states["Check tuning limits"]
    assert check["Choices"][0]["Next"] == "Reject tuning"
    assert check["Choices"][1]["Next"] == "Reject tuned hyperparameter"
    assert check["Default"] == "Read manifest"
    assert states["Check tuning"]["Default"] == "Reject tuning"


def test_the_best_training_job_goes_through_the_same_gate(states):
    choice = states["Train or tune?"]
    assert choice["Choices"][0] == {"Variable": "$.tuning", "IsBoolean": True, "Next": "Train"}
    assert choice["Default"] == "Name tuning job"
    assert "States.MathRandom(" in states["Name tuning job"]["Parameters"]["name.$"]
    assert states["Tune"]["Next"] == "Has best training job?"
    describe = states["Describe best training job"]
    assert describe["Parameters"] == {
        "TrainingJobName.$": "$.tuning_job.BestTrainingJob.TrainingJobName"
    }
    assert describe["ResultPath"] == "$.training"  # what "Train" leaves for the gate
    assert (
        sagemaker_parameter_errors(
            "DescribeTrainingJob", {"TrainingJobName": "grocery-t-123456789-001-0a1b2c3d"}
        )
        == ""
    )
    listing = states["List tuning training jobs"]["Parameters"]
    assert (
        sagemaker_parameter_errors(
            "ListTrainingJobsForHyperParameterTuningJob",
            {
                "HyperParameterTuningJobName": "grocery-t-123456789",
                "MaxResults": listing["MaxResults"],
            },
        )
        == ""
    )
    assert states["Note tuning summary"]["Next"] == "Has metrics"
    summary = states["Note tuning summary"]["Parameters"]["tuning_summary.$"]
    assert "/training-jobs/{}/tuning-summary.json'" in summary
    metadata = states["Register model version"]["Parameters"]["CustomerMetadataProperties"]
    assert metadata["tuning_summary.$"] == "$.provenance.tuning_summary"
    assert states["No best training job"]["Parameters"]["Error"] == "TuningFoundNoModel"


def test_the_tuning_job_name_fits_the_api():
    # HyperParameterTuningJobName: at most 32 characters; the longest prefix is 20.
    assert len(tuning_job_prefix("p" * 20)) + len("999999999") <= 32


def test_the_state_machine_may_run_only_its_tuning_jobs(template):
    actions = _by_action(_policy_statements(template, "PipelineRole"))
    for action in (
        "sagemaker:CreateHyperParameterTuningJob",
        "sagemaker:DescribeHyperParameterTuningJob",
        "sagemaker:StopHyperParameterTuningJob",
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    ):
        (statement,) = actions[action]
        assert json.dumps(statement["Resource"]).endswith(
            ':hyper-parameter-tuning-job/grocery-t-*"]]}'
        ), action
    describe = json.dumps([s["Resource"] for s in actions["sagemaker:DescribeTrainingJob"]])
    assert "training-job/grocery-t-*" in describe
    rules = json.dumps([s["Resource"] for s in actions["events:PutRule"]])
    assert "rule/StepFunctionsGetEventsForSageMakerTuningJobsRule" in rules
    puts = json.dumps([s["Resource"] for s in actions["s3:PutObject"]])
    assert "/training-jobs/*/tuning-summary.json" in puts
