"""The AWS reads of the training report: SageMaker jobs, their log lines and their metrics.

Each function returns None (or an empty list) for "does not exist", so that the report can
say what is missing and still write the rest; every other AWS error is raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from grocery.aws import error_code

# SageMaker writes a training job's stdout/stderr to this group; the SageMaker Python SDK
# (session.py, logs_for_job) lists a job's streams with logStreamNamePrefix=`<job>/`, as does
# AWS's notebook that reads the image-classification algorithm's `Validation-accuracy=` lines
# (amazon-sagemaker-examples, ground_truth_demo_image_classification.ipynb). The streams are
# named `<job>/algo-<n>-<epoch seconds>` (one per instance and container start); that name
# pattern is not in the AWS guides, so any other name under `<job>/` is read too.
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# SageMaker publishes the algorithm's metrics (train:accuracy, validation:accuracy) to
# CloudWatch (https://docs.aws.amazon.com/sagemaker/latest/dg/training-metrics.html); the
# SageMaker Python SDK reads them from this namespace with the dimension TrainingJobName
# (analytics.py, TrainingJobAnalytics._fetch_metric). Host=<job>/algo-1 is the dimension of
# the instance metrics (CPUUtilization, GPUUtilization, ...), not of these.
METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"
METRICS = {"train": "train:accuracy", "validation": "validation:accuracy"}
FIRST_HOST = "algo-1"
_MAX_PAGES = 1000  # a guard: a 30-epoch run has a few pages per stream


def _not_found(error: ClientError) -> bool:
    """DescribeTrainingJob answers ValidationException "Requested resource not found." for an
    unknown name (not ResourceNotFound: https://github.com/aws/aws-sdk/issues/165)."""
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "").lower()
    return code in ("ResourceNotFound", "ResourceNotFoundException") or (
        code == "ValidationException" and "not found" in message
    )


def training_job(sagemaker, name: str) -> dict[str, Any] | None:
    try:
        return sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError as error:
        if _not_found(error):
            return None
        raise


def tuning_job(sagemaker, name: str) -> dict[str, Any] | None:
    try:
        return sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    except ClientError as error:
        if _not_found(error):
            return None
        raise


def tuning_job_name(arn: str) -> str:
    """`arn:aws:sagemaker:<region>:<account>:hyper-parameter-tuning-job/<name>` -> `<name>`."""
    return arn.rsplit("/", 1)[-1]


def tuning_training_jobs(sagemaker, name: str) -> list[dict[str, Any]]:
    """Every TrainingJobSummary of a tuning job (ListTrainingJobsForHyperParameterTuningJob)."""
    summaries: list[dict[str, Any]] = []
    request: dict[str, Any] = {"HyperParameterTuningJobName": name, "MaxResults": 100}
    for _ in range(_MAX_PAGES):
        page = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**request)
        summaries.extend(page.get("TrainingJobSummaries", []))
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    return summaries


@dataclass(frozen=True)
class LogLine:
    stream: str
    timestamp: int  # milliseconds since the epoch, as CloudWatch Logs stores it
    message: str


def _streams(logs, job: str) -> list[str]:
    names: list[str] = []
    request: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": f"{job}/"}
    for _ in range(_MAX_PAGES):
        page = logs.describe_log_streams(**request)
        names.extend(s["logStreamName"] for s in page.get("logStreams", []))
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    return sorted(names)


def host_streams(names: list[str], job: str) -> list[str]:
    """The first instance's streams, oldest first: in distributed training every host logs its
    own epochs, and a spot job resumed from its checkpoint starts a new stream for algo-1."""
    first = [n for n in names if n.startswith(f"{job}/{FIRST_HOST}-")]
    return first or names


def _events(logs, stream: str) -> Iterator[LogLine]:
    request: dict[str, Any] = {
        "logGroupName": LOG_GROUP,
        "logStreamName": stream,
        "startFromHead": True,
    }
    for _ in range(_MAX_PAGES):
        page = logs.get_log_events(**request)
        for event in page.get("events", []):
            yield LogLine(stream, int(event.get("timestamp", 0)), event.get("message", ""))
        token = page.get("nextForwardToken")
        # GetLogEvents returns the token it was given once the end of the stream is reached.
        if not token or token == request.get("nextToken"):
            return
        request["nextToken"] = token


def log_lines(logs, job: str) -> tuple[list[LogLine], list[str]]:
    """The job's log lines (first host, oldest stream first) and the streams they came from.
    ([], []) when the log group or the job's streams do not exist."""
    try:
        streams = host_streams(_streams(logs, job), job)
        return [line for stream in streams for line in _events(logs, stream)], streams
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":  # no group before the first job
            return [], []
        raise


def metric_period(start: datetime, now: datetime) -> int:
    """The finest period CloudWatch still keeps for data that old: 60 s for 15 days, 300 s for
    63 days, then 3600 s (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/
    API_MetricStat.html)."""
    age_days = (now - start).total_seconds() / 86400
    return 60 if age_days < 15 else 300 if age_days < 63 else 3600


def metric_series(
    cloudwatch, job: str, start: datetime, end: datetime, now: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    """train/validation accuracy data points of the job in time order (GetMetricData)."""
    period = metric_period(start, now)
    queries = [
        {
            "Id": key,
            "MetricStat": {
                "Metric": {
                    "Namespace": METRIC_NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": "TrainingJobName", "Value": job}],
                },
                "Period": period,
                "Stat": "Average",
            },
            "ReturnData": True,
        }
        for key, metric in METRICS.items()
    ]
    request: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    series: dict[str, list[tuple[datetime, float]]] = {key: [] for key in METRICS}
    for _ in range(_MAX_PAGES):
        page = cloudwatch.get_metric_data(**request)
        for result in page.get("MetricDataResults", []):
            points = zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
            series.setdefault(result["Id"], []).extend(points)
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    return {key: sorted(points) for key, points in series.items()}
