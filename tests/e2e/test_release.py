"""Train -> register -> approve -> released, end to end in moto.

The REAL training and release state machine definitions run in moto in one world (the
training pipeline of conftest.py). Faked, test-only: the GPU training task (conftest.py)
and CloudFormation's update of the serving stack (tests/support/serving_stack_fake.py:
moto does not re-read SSM-typed parameters on UpdateStack and has no UpdateEndpoint).
The release in the other serving modes: test_release_modes.py.
The approval itself is the real UpdateModelPackage; the EventBridge event it causes is
handed to the release state machine as EventBridge would deliver it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template

from stacks.names import NO_APPROVED_MODEL, approved_model_parameter, release_parameter
from tests.e2e.conftest import ARTIFACTS_BUCKET, MODEL_ROLE, PACKAGE_GROUP
from tests.support import sfn_local
from tests.support.mode_apps import mode_app
from tests.support.serving_stack_fake import FakeServingStack, cloudformation_answered_by

DEPLOY_ROLE = f"arn:aws:iam::{sfn_local.ACCOUNT}:role/release-deploy"
EVENT = "SageMaker Model Package State Change"


SMOKE_FUNCTION = f"arn:aws:lambda:{sfn_local.REGION}:{sfn_local.ACCOUNT}:function:release-smoke"


@functools.cache
def _release_template(mode: str = "realtime") -> tuple[dict[str, Any], dict[str, Any]]:
    stacks = mode_app(mode)
    template = Template.from_stack(stacks.release).to_json()
    release, storage = stacks.release, stacks.storage
    logical = {
        "deploy_role": release.resolve(
            release.get_logical_id(release.deploy_role.node.default_child)
        ),
        "smoke": release.smoke
        and release.resolve(release.get_logical_id(release.smoke.function.node.default_child)),
        "artifacts": storage.resolve(storage.get_logical_id(storage.artifacts.node.default_child)),
        "topic": storage.resolve(storage.get_logical_id(storage.topic.node.default_child)),
    }
    storage_outputs = Template.from_stack(storage).to_json()["Outputs"].values()
    exports = {
        json.dumps(o["Value"]): o["Export"]["Name"] for o in storage_outputs if "Export" in o
    }
    logical["exports"] = {
        name: exports[json.dumps({"Ref": logical[name]})] for name in ("artifacts", "topic")
    }
    return template, logical


class Release:
    """The release state machine beside the training pipeline, and the fake serving stack."""

    def __init__(
        self,
        pipeline,
        fake: FakeServingStack,
        *,
        stack_wait_seconds: int = 0,
        mode: str = "realtime",
    ) -> None:
        self.pipeline, self.fake = pipeline, fake
        self.sfn, self.ssm, self.sagemaker = pipeline.sfn, pipeline.ssm, pipeline.sagemaker
        template, logical = _release_template(mode)
        (topic_arn,) = [t["TopicArn"] for t in boto3.client("sns").list_topics()["Topics"]]
        exports = {
            logical["exports"]["artifacts"]: ARTIFACTS_BUCKET,
            logical["exports"]["topic"]: topic_arn,
            f"{logical['deploy_role']}.Arn": DEPLOY_ROLE,
        }
        if logical["smoke"]:
            exports[f"{logical['smoke']}.Arn"] = SMOKE_FUNCTION
        self.definition = sfn_local.render_definition(template, values=exports)
        # Test-only: the polls wait 0 s (the fake answers at once; moto waits for real), or
        # `stack_wait_seconds` for the stack, to keep a release running while another starts
        # (which then asks once a second whether it is the oldest).
        for name, state in self.definition["States"].items():
            if state["Type"] == "Wait":
                state["Seconds"] = (
                    stack_wait_seconds
                    if name == "Wait for the stack"
                    else min(1, stack_wait_seconds)
                )
        self.arn = sfn_local.create_state_machine(self.sfn, self.definition, name="release")

    def train(self, accuracy: float = 0.9) -> int:
        """One training run that passes the gate; returns the registered version."""
        self.pipeline.upload_dataset()
        execution = self.pipeline.start()
        self.pipeline.finish_training(execution, accuracy=accuracy)
        result = self.pipeline.wait(execution)
        assert result["status"] == "SUCCEEDED", result
        return int(result["output_json"]["model_package"]["version"])

    def package(self, version: int) -> dict[str, Any]:
        (summary,) = [
            s
            for s in self.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)[
                "ModelPackageSummaryList"
            ]
            if s["ModelPackageVersion"] == version
        ]
        return self.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])

    def decide(self, version: int, status: str) -> dict[str, Any]:
        """UpdateModelPackage (CLI or Studio), then the event EventBridge delivers; waits."""
        execution = self.start_decision(version, status)
        return sfn_local.wait_for_execution(self.sfn, execution, timeout=60)

    def start_decision(self, version: int, status: str) -> str:
        """As `decide`, without waiting: returns the release execution's ARN."""
        package = self.package(version)
        self.sagemaker.update_model_package(
            ModelPackageArn=package["ModelPackageArn"],
            ModelApprovalStatus=status,
            # moto 5.2.5 drops the metadata on an update that does not repeat it (AWS keeps it).
            CustomerMetadataProperties=package["CustomerMetadataProperties"],
        )
        event = {
            "version": "0",
            "source": "aws.sagemaker",
            "detail-type": EVENT,
            "detail": {
                "ModelPackageGroupName": PACKAGE_GROUP,
                "ModelPackageArn": package["ModelPackageArn"],
                "ModelPackageVersion": version,
                "ModelApprovalStatus": status,
            },
        }
        return sfn_local.start_execution(self.sfn, self.arn, event)

    def record(self) -> str:
        name = release_parameter("grocery", "model-package-arn")
        return self.ssm.get_parameter(Name=name)["Parameter"]["Value"]

    def pointer(self, field: str) -> str:
        name = approved_model_parameter("grocery", field)
        return self.ssm.get_parameter(Name=name)["Parameter"]["Value"]

    def served_model(self) -> str:
        endpoint = self.sagemaker.describe_endpoint(EndpointName="grocery-classifier")
        config = self.sagemaker.describe_endpoint_config(
            EndpointConfigName=endpoint["EndpointConfigName"]
        )
        return config["ProductionVariants"][0]["ModelName"]


