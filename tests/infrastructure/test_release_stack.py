"""Grocery-Release: the approval rule, the release state machine, its IAM and the deploy role."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.support.state_machines import (
    asl_validation_errors,
    iter_states,
    sagemaker_parameter_errors,
    state_machine_definitions,
)


@pytest.fixture(scope="module")
def template(template_of) -> Template:
    return template_of("release")


@pytest.fixture(scope="module")
def definition(template) -> dict[str, Any]:
    (definition,) = state_machine_definitions(template.to_json()).values()
    return definition


def _tasks(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in iter_states(definition) if s["Type"] == "Task"}


def _statements(template: Template, logical_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for lid, policy in template.find_resources("AWS::IAM::Policy").items()
        if lid.startswith(logical_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_rule_matches_approvals_and_rejections_of_this_group(template):
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": ["grocery-classifier"],
            "ModelApprovalStatus": ["Approved", "Rejected"],
        },
    }
    (target,) = rule["Properties"]["Targets"]
    assert "Release" in json.dumps(target["Arn"])


def test_definition_is_valid_asl(definition, tmp_path):
    assert asl_validation_errors(definition, tmp_path) == ""


def test_registry_and_endpoint_calls_match_the_api(definition):
    operations = {
        "arn:aws:states:::aws-sdk:sagemaker:listModelPackages": "ListModelPackages",
        "arn:aws:states:::aws-sdk:sagemaker:describeModelPackage": "DescribeModelPackage",
        "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint": "DescribeEndpoint",
        "arn:aws:states:::aws-sdk:sagemaker:describeEndpointConfig": "DescribeEndpointConfig",
    }
    seen = set()
    for name, state in _tasks(definition).items():
        operation = operations.get(state["Resource"])
        if operation:
            seen.add(operation)
            assert sagemaker_parameter_errors(operation, state["Parameters"]) == "", name
    assert seen == set(operations.values())


def test_update_stack_keeps_the_template_and_every_parameter(definition, stacks):
    (update,) = [
        s
        for s in _tasks(definition).values()
        if s["Resource"] == "arn:aws:states:::aws-sdk:cloudformation:updateStack"
    ]
    params = update["Parameters"]
    assert params["StackName"] == "Grocery-Serving"
    assert params["UsePreviousTemplate"] is True
    serving_parameters = set(Template.from_stack(stacks.serving).to_json()["Parameters"])
    assert {p["ParameterKey"] for p in params["Parameters"]} == serving_parameters
    assert all(
        p == {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
        for p in params["Parameters"]
    )
    assert "DeployRole" in params["RoleARN"]


def test_every_task_retries_throttling_and_is_caught(definition):
    for name, state in _tasks(definition).items():
        assert "ThrottlingException" in state["Retry"][0]["ErrorEquals"], name
        assert any(c["ErrorEquals"] == ["States.ALL"] for c in state.get("Catch", [])), name


def test_the_workflow_may_update_only_the_serving_stack_and_pass_only_its_deploy_role(template):
    statements = _statements(template, "ReleaseRole")
    by_action: dict[str, list[dict[str, Any]]] = {}
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        for action in actions:
            by_action.setdefault(action, []).append(statement)
    (update,) = by_action["cloudformation:UpdateStack"]
    assert ":stack/Grocery-Serving/*" in json.dumps(update["Resource"])
    (passing,) = by_action["iam:PassRole"]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
    }
    assert "DeployRole" in json.dumps(passing["Resource"])
    puts = json.dumps([s["Resource"] for s in by_action["ssm:PutParameter"]])
    for name in ("release/model-package-arn", "release/labels-uri", "approved-model/model-name"):
        assert name in puts


def test_the_deploy_role_is_for_cloudformation_and_scoped_to_released_versions(template):
    roles = template.find_resources("AWS::IAM::Role")
    (deploy,) = [r for lid, r in roles.items() if lid.startswith("DeployRole")]
    (trust,) = deploy["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    text = json.dumps(_statements(template, "DeployRole"))
    assert "model/grocery-classifier-v*" in text
    assert "endpoint-config/grocery-classifier-v*" in text
    assert "endpoint/grocery-classifier" in text
    assert '"sagemaker:*"' not in text
    assert '"iam:*"' not in text


def test_deployed_after_serving_and_training(stacks):
    assert stacks.serving in stacks.release.dependencies
    assert stacks.training in stacks.release.dependencies
