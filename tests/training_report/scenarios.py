"""The calls the report makes for each recorded run, queued on the stubbed clients."""

from __future__ import annotations

from botocore.stub import ANY

from grocery.training_report.sources import LOG_GROUP
from tests.training_report.recorded import Stubs, load

JOB = "grocery-train-9b1f0c6e4d2a4f7e8c3b5a1d0e6f2c47"
TUNING = "grocery-tune-1f4e2b7c9a"
TRIALS = tuple(
    f"{TUNING}-{suffix}"
    for suffix in ("001-3c9d2e1a", "002-8f0b6a44", "003-1e7c5d90", "004-a2b4c6d8")
)
BEST = TRIALS[1]  # trial2: the highest validation:accuracy of the run
NOT_FOUND = "Requested resource not found."


def training_job(stubs: Stubs, fixture: str, name: str) -> None:
    stubs.respond("sagemaker", "describe_training_job", fixture, {"TrainingJobName": name})


def job_logs(stubs: Stubs, prefix: str, job: str) -> None:
    """DescribeLogStreams, then GetLogEvents until the same forward token comes back."""
    streams = f"{prefix}.describe_log_streams.json"
    stubs.respond(
        "logs",
        "describe_log_streams",
        streams,
        {"logGroupName": LOG_GROUP, "logStreamNamePrefix": f"{job}/"},
    )
    stream = load(streams, "logs", "DescribeLogStreams")["logStreams"][0]["logStreamName"]
    request = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
    for page in (1, 2, 3):
        fixture = f"{prefix}.get_log_events.{page}.json"
        stubs.respond("logs", "get_log_events", fixture, dict(request))
        request["nextToken"] = load(fixture, "logs", "GetLogEvents")["nextForwardToken"]


def no_logs(stubs: Stubs, job: str, *, group_exists: bool = True) -> None:
    expected = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": f"{job}/"}
    if group_exists:
        stubs.respond("logs", "describe_log_streams", {"logStreams": []}, expected)
    else:
        stubs.error(
            "logs",
            "describe_log_streams",
            "ResourceNotFoundException",
            "The specified log group does not exist.",
            expected,
        )


def metrics(stubs: Stubs, fixture: str | dict, token: str | None = None) -> None:
    expected = {
        "MetricDataQueries": ANY,
        "StartTime": ANY,
        "EndTime": ANY,
        "ScanBy": "TimestampAscending",
    }
    if token:
        expected["NextToken"] = token
    stubs.respond("cloudwatch", "get_metric_data", fixture, expected)


def tuning_run(stubs: Stubs) -> None:
    """DescribeHyperParameterTuningJob, both pages of its training jobs, each one described."""
    stubs.respond(
        "sagemaker",
        "describe_hyper_parameter_tuning_job",
        "tuning.describe_hyper_parameter_tuning_job.json",
        {"HyperParameterTuningJobName": TUNING},
    )
    request = {"HyperParameterTuningJobName": TUNING, "MaxResults": 100}
    for page in (1, 2):
        fixture = f"tuning.list_training_jobs_for_hyper_parameter_tuning_job.{page}.json"
        stubs.respond(
            "sagemaker", "list_training_jobs_for_hyper_parameter_tuning_job", fixture, dict(request)
        )
        token = load(fixture, "sagemaker", "ListTrainingJobsForHyperParameterTuningJob").get(
            "NextToken"
        )
        request["NextToken"] = token
    for index, name in enumerate(TRIALS, start=1):
        training_job(stubs, f"trial{index}.describe_training_job.json", name)


def version_3(stubs: Stubs) -> None:
    stubs.respond(
        "sagemaker",
        "list_model_packages",
        "version.list_model_packages.json",
        {
            "ModelPackageGroupName": "grocery-classifier",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        },
    )
    stubs.respond(
        "sagemaker",
        "describe_model_package",
        "version.describe_model_package.json",
        {"ModelPackageName": ANY},
    )
