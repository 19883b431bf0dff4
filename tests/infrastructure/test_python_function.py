"""The shared Lambda construct, built in a bare stack."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Match, Template

from stacks.constructs.python_function import POWERTOOLS_VERSION, PythonFunction


@pytest.fixture(scope="module")
def template() -> Template:
    stack = Stack(App(), "Bare")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    PythonFunction(
        stack,
        "Classify",
        handler="classify_api.handler.handler",
        description="test function",
        key=key,
        service="classify",
        environment={"EXTRA": "1"},
    )
    return Template.from_stack(stack)


def test_runtime_architecture_tracing_and_environment(template):
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "classify_api.handler.handler",
            "TracingConfig": {"Mode": "Active"},
            "KmsKeyArn": Match.any_value(),
            "Environment": {
                "Variables": Match.object_like(
                    {"POWERTOOLS_SERVICE_NAME": "classify", "EXTRA": "1"}
                )
            },
        },
    )


def test_powertools_layer_comes_from_the_pinned_public_parameter(template):
    parameters = template.to_json()["Parameters"]
    defaults = [p["Default"] for p in parameters.values()]
    assert f"/aws/service/powertools/python/arm64/python3.14/{POWERTOOLS_VERSION}" in defaults


def test_powertools_version_matches_the_tested_package():
    requirements = (Path(__file__).parents[2] / "requirements-dev.txt").read_text()
    assert f"aws-lambda-powertools=={POWERTOOLS_VERSION}" in requirements


def test_log_group_is_encrypted_with_retention(template):
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": 90, "KmsKeyId": Match.any_value()}
    )


def test_role_has_no_managed_policies_and_writes_only_its_log_group(template):
    (role,) = template.find_resources("AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    log_statement = next(s for s in statements if "logs:PutLogEvents" in s["Action"])
    assert log_statement["Resource"]["Fn::GetAtt"][0].startswith("ClassifyLogs")


def test_function_depends_on_its_role_policy_only(template):
    # The role is a GetAtt already (a DependsOn on it is cfn-lint W3005); the policy must
    # exist before the first invocation.
    ((function_id, function),) = template.find_resources("AWS::Lambda::Function").items()
    (policy_id,) = template.find_resources("AWS::IAM::Policy")
    assert function["DependsOn"] == [policy_id], function_id