@pytest.fixture
def release(pipeline):
    fake = FakeServingStack(stack_name="Grocery-Serving", prefix="grocery", model_role=MODEL_ROLE)
    with cloudformation_answered_by(fake):
        yield Release(pipeline, fake)


def _release_messages(pipeline) -> list[dict[str, str]]:
    """The release notifications among those delivered (training ones are left out)."""
    return [m for m in pipeline.notifications() if "release" in m["Subject"]]


def test_train_register_approve_release(release):
    version = release.train()
    assert release.package(version)["ModelApprovalStatus"] == "PendingManualApproval"
    assert release.record() == NO_APPROVED_MODEL

    result = release.decide(version, "Approved")

    assert result["status"] == "SUCCEEDED", result
    package = release.package(version)
    assert release.record() == package["ModelPackageArn"]
    assert release.served_model() == "grocery-classifier-v1"
    model = release.sagemaker.describe_model(ModelName="grocery-classifier-v1")
    assert model["PrimaryContainer"]["ModelPackageName"] == package["ModelPackageArn"]
    # Batch follows the released model.
    assert release.pointer("model-name") == "grocery-classifier-v1"
    labels = package["CustomerMetadataProperties"]["labels_uri"]
    assert release.pointer("labels-uri") == labels
    (update,) = release.fake.updates
    assert update["UsePreviousTemplate"] is True
    assert update["RoleARN"] == DEPLOY_ROLE
    assert all(p["UsePreviousValue"] is True for p in update["Parameters"])
    assert {p["ParameterKey"] for p in update["Parameters"]} >= {
        "ReleasedModelPackageArn",
        "ReleasedLabelsUri",
        "BootstrapVersion",
    }
    (notification,) = _release_messages(release.pipeline)
    assert "model version released" in notification["Subject"]
    assert "Version 1 of grocery-classifier is released" in notification["Message"]
    assert "First release" in notification["Message"]


