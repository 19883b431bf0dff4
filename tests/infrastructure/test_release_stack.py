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


# --- serving_mode=serverless: the smoke request and its rollback ------------------------------

SMOKE_STATES = {"Smoke request", "Answers serverless?", "Cannot serve serverless", "Rolled back"}


@pytest.fixture(scope="module")
def serverless() -> tuple[Template, dict[str, Any]]:
    from tests.support.mode_apps import mode_app

    template = Template.from_stack(mode_app("serverless").release)
    (definition,) = state_machine_definitions(template.to_json()).values()
    return template, definition


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(iter_states(definition))


def test_realtime_and_async_releases_send_no_smoke_request(template, definition):
    from tests.support.mode_apps import mode_app

    async_template = Template.from_stack(mode_app("async").release)
    (async_definition,) = state_machine_definitions(async_template.to_json()).values()
    for each_template, each_definition in (
        (template, definition),
        (async_template, async_definition),
    ):
        assert SMOKE_STATES.isdisjoint(_states(each_definition))
        assert each_template.find_resources("AWS::Lambda::Function") == {}
        served = _states(each_definition)["Serves the version?"]["Choices"][0]["Next"]
        assert served == "Point batch at new labels"


def test_serverless_release_smokes_the_endpoint_before_batch_follows(serverless, tmp_path):
    template, definition = serverless
    assert asl_validation_errors(definition, tmp_path) == ""
    states = _states(definition)
    assert states["Serves the version?"]["Choices"][0]["Next"] == "Smoke request"
    smoke = states["Smoke request"]
    assert smoke["Resource"] == "arn:aws:states:::lambda:invoke"
    assert smoke["Parameters"]["Payload"] == {
        "endpoint_name": "grocery-classifier",
        "classes.$": "$.label_count",
    }
    assert states["Keep expected model name"]["Parameters"]["label_count.$"] == (
        "States.ArrayLength(States.StringToJson($.new_labels.body))"
    )
    answers = states["Answers serverless?"]
    assert answers["Choices"] == [
        {"Variable": "$.smoke.ok", "BooleanEquals": True, "Next": "Point batch at new labels"}
    ]
    assert answers["Default"] == "Cannot serve serverless"
    # A failed call rolls back too: the version is on the endpoint, unproven.
    assert smoke["Catch"][0]["Next"] == "Smoke request failed"
    assert states["Smoke request failed"]["Next"] == "Cannot serve serverless"
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Handler"] == "release_smoke.handler.handler"
    assert function["Properties"]["Timeout"] == 180


def test_a_failed_smoke_request_restores_the_record_and_updates_the_stack_again(serverless):
    _, definition = serverless
    states = _states(definition)
    order, name = [], "Cannot serve serverless"
    while name != "Wait for the rollback":
        order.append(name)
        name = states[name]["Next"]
    assert order == [
        "Cannot serve serverless",
        "Roll back release labels",
        "Roll back release version",
        "Roll back serving stack",
    ]
    for restore, field in (("labels", "labels_uri"), ("version", "arn")):
        assert states[f"Roll back release {restore}"]["Parameters"]["Value.$"] == (
            f"$.current.{field}"
        )
    assert (
        states["Roll back serving stack"]["Parameters"]
        == (states["Update serving stack"]["Parameters"])
    )
    rolled_back = states["Rolled back?"]
    assert rolled_back["Choices"][0] == {
        "Variable": "$.rollback_stack.stack.StackStatus",
        "StringEquals": "UPDATE_COMPLETE",
        "Next": "Was a version serving?",
    }
    assert rolled_back["Default"] == "Rollback stack failed"
    assert states["Rolled back"] == {
        "Type": "Fail",
        "Error": "ServerlessSmokeFailed",
        "CausePath": "$.rollback.message",
    }
    for name in ("Previous version serves again", "No version serves", "Rollback failed"):
        assert states[name]["Next"] == "Notify rollback"


def test_serverless_release_tasks_retry_throttling_and_are_caught(serverless):
    test_every_task_retries_throttling_and_is_caught(serverless[1])


def test_the_smoke_function_may_invoke_only_the_endpoint(serverless):
    template, _ = serverless
    statements = [
        s
        for lid, policy in template.find_resources("AWS::IAM::Policy").items()
        if lid.startswith("ServerlessSmoke")
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (invoke,) = [s for s in statements if s["Action"] == "sagemaker:InvokeEndpoint"]
    assert json.dumps(invoke["Resource"]).endswith(':endpoint/grocery-classifier"]]}')
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert not any(a.endswith("*") for a in actions)
    machine = json.dumps(_statements(template, "ReleaseRole"))
    assert "lambda:InvokeFunction" in machine
    assert "ServerlessSmokeFunction" in machine
