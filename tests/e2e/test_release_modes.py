"""Train -> approve -> released in serving_mode=serverless and =async, end to end in moto.

The release state machine of the app built with each mode runs in moto beside the training
pipeline (test_release.py has the realtime story). Faked, test-only, as there: the GPU
training task and CloudFormation's update of the serving stack, which builds the endpoint
config of the mode (tests/support/serving_stack_fake.py). Serverless only: the smoke
request's Lambda runs its real handler in process (tests/support/lambda_tasks.py) against
moto's SageMaker Runtime, whose answers are queued through the moto API.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from release_smoke import handler as smoke_handler

from stacks.names import NO_APPROVED_MODEL
from tests.e2e.conftest import MODEL_ROLE
from tests.e2e.test_release import SMOKE_FUNCTION, Release, _release_messages
from tests.support import sfn_local
from tests.support.lambda_tasks import handlers_answer
from tests.support.mode_apps import mode_config
from tests.support.sagemaker_runtime import binary_bodies, queue_answers
from tests.support.serving_stack_fake import FakeServingStack, cloudformation_answered_by

GOOD = json.dumps([0.7, 0.2, 0.1])  # three labels (tests/e2e/conftest.py LABELS)


def _release(pipeline, mode: str):
    fake = FakeServingStack(
        stack_name="Grocery-Serving",
        prefix="grocery",
        model_role=MODEL_ROLE,
        config=mode_config(mode),
    )
    with (
        cloudformation_answered_by(fake),
        binary_bodies() as bodies,
        handlers_answer({SMOKE_FUNCTION: smoke_handler.handler}) as smoke_calls,
    ):
        release = Release(pipeline, fake, mode=mode)
        release.bodies, release.smoke_calls = bodies, smoke_calls
        yield release


@pytest.fixture
def serverless(pipeline):
    yield from _release(pipeline, "serverless")


@pytest.fixture
def async_release(pipeline):
    yield from _release(pipeline, "async")


def _config(release: Release) -> dict:
    endpoint = release.sagemaker.describe_endpoint(EndpointName="grocery-classifier")
    return release.sagemaker.describe_endpoint_config(
        EndpointConfigName=endpoint["EndpointConfigName"]
    )


def test_serverless_release_serves_once_the_smoke_request_answers(serverless):
    version = serverless.train()
    queue_answers(GOOD)

    result = serverless.decide(version, "Approved")

    assert result["status"] == "SUCCEEDED", result
    assert serverless.served_model() == "grocery-classifier-v1"
    config = _config(serverless)
    (variant,) = config["ProductionVariants"]
    # serverless_memory_mb=2048 in MODE_CONTEXTS (tests/support/mode_apps.py), not the default.
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    assert "KmsKeyId" not in config
    # One request: the tiny JPEG, byte for byte, for the three labels of version 1.
    assert serverless.smoke_calls == [{"endpoint_name": "grocery-classifier", "classes": 3}]
    assert serverless.bodies == [smoke_handler.SMOKE_IMAGE.read_bytes()]
    assert serverless.pointer("model-name") == "grocery-classifier-v1"
    (notification,) = _release_messages(serverless.pipeline)
    assert "Version 1 of grocery-classifier is released" in notification["Message"]


def test_a_version_that_cannot_serve_serverless_is_rolled_back_and_said(serverless):
    first, second = serverless.train(), serverless.train()
    queue_answers(GOOD, json.dumps([0.5, 0.5]))
    assert serverless.decide(first, "Approved")["status"] == "SUCCEEDED"

    result = serverless.decide(second, "Approved")

    assert result["status"] == "FAILED"
    assert result["error"] == "ServerlessSmokeFailed"
    assert result["cause"] == (
        "version 2 cannot serve in serverless mode: the model answered 2 probabilities, but "
        "the version has 3 labels; version 1 serves again"
    )
    # The stack was updated to version 2, then again back to version 1.
    assert len(serverless.fake.updates) == 3
    assert serverless.served_model() == "grocery-classifier-v1"
    assert serverless.record() == serverless.package(first)["ModelPackageArn"]
    assert serverless.pointer("model-name") == "grocery-classifier-v1"
    (last,) = [m for m in _release_messages(serverless.pipeline) if "failed" in m["Subject"]]
    assert "serverless smoke request" in last["Subject"]
    assert "version 2 cannot serve in serverless mode" in last["Message"]
    assert "version 1 serves again" in last["Message"]


def test_a_first_release_that_cannot_serve_serverless_removes_the_endpoint(serverless):
    version = serverless.train()
    queue_answers("<html>502 Bad Gateway</html>")

    result = serverless.decide(version, "Approved")

    assert result["status"] == "FAILED"
    assert result["error"] == "ServerlessSmokeFailed"
    assert result["cause"].startswith("version 1 cannot serve in serverless mode: the model's")
    assert result["cause"].endswith(
        "no version serves now: it was the first release, so its endpoint was removed"
    )
    assert serverless.record() == NO_APPROVED_MODEL
    with pytest.raises(ClientError):
        serverless.sagemaker.describe_endpoint(EndpointName="grocery-classifier")
    assert serverless.sagemaker.list_models()["Models"] == []
    assert serverless.pointer("model-name") == NO_APPROVED_MODEL


def test_async_release_serves_without_a_smoke_request(async_release):
    version = async_release.train()

    result = async_release.decide(version, "Approved")

    assert result["status"] == "SUCCEEDED", result
    assert async_release.served_model() == "grocery-classifier-v1"
    config = _config(async_release)
    output = config["AsyncInferenceConfig"]["OutputConfig"]
    assert output["S3OutputPath"] == "s3://grocery-inference/async-output"
    assert output["NotificationConfig"]["SuccessTopic"].endswith(":notifications")
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m4.xlarge"
    assert async_release.smoke_calls == []
    assert "Smoke request" not in sfn_local.state_sequence(
        async_release.sfn, result["executionArn"]
    )


@pytest.mark.parametrize("mode", ["realtime", "serverless", "async"])
def test_the_fake_builds_the_endpoint_config_the_serving_template_declares(mode):
    """The fake's CreateEndpointConfig has the fields of the mode's template, no more."""
    from aws_cdk.assertions import Template

    from tests.support.mode_apps import mode_app

    template = Template.from_stack(mode_app(mode).serving)
    (declared,) = template.find_resources("AWS::SageMaker::EndpointConfig").values()
    declared = declared["Properties"]
    fake = FakeServingStack(
        stack_name="Grocery-Serving",
        prefix="grocery",
        model_role=MODEL_ROLE,
        config=mode_config(mode),
    ).endpoint_config("grocery-classifier-v1")
    assert set(fake) == set(declared) - {"EndpointConfigName", "Tags"}  # tags: not modelled
    (declared_variant,) = declared["ProductionVariants"]
    (variant,) = fake["ProductionVariants"]
    assert set(variant) == set(declared_variant)
    for field in ("ServerlessConfig", "InstanceType", "InitialInstanceCount"):
        if field in variant:
            assert variant[field] == declared_variant[field]
    if "AsyncInferenceConfig" in fake:
        output, declared_output = (
            c["AsyncInferenceConfig"]["OutputConfig"] for c in (fake, declared)
        )
        assert set(output) == set(declared_output)
        assert set(output["NotificationConfig"]) == set(declared_output["NotificationConfig"])
