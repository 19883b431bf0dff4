"""Retraining triggers (stacks/training/triggers.py): the app built once with both triggers
on (as `cdk synth -c retrain_on_new_dataset=true -c retrain_schedule=...` builds it) for
the rule, the schedule, their roles, the function's IAM, cdk-nag and cfn-lint; the default
app (session fixture) for "nothing when off". The access paths run in tests/access (its app
has both triggers on)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from stacks.training.triggers import MANIFEST_PATTERN
from tests.infrastructure import test_static_analysis as static
from tests.infrastructure.conftest import build_app

SCHEDULE = "cron(0 3 ? * MON *)"
CONTEXT = {
    "retrain_on_new_dataset": "true",
    "retrain_schedule": SCHEDULE,
    "retrain_incremental": "false",
}
HANDLER = "retrain_trigger.handler.handler"


@pytest.fixture(scope="module")
def triggered():
    """The app with both triggers on (the default app is the session's `stacks`)."""
    return build_app(CONTEXT)


@pytest.fixture(scope="module")
def training(triggered) -> Template:
    return Template.from_stack(triggered.training)


def _one(template: Template, type_: str, **props) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(type_, {"Properties": props} if props else None)
    assert len(found) == 1, found
    (logical_id, resource), *_ = found.items()
    return logical_id, resource


def _function_id(training: Template) -> str:
    return _one(training, "AWS::Lambda::Function", Handler=HANDLER)[0]


def _role_statements(training: Template, role_id: str) -> list[dict[str, Any]]:
    policies = training.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _actions(statements) -> set[str]:
    found = set()
    for statement in statements:
        actions = statement["Action"]
        found |= {actions} if isinstance(actions, str) else set(actions)
    return found


def test_rule_matches_manifests_under_datasets_of_the_training_bucket(training, triggered):
    _, rule = _one(training, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"] == {"key": [{"wildcard": "datasets/*/manifest.json"}]}
    assert MANIFEST_PATTERN == "datasets/*/manifest.json"
    bucket = triggered.storage.resolve(triggered.storage.training_data.bucket_name)
    assert bucket["Ref"] in json.dumps(pattern["detail"]["bucket"])
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_function_id(training), "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    queue_id, _ = _one(training, "AWS::SQS::Queue")
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}


def test_only_this_rule_may_invoke_the_function(training):
    _, permission = _one(training, "AWS::Lambda::Permission")
    rule_id, _ = _one(training, "AWS::Events::Rule")
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"
    assert permission["Properties"]["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


def test_training_bucket_sends_events_to_eventbridge_only_with_the_dataset_trigger(
    triggered, template_of
):
    def enabled(storage: Template) -> bool:
        bucket_id = triggered.storage.resolve(triggered.storage.training_data.bucket_name)["Ref"]
        props = storage.to_json()["Resources"][bucket_id]["Properties"]
        return props.get("NotificationConfiguration", {}).get("EventBridgeConfiguration") == {
            "EventBridgeEnabled": True
        }

    assert enabled(Template.from_stack(triggered.storage))
    assert not enabled(template_of("storage"))


def test_schedule_invokes_the_function_with_its_scheduled_time(training):
    _, schedule = _one(training, "AWS::Scheduler::Schedule")
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == SCHEDULE
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [_function_id(training), "Arn"]}
    assert json.loads(target["Input"]) == {
        "trigger": "schedule",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    assert "DeadLetterConfig" in target


def test_schedule_role_only_invokes_this_function(training):
    _, schedule = _one(training, "AWS::Scheduler::Schedule")
    role_id = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    role = training.to_json()["Resources"][role_id]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = _role_statements(training, role_id)
    assert _actions(statements) == {
        "lambda:InvokeFunction",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    }
    [invoke] = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert invoke["Resource"] == {"Fn::GetAtt": [_function_id(training), "Arn"]}


def test_function_settings_and_least_privilege(training):
    _, function = _one(training, "AWS::Lambda::Function", Handler=HANDLER)
    env = function["Properties"]["Environment"]["Variables"]
    assert env["RETRAIN_INCREMENTAL"] == "false"
    assert env["RELEASE_PARAMETER"] == "/grocery/release/model-package-arn"
    assert env["STATE_MACHINE_ARN"]["Ref"].startswith("Pipeline")
    queue_id, _ = _one(training, "AWS::SQS::Queue")
    assert function["Properties"]["DeadLetterConfig"] == {
        "TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}
    }
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = _role_statements(training, role_id)
    assert _actions(statements) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "s3:ListBucket",
        "s3:GetObject",
        "ssm:GetParameter",
        "sagemaker:DescribeModelPackage",
        "sns:Publish",
        "states:StartExecution",
        "sqs:SendMessage",
    }
    [listing] = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["datasets/", "datasets/*"]}}
    [reads] = [s for s in statements if s["Action"] == "s3:GetObject"]
    suffixes = sorted(part["Fn::Join"][1][1] for part in reads["Resource"])
    assert suffixes == ["/datasets/*/labels.json", "/training-jobs/*/labels.json"]


def test_dead_letters_alarm_on_the_topic(training):
    queue_id, queue = _one(training, "AWS::SQS::Queue")
    assert "KmsMasterKeyId" in queue["Properties"]
    _, alarm = _one(
        training,
        "AWS::CloudWatch::Alarm",
        Dimensions=[{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
    )
    assert alarm["Properties"]["Threshold"] == 1
    assert "Notifications" in json.dumps(alarm["Properties"]["AlarmActions"])


def test_nothing_is_created_when_both_triggers_are_off(template_of):
    training = template_of("training")
    for type_ in ("AWS::Scheduler::Schedule", "AWS::Events::Rule", "AWS::SQS::Queue"):
        assert training.find_resources(type_) == {}, type_
    handlers = [
        r["Properties"]["Handler"]
        for r in training.find_resources("AWS::Lambda::Function").values()
    ]
    assert HANDLER not in handlers


def test_training_and_storage_pass_cdk_nag(triggered):
    findings = {}
    for stack in (triggered.training, triggered.storage):
        report = AwsSolutionsChecks().validate_scope(stack)
        findings[stack.stack_name] = [
            f"{v.rule_name}: {r.construct_path}"
            for v in report.violations
            for r in v.violating_resources
        ]
    assert findings == {triggered.training.stack_name: [], triggered.storage.stack_name: []}


def test_training_template_passes_cfn_lint(training, tmp_path):
    from cfnlint.api import lint

    path = tmp_path / "Grocery-Training.template.json"
    path.write_text(json.dumps(training.to_json()))
    matches = [m for m in lint(path.read_text(), regions=["us-east-1"]) if m.rule.id[0] in "EW"]
    assert [str(m) for m in matches] == []


def test_the_static_analysis_rules_hold_with_the_triggers(triggered):
    """The whole-app rules of test_static_analysis.py, on this app: no wildcard actions or
    managed policies, narrow and reasoned acknowledgments and checkov skips."""
    static.test_no_wildcard_actions_and_no_managed_policies(triggered)
    static.test_acknowledgments_are_narrow_and_reasoned(triggered)
    static.test_checkov_skips_are_per_resource_and_reasoned(triggered)
