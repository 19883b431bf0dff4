"""The notification topic admits this account's CloudWatch alarms (issue 10, fix 2).

`enforce_ssl` makes CDK write an AWS::SNS::TopicPolicy, which replaces SNS's default
policy: without an Allow for `cloudwatch.amazonaws.com`, no alarm could ever publish.
Evaluated with the real policy evaluator (tests/access/simulate.mjs) on the storage stack.
"""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from stacks.application import GroceryStacks
from tests.access.app import access_model
from tests.access.calls import ALLOWED, DENIED, Call
from tests.access.evaluator import Outcome, evaluate, failures
from tests.access.templates import ACCOUNT, REGION

CLOUDWATCH = "service:cloudwatch.amazonaws.com"
OURS = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:grocery-classifier-5xx-errors"
THEIRS = f"arn:aws:cloudwatch:{REGION}:444455556666:alarm:theirs"


@pytest.fixture(scope="module")
def outcomes(stacks: GroceryStacks) -> dict[str, Outcome]:
    model = access_model([stacks.storage])
    topic = model.arn("Grocery-Storage/Notifications")
    key = model.arn("Grocery-Storage/DataKey")

    def publish(call_id: str, alarm: str, expect: str, **context: str) -> Call:
        source = {"aws:SourceArn": alarm, "aws:SourceAccount": alarm.split(":")[4]}
        return Call(call_id, CLOUDWATCH, "sns:Publish", topic, {**source, **context}, expect)

    calls = [
        publish("our alarm publishes", OURS, ALLOWED),
        publish("another account's alarm publishes", THEIRS, DENIED),
        publish("our alarm without TLS", OURS, DENIED, **{"aws:SecureTransport": "false"}),
        Call(
            "CloudWatch encrypts the message with the data key",
            CLOUDWATCH,
            "kms:GenerateDataKey",
            key,
            {"aws:SourceArn": OURS, "aws:SourceAccount": ACCOUNT},
        ),
        Call("another account publishes", "account:444455556666", "sns:Publish", topic, {}, DENIED),
    ]
    return evaluate(calls, model)


def test_this_accounts_alarms_may_publish(outcomes: dict[str, Outcome]) -> None:
    report = failures([outcomes["our alarm publishes"]])
    assert not report, "\n" + report


def test_the_encrypted_topic_key_admits_cloudwatch(outcomes: dict[str, Outcome]) -> None:
    report = failures([outcomes["CloudWatch encrypts the message with the data key"]])
    assert not report, "\n" + report


@pytest.mark.parametrize(
    "call_id",
    ["another account's alarm publishes", "our alarm without TLS", "another account publishes"],
)
def test_nobody_else_may_publish(call_id: str, outcomes: dict[str, Outcome]) -> None:
    report = failures([outcomes[call_id]])
    assert not report, "\n" + report


def test_the_allow_is_scoped_to_this_accounts_alarms(stacks: GroceryStacks) -> None:
    policy = next(
        iter(Template.from_stack(stacks.storage).find_resources("AWS::SNS::TopicPolicy").values())
    )
    allows = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Action"] == "sns:Publish"
    assert set(allow["Condition"]) == {"ArnLike", "StringEquals"}
    assert set(allow["Condition"]["ArnLike"]) == {"aws:SourceArn"}
    assert set(allow["Condition"]["StringEquals"]) == {"aws:SourceAccount"}
