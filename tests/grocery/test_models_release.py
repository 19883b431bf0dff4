"""`models approve|reject` follow the release their approval event starts (moto).

moto has no EventBridge delivery: the test's `sleep` plays EventBridge, starting the
release state machine with the event as input after the CLI changed the status.
"""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from grocery.errors import CommandError
from grocery.models import run_update
from tests.grocery.test_models import GROUP, register
from tests.support import sfn_local
from tests.support.release_stand_in import FAILS, NOTHING_TO_RELEASE, release_stack, releases

EVENT = "SageMaker Model Package State Change"


@pytest.fixture
def session(aws_credentials):
    with mock_aws(config=sfn_local.MOTO_CONFIG):
        session = boto3.Session(region_name="us-east-1")
        sagemaker = session.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        register(sagemaker, "grocery-train-a", accuracy="0.86", status="Approved")
        register(sagemaker, "grocery-train-b", accuracy="0.9", status="PendingManualApproval")
        yield session


def _args(version: int, status: str) -> argparse.Namespace:
    return argparse.Namespace(
        prefix="grocery", version=version, status=status, reason="", no_wait=False
    )


class EventBridge:
    """`sleep` of the CLI: on its first call, delivers the approval event of the version."""

    def __init__(self, session, machine: str, version: int, status: str, *, deliver=True):
        self.sfn, self.machine = session.client("stepfunctions"), machine
        self.session, self.version, self.status, self.deliver = session, version, status, deliver
        self.sleeps = 0
        self.clock = datetime.now(UTC)

    def now(self) -> datetime:
        return self.clock

    def __call__(self, seconds: float) -> None:
        self.sleeps += 1
        self.clock += timedelta(seconds=seconds)
        if self.deliver and self.sleeps == 1:
            sagemaker = self.session.client("sagemaker")
            (package,) = [
                p
                for p in sagemaker.list_model_packages(ModelPackageGroupName=GROUP)[
                    "ModelPackageSummaryList"
                ]
                if p["ModelPackageVersion"] == self.version
            ]
            event = {
                "source": "aws.sagemaker",
                "detail-type": EVENT,
                "detail": {
                    "ModelPackageGroupName": GROUP,
                    "ModelPackageArn": package["ModelPackageArn"],
                    "ModelApprovalStatus": self.status,
                },
            }
            sfn_local.start_execution(self.sfn, self.machine, event)


def _run(session, events: EventBridge, version: int, status: str) -> str:
    out = io.StringIO()
    code = run_update(
        _args(version, status), session=session, out=out, now=events.now, sleep=events
    )
    assert code == 0
    return out.getvalue()


def test_approve_waits_for_the_release_and_prints_its_result(session):
    machine = release_stack(session, releases(2))
    # An older release of another version is not mistaken for this one.
    sfn_local.start_execution(session.client("stepfunctions"), machine, {"ModelPackageArn": "x"})
    events = EventBridge(session, machine, 2, "Approved")

    text = _run(session, events, 2, "Approved")

    assert text.startswith("version 2: PendingManualApproval -> Approved\nrelease started: ")
    assert "released version 2: the endpoint and batch serve grocery-classifier-v2" in text
    assert "Same labels as the version it replaces." in text


def test_rejecting_a_version_that_is_not_served_says_nothing_changed(session):
    machine = release_stack(session, NOTHING_TO_RELEASE)
    text = _run(session, EventBridge(session, machine, 2, "Rejected"), 2, "Rejected")
    assert text.rstrip().endswith("nothing to release: what is served stays as it was")


def test_a_failed_release_exits_1_with_its_cause(session):
    machine = release_stack(session, FAILS)
    events = EventBridge(session, machine, 2, "Approved")
    with pytest.raises(CommandError, match="release failed: EndpointNotServing: x") as error:
        _run(session, events, 2, "Approved")
    assert error.value.exit_code == 1


def test_no_release_within_three_minutes_says_what_to_check(session):
    machine = release_stack(session, releases(2))
    events = EventBridge(session, machine, 2, "Approved", deliver=False)
    with pytest.raises(CommandError, match="no release started within 3 minutes") as error:
        _run(session, events, 2, "Approved")
    assert "python -m grocery promote --prefix grocery" in str(error.value)
    assert error.value.exit_code == 1
    # The status change itself stays made.
    sagemaker = session.client("sagemaker")
    statuses = {
        p["ModelPackageVersion"]: p["ModelApprovalStatus"]
        for p in sagemaker.list_model_packages(ModelPackageGroupName=GROUP)[
            "ModelPackageSummaryList"
        ]
    }
    assert statuses[2] == "Approved"