def test_approving_an_older_version_rolls_back(release):
    first, second = release.train(), release.train()
    assert release.decide(second, "Approved")["status"] == "SUCCEEDED"
    assert release.served_model() == "grocery-classifier-v2"

    result = release.decide(first, "Approved")

    assert result["status"] == "SUCCEEDED", result
    assert release.served_model() == "grocery-classifier-v1"
    assert release.pointer("model-name") == "grocery-classifier-v1"
    assert release.record() == release.package(first)["ModelPackageArn"]
    (last,) = [m for m in _release_messages(release.pipeline) if "Same labels" in m["Message"]]
    assert "Same labels" in last["Message"]


def test_rejecting_the_released_version_releases_the_newest_other_approved(release):
    first, second = release.train(), release.train()
    assert release.decide(first, "Approved")["status"] == "SUCCEEDED"
    assert release.decide(second, "Approved")["status"] == "SUCCEEDED"

    result = release.decide(second, "Rejected")

    assert result["status"] == "SUCCEEDED", result
    assert release.served_model() == "grocery-classifier-v1"
    assert release.pointer("model-name") == "grocery-classifier-v1"


def test_rejecting_a_version_that_is_not_served_changes_nothing(release):
    first, second = release.train(), release.train()
    assert release.decide(first, "Approved")["status"] == "SUCCEEDED"
    updates = len(release.fake.updates)

    result = release.decide(second, "Rejected")

    assert result["status"] == "SUCCEEDED"
    assert len(release.fake.updates) == updates
    assert release.served_model() == "grocery-classifier-v1"


def test_rejecting_the_only_approved_version_keeps_it_serving_and_says_so(release):
    version = release.train()
    assert release.decide(version, "Approved")["status"] == "SUCCEEDED"

    result = release.decide(version, "Rejected")

    assert result["status"] == "FAILED"
    assert result["cause"].startswith("NothingToRollBackTo:")
    assert release.served_model() == "grocery-classifier-v1"
    (last,) = [m for m in _release_messages(release.pipeline) if "failed" in m["Subject"]]
    assert "model release failed" in last["Subject"]


def test_a_failed_release_is_notified_and_the_previous_version_keeps_serving(release):
    first, second = release.train(), release.train()
    assert release.decide(first, "Approved")["status"] == "SUCCEEDED"
    release.fake.fail_next_update = True

    result = release.decide(second, "Approved")

    assert result["status"] == "FAILED"
    assert result["cause"].startswith("ServingStackUpdateFailed: the serving stack ended in ")
    assert "UPDATE_ROLLBACK_COMPLETE" in result["cause"]
    assert release.served_model() == "grocery-classifier-v1"
    # The record and the batch pointer still name version 1.
    assert release.record() == release.package(first)["ModelPackageArn"]
    assert release.pointer("model-name") == "grocery-classifier-v1"
    (last,) = [m for m in _release_messages(release.pipeline) if "failed" in m["Subject"]]
    assert "model release failed" in last["Subject"]
    assert "the previous version keeps serving" in last["Message"]


def test_a_pending_version_is_not_released(release):
    version = release.train()
    result = release.decide(version, "PendingManualApproval")
    assert result["status"] == "SUCCEEDED"
    assert release.fake.updates == []


