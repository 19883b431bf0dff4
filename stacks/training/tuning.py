"""Hyperparameter tuning: one SageMaker tuning job instead of one training job, its best
training job then going through the same gate and registration.

"Train or tune?" -> "Train" (job.py) | "Name tuning job" -> "Warm start?" -> "Tune" |
"Tune from earlier run" (createHyperParameterTuningJob.sync) -> "Has best training job?"
-> "Describe best training job" (`$.training`, what "Train" returns) -> "List tuning
training jobs" -> "Write tuning summary" (training-jobs/<best job>/tuning-summary.json) ->
"Note tuning summary" (provenance.tuning_summary) -> the gate.

The training job definition is job.py's `job_definition` (the one builder both share);
the tuned hyperparameters are left out of StaticHyperParameters.
CreateHyperParameterTuningJob:
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html
Tunable hyperparameters and ranges: https://docs.aws.amazon.com/sagemaker/latest/dg/IC-tuning.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from stacks.config import Config
from stacks.training.common import THROTTLING, Resources, Stage, retry_throttling
from stacks.training.job import job_definition, tags, training_timeout
from stacks.training.names import CHECKPOINTS_PREFIX, TRAINING_JOBS_PREFIX

OBJECTIVE = "validation:accuracy"
SUMMARY_FILE = "tuning-summary.json"
# HyperParameterTuningJobName: at most 32 characters. `<prefix>-t-<9 digits>` fits the
# longest prefix (20); its training jobs are named `<tuning job>-<NNN>-<8 hex>`.
RANDOM_DIGITS = (100_000_000, 999_999_999)
# ListTrainingJobsForHyperParameterTuningJob returns at most 100 a page; a run has at most
# tuning_max_jobs (<= 100, stacks/training/training_config.py) jobs: one page.
LIST_MAX_RESULTS = 100


def tuning_job_prefix(prefix: str) -> str:
    """Tuning jobs, and the training jobs they start, begin with this."""
    return f"{prefix}-t-"


def parameter_ranges(ranges: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict]]:
    """ParameterRanges from config `tuning_ranges` (values are strings in the API)."""
    result: dict[str, list[dict]] = {
        "ContinuousParameterRanges": [],
        "IntegerParameterRanges": [],
        "CategoricalParameterRanges": [],
    }
    for name, spec in sorted(ranges.items()):
        if spec["type"] == "categorical":
            result["CategoricalParameterRanges"].append(
                {"Name": name, "Values": [str(v) for v in spec["values"]]}
            )
            continue
        entry = {
            "Name": name,
            "MinValue": str(spec["min"]),
            "MaxValue": str(spec["max"]),
            "ScalingType": spec.get("scaling", "Auto"),
        }
        key = "IntegerParameterRanges" if spec["type"] == "integer" else "ContinuousParameterRanges"
        result[key].append(entry)
    return {key: value for key, value in result.items() if value}


def tuning_parameters(config: Config, res: Resources, *, warm_start: bool) -> dict:
    """CreateHyperParameterTuningJob's Parameters (`$.tuning` holds the run's limits)."""
    artifacts = res.artifacts.bucket_name
    # One prefix per tuning run; SageMaker keeps each training job's checkpoints apart.
    checkpoints = f"States.Format('s3://{artifacts}/{CHECKPOINTS_PREFIX}{{}}/', $.tuning_run.name)"
    definition = job_definition(config, res, checkpoint_uri=checkpoints)
    definition["StaticHyperParameters.$"] = "$.static_hyperparameters"
    parameters = {
        "HyperParameterTuningJobName.$": "$.tuning_run.name",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": OBJECTIVE},
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs.$": "$.tuning.max_jobs",
                "MaxParallelTrainingJobs.$": "$.tuning.max_parallel_jobs",
            },
            "ParameterRanges": parameter_ranges(config.tuning_ranges),
            # Stops training jobs that are unlikely to beat the best so far.
            "TrainingJobEarlyStoppingType": "Auto",
        },
        "TrainingJobDefinition": definition,
        "Tags": tags(),
    }
    if warm_start:
        parameters["WarmStartConfig"] = {
            "ParentHyperParameterTuningJobs": [
                {"HyperParameterTuningJobName.$": "$.tuning.warm_start_from"}
            ],
            # Same data and algorithm, ranges may differ.
            "WarmStartType": "IdenticalDataAndAlgorithm",
        }
    return parameters


def tuning_timeout(config: Config) -> Duration:
    """Every job may run to its own limit, max_parallel at a time: bounded by Step
    Functions' own limit instead (a standard execution lasts at most a year)."""
    return Duration.seconds(Duration.days(7).to_seconds() + training_timeout(config).to_seconds())


