"""Billing of a training job from DescribeTrainingJob (recorded) and its formatting."""

from __future__ import annotations

import pytest

from grocery.training_report.cost import billing, dollars, duration, percent
from grocery.training_report.prices import ON_DEMAND_PER_HOUR
from tests.training_report.recorded import load


@pytest.fixture
def job():
    return load("job.describe_training_job.json", "sagemaker", "DescribeTrainingJob")


def test_spot_job(job):
    bill = billing(job)
    assert bill.spot
    assert bill.spot_savings == pytest.approx(
        1 - job["BillableTimeInSeconds"] / job["TrainingTimeInSeconds"]
    )
    assert bill.cost == pytest.approx(job["BillableTimeInSeconds"] / 3600 * 3.825)
    assert bill.wall_seconds == (job["TrainingEndTime"] - job["TrainingStartTime"]).seconds


def test_on_demand_job_on_two_instances(job):
    job.update(EnableManagedSpotTraining=False, BillableTimeInSeconds=job["TrainingTimeInSeconds"])
    job["ResourceConfig"]["InstanceType"] = "ml.g5.xlarge"
    job["ResourceConfig"]["InstanceCount"] = 2
    bill = billing(job)
    assert bill.spot_savings is None
    assert bill.billed_instance_seconds == 2 * job["TrainingTimeInSeconds"]
    assert bill.cost == pytest.approx(2 * job["TrainingTimeInSeconds"] / 3600 * 1.408)


def test_a_job_that_never_started_has_no_times_and_no_cost():
    bill = billing({"ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1}})
    assert (bill.wall_seconds, bill.billed_instance_seconds, bill.cost) == (None, None, None)
    assert bill.spot_savings is None


def test_prices_are_those_of_docs_costs_md():
    with open("docs/costs.md", encoding="utf-8") as costs:
        text = costs.read()
    for instance, price in ON_DEMAND_PER_HOUR.items():
        assert f"{instance} ${price}" in text


def test_formatting():
    assert [duration(s) for s in (None, 42, 588, 3725)] == [
        "-",
        "42 s",
        "9 min 48 s",
        "1 h 2 min 5 s",
    ]
    assert dollars(None) == "-"
    assert dollars(0.187) == "$0.19"
    assert percent(None) == "-"
    assert percent(0.70068) == "70.1 %"