def test_new_labels_are_released_and_said(release):
    first = release.train()
    assert release.decide(first, "Approved")["status"] == "SUCCEEDED"
    release.pipeline.upload_dataset(
        manifest={"num_classes": 4, "num_training_samples": 20},
        labels=["Golden-Delicious", "Granny-Smith", "Banana", "Kiwi"],
    )
    execution = release.pipeline.start()
    release.pipeline.finish_training(execution, accuracy=0.9)
    assert release.pipeline.wait(execution)["status"] == "SUCCEEDED"
    result = release.decide(2, "Approved")

    assert result["status"] == "SUCCEEDED", result
    assert release.served_model() == "grocery-classifier-v2"
    (notification,) = [
        m for m in _release_messages(release.pipeline) if "Version 2 of" in m["Message"]
    ]
    assert "The labels changed: 3 classes before, 4 now" in notification["Message"]
    assert (
        json.loads(
            release.pipeline.s3.get_object(
                Bucket=ARTIFACTS_BUCKET,
                Key=release.package(2)["CustomerMetadataProperties"]["labels_uri"].split("/", 3)[3],
            )["Body"].read()
        )[-1]
        == "Kiwi"
    )


def test_a_direct_request_releases_an_approved_version_and_refuses_a_pending_one(release):
    """The input `promote` and `models rollback` send: {"ModelPackageArn": ...}."""
    first, second = release.train(), release.train()
    assert release.decide(first, "Approved")["status"] == "SUCCEEDED"
    release.sagemaker.update_model_package(
        ModelPackageArn=release.package(second)["ModelPackageArn"],
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties=release.package(second)["CustomerMetadataProperties"],
    )

    execution = sfn_local.start_execution(
        release.sfn, release.arn, {"ModelPackageArn": release.package(second)["ModelPackageArn"]}
    )
    assert sfn_local.wait_for_execution(release.sfn, execution)["status"] == "SUCCEEDED"
    assert release.served_model() == "grocery-classifier-v2"

    third = release.train()
    execution = sfn_local.start_execution(
        release.sfn, release.arn, {"ModelPackageArn": release.package(third)["ModelPackageArn"]}
    )
    result = sfn_local.wait_for_execution(release.sfn, execution)
    assert result["status"] == "FAILED"
    assert result["cause"].startswith("NotApproved: model package ")
    assert "is PendingManualApproval" in result["cause"]
    assert release.served_model() == "grocery-classifier-v2"


def test_an_event_for_the_version_already_released_changes_nothing(release):
    version = release.train()
    assert release.decide(version, "Approved")["status"] == "SUCCEEDED"
    updates = len(release.fake.updates)
    execution = sfn_local.start_execution(
        release.sfn, release.arn, {"ModelPackageArn": release.package(version)["ModelPackageArn"]}
    )
    assert sfn_local.wait_for_execution(release.sfn, execution)["status"] == "SUCCEEDED"
    assert len(release.fake.updates) == updates


@pytest.fixture
def slow_release(pipeline):
    """A release whose stack update takes 2 s, long enough to start a second one meanwhile."""
    fake = FakeServingStack(stack_name="Grocery-Serving", prefix="grocery", model_role=MODEL_ROLE)
    with cloudformation_answered_by(fake):
        yield Release(pipeline, fake, stack_wait_seconds=2)


def test_a_release_started_while_another_runs_waits_for_it(slow_release):
    release = slow_release
    first, second = release.train(), release.train()

    older = release.start_decision(first, "Approved")
    newer = release.start_decision(second, "Approved")

    older_result = sfn_local.wait_for_execution(release.sfn, older, timeout=60)
    newer_result = sfn_local.wait_for_execution(release.sfn, newer, timeout=60)
    assert older_result["status"] == newer_result["status"] == "SUCCEEDED"
    assert "Wait for the older release" in sfn_local.state_sequence(release.sfn, newer)
    assert "Wait for the older release" not in sfn_local.state_sequence(release.sfn, older)
    # One stack update at a time, in the order the approvals came; the newer one serves.
    assert len(release.fake.updates) == 2
    assert release.served_model() == "grocery-classifier-v2"
    assert release.record() == release.package(second)["ModelPackageArn"]