def train_or_tune(stage: Stage, train: sfn.IChainable, then: sfn.IChainable) -> sfn.Choice:
    """`$.tuning` false: one training job (`train`); else a tuning run, then `then`."""
    return (
        sfn.Choice(stage.scope, "Train or tune?")
        .when(sfn.Condition.is_boolean("$.tuning"), train)
        .otherwise(_tune(stage, then))
    )


def _tune_state(stage: Stage, name: str, *, warm_start: bool) -> sfn.CustomState:
    state = sfn.CustomState(
        stage.scope,
        name,
        state_json={
            "Type": "Task",
            "Comment": f"Bayesian tuning of {OBJECTIVE}; waits for the tuning job (.sync)",
            "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createHyperParameterTuningJob.sync",
            "Parameters": tuning_parameters(stage.config, stage.res, warm_start=warm_start),
            "TimeoutSeconds": int(tuning_timeout(stage.config).to_seconds()),
            "ResultPath": "$.tuning_job",
        },
    )
    state.add_retry(
        errors=["ThrottlingException", *THROTTLING["sagemaker"]],
        interval=Duration.seconds(5),
        backoff_rate=2.0,
        max_attempts=3,
        jitter_strategy=sfn.JitterType.FULL,
    )
    stage.catch(state)
    return state


