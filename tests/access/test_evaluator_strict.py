"""The evaluator refuses what would make an access test pass for the wrong reason.

A misspelt action, a resource ARN that matches none of the action's resource types, a
request context key the action does not support, or a policy condition key the action
does not support is a problem (the call fails whatever its decision). Templated keys
such as kms:EncryptionContext:<key>, which iam-simulate's own validation drops, are
evaluated.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.access.evaluator import run_simulator

ACCOUNT = "111122223333"
ROLE = f"arn:aws:sts::{ACCOUNT}:assumed-role/Worker/session"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _allow(action: str, resource: str, condition: dict | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


LOGS_KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
            "Action": "kms:GenerateDataKey",
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:*"
                }
            },
        }
    ],
}
POLICIES = {
    "publish": _allow("sns:Publish", TOPIC),
    "publish-if-prefix": _allow("sns:Publish", TOPIC, {"StringEquals": {"s3:prefix": "x/"}}),
    "logs-key": LOGS_KEY_POLICY,
}
REQUESTS = {
    "misspelt action": ("sns:Publsh", TOPIC, {}, "publish"),
    "resource of another type": (
        "sns:Publish",
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:queue",
        {},
        "publish",
    ),
    "unsupported context key": ("sns:Publish", TOPIC, {"s3:prefix": "x/"}, "publish"),
    "unsupported policy condition key": ("sns:Publish", TOPIC, {}, "publish-if-prefix"),
    "well-formed call": ("sns:Publish", TOPIC, {}, "publish"),
}


def _request(request_id: str, action: str, resource: str, context: dict, policy: str) -> dict:
    return {
        "id": request_id,
        "principal": ROLE,
        "action": action,
        "resource": resource,
        "resourceAccount": ACCOUNT,
        "context": {"aws:SecureTransport": "true", **context},
        "identityPolicies": [policy],
        "resourcePolicy": None,
    }


def _logs(request_id: str, log_group_account: str) -> dict:
    arn = f"arn:aws:logs:us-east-1:{log_group_account}:log-group:app"
    return {
        "id": request_id,
        "principal": "logs.us-east-1.amazonaws.com",
        "action": "kms:GenerateDataKey",
        "resource": KEY,
        "resourceAccount": ACCOUNT,
        "context": {"kms:EncryptionContext:aws:logs:arn": arn},
        "identityPolicies": [],
        "resourcePolicy": "logs-key",
    }


@pytest.fixture(scope="module")
def answers() -> dict[str, Any]:
    requests = [_request(rid, *spec) for rid, spec in REQUESTS.items()]
    requests += [_logs("our log group", ACCOUNT), _logs("their log group", "444455556666")]
    return run_simulator(POLICIES, requests)


@pytest.mark.parametrize(
    ("request_id", "complaint"),
    [
        ("misspelt action", "invalid.action"),
        ("resource of another type", "no.resource.types"),
        ("unsupported context key", "context key s3:prefix is not supported by sns:Publish"),
        ("unsupported policy condition key", "condition key s3:prefix is not supported"),
    ],
)
def test_a_malformed_call_is_a_problem(
    request_id: str, complaint: str, answers: dict[str, Any]
) -> None:
    problems = answers[request_id]["problems"]
    assert any(complaint in problem for problem in problems), problems


def test_a_well_formed_call_has_no_problem(answers: dict[str, Any]) -> None:
    assert answers["well-formed call"] == {"decision": "Allowed", "problems": []}


def test_templated_context_keys_are_evaluated(answers: dict[str, Any]) -> None:
    assert answers["our log group"] == {"decision": "Allowed", "problems": []}
    assert answers["their log group"]["decision"] == "ImplicitlyDenied"
    assert answers["their log group"]["problems"] == []
