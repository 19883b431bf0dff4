"""cdk-nag AwsSolutions over every stack: no unacknowledged finding, every acknowledgment reasoned."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from tests.infrastructure.conftest import build_app

CONTEXTS = {
    "defaults": {},
    # Destroy mode adds auto-delete custom resources: they must pass too.
    "destroy-mode": {"retain_data": "false", "alarm_email": "ops@example.com"},
}


@pytest.fixture(scope="module", params=sorted(CONTEXTS))
def app_stacks(request):
    return build_app(CONTEXTS[request.param])


def _findings(stack) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(stack)
    return [
        f"{violation.rule_name}: {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
    ]


def test_every_stack_passes_cdk_nag(app_stacks):
    findings = {stack.stack_name: _findings(stack) for stack in app_stacks.all()}
    assert findings == {stack.stack_name: [] for stack in app_stacks.all()}


def _acknowledgments(stack) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) for every cdk-nag acknowledgment in the stack."""
    found = []
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                for rule, reason in entry.data.items():
                    found.append((construct.node.path, rule.removeprefix("Annotation::"), reason))
    return found


def test_acknowledgments_are_narrow_and_reasoned(app_stacks):
    for stack in app_stacks.all():
        for path, rule, reason in _acknowledgments(stack):
            assert rule.startswith("AwsSolutions-"), (path, rule)
            if rule.split("[")[0] in ("AwsSolutions-IAM4", "AwsSolutions-IAM5"):
                # One policy or one resource pattern, never the whole rule.
                assert "[" in rule, f"{path}: acknowledge {rule} finding by finding"
            assert len(reason) >= 30, f"{path}: {rule} needs a specific reason, got {reason!r}"


def test_checkov_skips_are_per_resource_and_reasoned(app_stacks):
    for stack in app_stacks.all():
        for logical_id, resource in Template.from_stack(stack).to_json()["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert skip["id"].startswith("CKV_"), (logical_id, skip)
                assert len(skip["comment"]) >= 30, f"{logical_id}: {skip['id']} needs a reason"


def _references(value: Any) -> set[str]:
    """Logical ids a property value names by Ref or Fn::GetAtt."""
    if isinstance(value, list):
        return set().union(*map(_references, value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, inner in value.items():
        if key == "Ref" and isinstance(inner, str):
            found.add(inner)
        elif key == "Fn::GetAtt":
            found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
        else:
            found |= _references(inner)
    return found


def test_no_depends_on_repeats_a_reference(stacks):
    """cfn-lint W3005 in pytest: a DependsOn on a resource already named by Ref/GetAtt.

    Default context only: with retain_data=false, CDK's S3 auto-delete provider (storage
    stack) still has one such DependsOn.
    """
    for stack in stacks.all():
        for logical_id, resource in Template.from_stack(stack).to_json()["Resources"].items():
            depends_on = resource.get("DependsOn", [])
            depends_on = [depends_on] if isinstance(depends_on, str) else depends_on
            redundant = set(depends_on) & _references(resource.get("Properties", {}))
            assert not redundant, f"{stack.stack_name} {logical_id}: {sorted(redundant)}"


def _allow_statements(template: dict):
    """(logical id, statement) for every Allow in identity, key and resource policies."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [props[k] for k in ("PolicyDocument", "KeyPolicy") if k in props]
        documents += [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                if statement["Effect"] == "Allow":
                    yield logical_id, statement


def _is_account_root_key_admin(statement: dict) -> bool:
    # CDK's default key policy: the account's IAM decides who uses the key.
    principal = json.dumps(statement.get("Principal", {}))
    return statement.get("Action") == "kms:*" and ":root" in principal


def _is_cdk_bucket_emptier(statement: dict) -> bool:
    # retain_data=false: CDK's auto-delete provider may list and delete the bucket's objects.
    return "CustomS3AutoDeleteObjectsCustomResourceProviderRole" in json.dumps(
        statement.get("Principal", {})
    )


def test_no_wildcard_actions_and_no_managed_policies(app_stacks):
    offenders = []
    for stack in app_stacks.all():
        template = Template.from_stack(stack).to_json()
        for logical_id, statement in _allow_statements(template):
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            exempt = _is_account_root_key_admin(statement) or _is_cdk_bucket_emptier(statement)
            if any("*" in action for action in actions) and not exempt:
                offenders.append(f"{stack.stack_name}/{logical_id}: {actions}")
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::IAM::Role":
                managed = json.dumps(resource["Properties"].get("ManagedPolicyArns", []))
                assert "FullAccess" not in managed, logical_id
                # Only CDK's own bucket-emptying provider (retain_data=false) has one: logs only.
                if logical_id.startswith("CustomS3AutoDeleteObjectsCustomResourceProvider"):
                    assert managed.count("policy/") == 1
                    assert "AWSLambdaBasicExecutionRole" in managed
                else:
                    assert managed == "[]", logical_id
    assert offenders == []