def _tune(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    scope, prefix = stage.scope, stage.config.prefix
    name = sfn.Pass(
        scope,
        "Name tuning job",
        comment="Once per execution: the checkpoint prefix and every retry use it",
        parameters={
            "name.$": f"States.Format('{tuning_job_prefix(prefix)}{{}}', "
            f"States.MathRandom({RANDOM_DIGITS[0]}, {RANDOM_DIGITS[1]}))"
        },
        result_path="$.tuning_run",
    )
    after = _after_tuning(stage, then)
    tune = _tune_state(stage, "Tune", warm_start=False).next(after)
    warm = _tune_state(stage, "Tune from earlier run", warm_start=True).next(after)
    choose = (
        sfn.Choice(scope, "Warm start?")
        .when(sfn.Condition.is_present("$.tuning.warm_start_from"), warm)
        .otherwise(tune)
    )
    return name.next(choose)


def _after_tuning(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    scope, res = stage.scope, stage.res
    stack = Stack.of(scope)
    jobs_prefix = tuning_job_prefix(stage.config.prefix)
    best = "$.tuning_job.BestTrainingJob.TrainingJobName"
    no_best = stage.fail(
        "No best training job",
        "TuningFoundNoModel",
        sfn.JsonPath.format(
            "tuning job {} ended without a best training job (every training job failed or "
            "was stopped): nothing was registered; see its training jobs in the console.",
            sfn.JsonPath.string_at("$.tuning_run.name"),
        ),
    )
    describe = tasks.CallAwsService(
        scope,
        "Describe best training job",
        service="sagemaker",
        action="describeTrainingJob",
        parameters={"TrainingJobName": sfn.JsonPath.string_at(best)},
        iam_action="sagemaker:DescribeTrainingJob",
        iam_resources=[
            stack.format_arn(
                service="sagemaker", resource="training-job", resource_name=f"{jobs_prefix}*"
            )
        ],
        result_path="$.training",
    )
    listing = tasks.CallAwsService(
        scope,
        "List tuning training jobs",
        service="sagemaker",
        action="listTrainingJobsForHyperParameterTuningJob",
        parameters={
            "HyperParameterTuningJobName": sfn.JsonPath.string_at("$.tuning_run.name"),
            "MaxResults": LIST_MAX_RESULTS,
        },
        iam_action="sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        iam_resources=[
            stack.format_arn(
                service="sagemaker",
                resource="hyper-parameter-tuning-job",
                resource_name=f"{jobs_prefix}*",
            )
        ],
        result_selector={"jobs": sfn.JsonPath.list_at("$.TrainingJobSummaries")},
        result_path="$.tuning_jobs",
    )
    artifacts = res.artifacts
    key = sfn.JsonPath.format(
        f"{TRAINING_JOBS_PREFIX}{{}}/{SUMMARY_FILE}", sfn.JsonPath.string_at(best)
    )
    write = tasks.CallAwsService(
        scope,
        "Write tuning summary",
        service="s3",
        action="putObject",
        parameters={
            "Bucket": artifacts.bucket_name,
            "Key": key,
            "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.tuning_summary")),
            "ContentType": "application/json",
        },
        iam_action="s3:PutObject",
        iam_resources=[artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/{SUMMARY_FILE}")],
        result_path=sfn.JsonPath.DISCARD,
    )
    collect = sfn.Pass(
        scope,
        "Collect tuning summary",
        comment="Every training job of the run: tuned hyperparameters, objective, status",
        parameters={
            "tuning_job": sfn.JsonPath.string_at("$.tuning_run.name"),
            "strategy": "Bayesian",
            "objective": {"metric": OBJECTIVE, "type": "Maximize"},
            "best_training_job": sfn.JsonPath.string_at(best),
            "training_jobs": sfn.JsonPath.list_at("$.tuning_jobs.jobs"),
        },
        result_path="$.tuning_summary",
    )
    note = sfn.Pass(
        scope,
        "Note tuning summary",
        parameters={
            "trained_from_version": sfn.JsonPath.string_at("$.provenance.trained_from_version"),
            "tuning_summary": sfn.JsonPath.format(
                f"s3://{artifacts.bucket_name}/{TRAINING_JOBS_PREFIX}{{}}/{SUMMARY_FILE}",
                sfn.JsonPath.string_at(best),
            ),
        },
        result_path="$.provenance",
    )
    for state in (describe, listing, write):
        retry_throttling(state, "s3" if state is write else "sagemaker")
        stage.catch(state)
    chain = describe.next(listing).next(collect).next(write).next(note).next(then)
    return (
        sfn.Choice(scope, "Has best training job?")
        .when(sfn.Condition.is_present(best), chain)
        .otherwise(no_best)
    )


def nag_findings(prefix: str, artifacts) -> list[tuple[str, object, str]]:
    """(resource pattern, the construct "{}" stands for or None, reason) of the tuning
    grants' IAM5 wildcards, for the training stack's acknowledgments."""
    sagemaker = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
    jobs = tuning_job_prefix(prefix)
    return [
        (
            f"{sagemaker}:hyper-parameter-tuning-job/{jobs}*",
            None,
            "tuning jobs are named per execution (a random number), so only the pipeline's "
            "name prefix can scope them",
        ),
        (
            f"{sagemaker}:training-job/{jobs}*",
            None,
            "a tuning job names its training jobs <tuning job>-<n>-<id>; DescribeTrainingJob "
            "of the best one only, within the pipeline's tuning prefix",
        ),
        (
            f"{sagemaker}:model/{jobs}*",
            None,
            "with the test gate: the temporary Model of a tuning run's best job, named after "
            "it; created and deleted within the pipeline's tuning prefix only",
        ),
        (
            f"{sagemaker}:transform-job/{jobs}*",
            None,
            "with the test gate: the transform job of a tuning run's best job, named after "
            "its Model; within the pipeline's tuning prefix",
        ),
        (
            f"{{}}/{TRAINING_JOBS_PREFIX}*/{SUMMARY_FILE}",
            artifacts,
            "the tuning summary is written beside the best job's artifact; nothing else",
        ),
    ]
