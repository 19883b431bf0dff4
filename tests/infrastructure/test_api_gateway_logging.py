"""A fresh account can deploy the API: its access logging needs the account's logging role."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from stacks.config import ConfigError
from stacks.constructs.api_gateway_logging import PUSH_TO_LOGS_ACTIONS
from tests.infrastructure.conftest import build_app


def _stages_with_access_logs(template: Template) -> list[str]:
    return [
        logical_id
        for logical_id, stage in template.find_resources("AWS::ApiGateway::Stage").items()
        if "AccessLogSetting" in stage["Properties"]
    ]


def test_the_app_sets_the_account_role_that_access_logging_needs(stacks):
    # Without AWS::ApiGateway::Account the stage fails: "CloudWatch Logs role ARN must be set
    # in account settings to enable logging".
    assert _stages_with_access_logs(Template.from_stack(stacks.serving))
    accounts = [
        account
        for stack in stacks.all()
        for account in Template.from_stack(stack)
        .find_resources("AWS::ApiGateway::Account")
        .values()
    ]
    assert len(accounts) == 1


def test_the_role_is_api_gateways_and_may_only_write_logs(template_of):
    template = template_of("storage")
    (account,) = template.find_resources("AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = template.to_json()["Resources"][role_id]["Properties"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "ManagedPolicyArns" not in role
    (policy,) = role["Policies"]
    (allow,) = policy["PolicyDocument"]["Statement"]
    assert sorted(allow["Action"]) == sorted(PUSH_TO_LOGS_ACTIONS)
    resource = "".join(
        p if isinstance(p, str) else "<ref>" for p in allow["Resource"]["Fn::Join"][1]
    )
    assert resource == "arn:<ref>:logs:<ref>:<ref>:log-group:*"


def test_the_setting_outlives_the_serving_stack(stacks):
    # Destroying Serving (to stop the endpoint) must not touch an account-wide setting.
    serving = Template.from_stack(stacks.serving)
    assert serving.find_resources("AWS::ApiGateway::Account") == {}


def test_an_account_that_has_a_role_keeps_it():
    stacks = build_app({"api_gateway_logging_role": "existing"})
    assert Template.from_stack(stacks.storage).find_resources("AWS::ApiGateway::Account") == {}
    assert _stages_with_access_logs(Template.from_stack(stacks.serving))


def test_unknown_mode_is_refused():
    with pytest.raises(ConfigError, match="config key 'api_gateway_logging_role'"):
        build_app({"api_gateway_logging_role": "maybe"})
