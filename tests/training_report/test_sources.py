"""The log reading against moto's CloudWatch Logs, and the fixtures against botocore."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import boto3
import botocore.session
import pytest
from botocore.validate import validate_parameters
from moto import mock_aws

from grocery.training_report import sources
from tests.training_report.recorded import FIXTURES, REGION, output_shape

JOB = "grocery-train-0123456789abcdef0123456789abcdef"

OPERATIONS = {
    "describe_training_job": ("sagemaker", "DescribeTrainingJob"),
    "describe_hyper_parameter_tuning_job": ("sagemaker", "DescribeHyperParameterTuningJob"),
    "list_training_jobs_for_hyper_parameter_tuning_job": (
        "sagemaker",
        "ListTrainingJobsForHyperParameterTuningJob",
    ),
    "list_model_packages": ("sagemaker", "ListModelPackages"),
    "describe_model_package": ("sagemaker", "DescribeModelPackage"),
    "describe_log_streams": ("logs", "DescribeLogStreams"),
    "get_log_events": ("logs", "GetLogEvents"),
    "get_metric_data": ("cloudwatch", "GetMetricData"),
}


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_every_fixture_has_the_shape_of_its_operations_response(path):
    import json

    method = path.name.split(".")[1]
    service, operation = OPERATIONS[method]
    validate_parameters(json.loads(path.read_text()), output_shape(service, operation))


def test_the_log_group_is_the_one_sagemaker_writes():
    assert sources.LOG_GROUP == "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def logs(aws_credentials):
    with mock_aws():
        client = boto3.client("logs", region_name=REGION)
        client.create_log_group(logGroupName=sources.LOG_GROUP)
        yield client


def put(logs, stream: str, messages: list[str]) -> None:
    logs.create_log_stream(logGroupName=sources.LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=sources.LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )


def test_reads_every_page_of_the_first_hosts_streams_oldest_first(logs):
    start = int(time.time())
    put(logs, f"{JOB}/algo-1-{start}", [f"line {i}" for i in range(12_000)])
    put(logs, f"{JOB}/algo-1-{start + 900}", ["resumed"])  # a spot job resumed
    put(logs, f"{JOB}/algo-2-{start}", ["other host"])
    put(logs, f"{JOB}X/algo-1-{start}", ["another job"])

    lines, streams = sources.log_lines(logs, JOB)

    assert streams == [f"{JOB}/algo-1-{start}", f"{JOB}/algo-1-{start + 900}"]
    assert len(lines) == 12_001  # more than one GetLogEvents page (10,000 events at most)
    assert lines[-1].message == "resumed"
    assert lines[0].message == "line 0"


def test_no_streams_and_no_group(logs):
    assert sources.log_lines(logs, JOB) == ([], [])
    logs.delete_log_group(logGroupName=sources.LOG_GROUP)
    assert sources.log_lines(logs, JOB) == ([], [])


def test_another_host_is_used_when_algo_1_logged_nothing():
    names = [f"{JOB}/algo-2-1795857460"]
    assert sources.host_streams(names, JOB) == names


def test_metric_period_follows_cloudwatch_retention():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    ages = [timedelta(hours=1), timedelta(days=20), timedelta(days=100)]
    assert [sources.metric_period(now - age, now) for age in ages] == [60, 300, 3600]


def test_metric_request_is_valid_for_botocore():
    """The GetMetricData request the report sends passes botocore's input validation."""
    model = botocore.session.get_session().get_service_model("cloudwatch")
    sent = {}

    class Recorder:
        def get_metric_data(self, **request):
            sent.update(request)
            return {"MetricDataResults": []}

    start = datetime(2026, 11, 28, 9, 15, tzinfo=UTC)
    series = sources.metric_series(Recorder(), JOB, start, start + timedelta(minutes=10), start)
    assert series == {"train": [], "validation": []}
    validate_parameters(sent, model.operation_model("GetMetricData").input_shape)
    dimensions = [q["MetricStat"]["Metric"]["Dimensions"] for q in sent["MetricDataQueries"]]
    assert dimensions == [[{"Name": "TrainingJobName", "Value": JOB}]] * 2
