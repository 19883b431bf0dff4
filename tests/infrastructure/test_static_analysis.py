"""cdk-nag AwsSolutions over every stack: no unacknowledged finding, every acknowledgment reasoned."""

from __future__ import annotations

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
