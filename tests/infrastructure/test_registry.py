"""The model registry: the training stack's Model Package Group and the registration states."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from stacks.config import Config, ConfigError
from tests.infrastructure.conftest import build_app
from tests.support.state_machines import (
    iter_states,
    sagemaker_parameter_errors,
    state_machine_definitions,
)

REGISTER = "arn:aws:states:::aws-sdk:sagemaker:createModelPackage"


def _definition(template: Template) -> dict[str, Any]:
    (definition,) = state_machine_definitions(template.to_json()).values()
    return definition


def _register_state(definition: dict[str, Any]) -> dict[str, Any]:
    (state,) = [s for _, s in iter_states(definition) if s.get("Resource") == REGISTER]
    return state


@pytest.fixture(scope="module")
def template(template_of) -> Template:
    return template_of("training")


@pytest.fixture(scope="module")
def gated_auto() -> Template:
    stacks = build_app({"test_accuracy_threshold": "0.75", "model_approval": "auto"})
    return Template.from_stack(stacks.training)


def test_the_training_stack_declares_the_group(template):
    groups = template.find_resources("AWS::SageMaker::ModelPackageGroup")
    (group,) = groups.values()
    assert group["Properties"]["ModelPackageGroupName"] == "grocery-classifier"
    # Kept by cdk destroy: the versions in it are the record of what was served.
    assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"
    outputs = template.find_outputs("ModelPackageGroupName")
    (output,) = outputs.values()
    assert output["Value"] == "grocery-classifier"


def test_a_prefix_names_its_own_group():
    stacks = build_app({"prefix": "shop"})
    (group,) = (
        Template.from_stack(stacks.training)
        .find_resources("AWS::SageMaker::ModelPackageGroup")
        .values()
    )
    assert group["Properties"]["ModelPackageGroupName"] == "shop-classifier"


@pytest.mark.parametrize("which", ["default", "gated_auto"])
def test_registration_parameters_match_the_api(template, gated_auto, which):
    chosen = template if which == "default" else gated_auto
    params = _register_state(_definition(chosen))["Parameters"]
    assert sagemaker_parameter_errors("CreateModelPackage", params) == ""


def test_validation_catches_a_misspelt_registry_key(template):
    params = dict(_register_state(_definition(template))["Parameters"])
    params["ModelAprovalStatus"] = "Approved"
    assert "ModelAprovalStatus" in sagemaker_parameter_errors("CreateModelPackage", params)


def test_the_version_says_how_to_serve_it_and_where_it_came_from(template):
    params = _register_state(_definition(template))["Parameters"]
    assert params["ModelPackageGroupName"] == "grocery-classifier"
    assert params["ModelApprovalStatus"] == "PendingManualApproval"  # model_approval=manual
    spec = params["InferenceSpecification"]
    (container,) = spec["Containers"]
    assert container["ModelDataUrl.$"] == "$.artifact"
    assert "image-classification" in json.dumps(template.to_json()["Mappings"])
    assert spec["SupportedContentTypes"] == ["image/jpeg", "image/png", "application/x-image"]
    assert spec["SupportedResponseMIMETypes"] == ["application/json"]
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == ["ml.m4.xlarge"]
    assert spec["SupportedTransformInstanceTypes"] == ["ml.m4.xlarge"]
    metadata = params["CustomerMetadataProperties"]
    assert set(metadata) == {
        "training_job.$",
        "dataset_manifest.$",
        "labels_uri.$",
        "validation_accuracy.$",
        "trained_from_version.$",  # "none", or the version an incremental training started from
        "tuning_summary.$",  # "none", or the tuning run's tuning-summary.json
    }
    statistics = params["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert "metrics.json" in statistics["S3Uri.$"]


def test_auto_approval_and_the_test_gate_reach_the_registration(gated_auto):
    definition = _definition(gated_auto)
    params = _register_state(definition)["Parameters"]
    assert params["ModelApprovalStatus"] == "Approved"
    metadata = params["CustomerMetadataProperties"]
    assert metadata["test_accuracy.$"] == "States.Format('{}', $.test.accuracy)"
    assert metadata["test_report.$"] == "$.test.report_uri"
    states = dict(iter_states(definition))
    assert states["Check test accuracy"]["Choices"][0]["Next"] == "Collect model metrics"
    assert states["Collect model metrics"]["Parameters"]["test"]["report.$"] == "$.test.report_uri"


def test_registration_sits_after_the_gate_and_before_the_notification(template):
    states = dict(iter_states(_definition(template)))
    # No SageMaker Model without the test gate: straight from the labels to the metrics.
    assert states["Copy labels beside model"]["Next"] == "Collect model metrics"
    assert "Create model" not in states
    assert states["Collect model metrics"]["Next"] == "Write model metrics"
    assert states["Write model metrics"]["Next"] == "Register model version"
    assert states["Register model version"]["Next"] == "Notify success"
    for name in ("Write model metrics", "Register model version"):
        state = states[name]
        assert "ThrottlingException" in state["Retry"][0]["ErrorEquals"], name
        assert state["Catch"][0] == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.failure",
            "Next": "Notify failure",
        }


def test_the_metrics_file_is_written_beside_the_model(template):
    states = dict(iter_states(_definition(template)))
    params = states["Write model metrics"]["Parameters"]
    assert params["Key.$"] == "States.Format('training-jobs/{}/metrics.json', $.training_job)"
    assert params["Body.$"] == "States.JsonToString($.model_metrics)"


def _statements_with(template: Template, action: str) -> list[dict[str, Any]]:
    found = []
    for resource in template.find_resources("AWS::IAM::Policy").values():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            if action in ([actions] if isinstance(actions, str) else actions):
                found.append(statement)
    return found


def test_the_state_machine_may_register_only_in_its_group(template):
    (statement,) = _statements_with(template, "sagemaker:CreateModelPackage")
    assert statement["Action"] == "sagemaker:CreateModelPackage"
    rendered = json.dumps(statement["Resource"])
    assert rendered.count("model-package/grocery-classifier") == 2
    assert "model-package/grocery-classifier/*" in rendered
    assert "model-package/*" not in rendered
    puts = json.dumps([s["Resource"] for s in _statements_with(template, "s3:PutObject")])
    assert "/training-jobs/*/metrics.json" in puts


def test_nag_is_clean_with_the_registry():
    stacks = build_app({"model_approval": "auto"})
    report = AwsSolutionsChecks().validate_scope(stacks.training)
    assert [v.rule_name for v in report.violations] == []


@pytest.mark.parametrize(
    ("value", "status"), [("manual", "PendingManualApproval"), ("auto", "Approved")]
)
def test_model_approval_config(value, status):
    assert Config(model_approval=value).model_approval_status == status


def test_model_approval_refuses_other_values():
    with pytest.raises(ConfigError, match=r"model_approval.*'manual'.*'auto'"):
        Config(model_approval="yes")
