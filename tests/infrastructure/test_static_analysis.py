"""cdk-nag AwsSolutions over every stack: no unacknowledged finding, every acknowledgment reasoned."""

from __future__ import annotations

import pytest
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
    from aws_cdk.assertions import Template

    for stack in app_stacks.all():
        for logical_id, resource in Template.from_stack(stack).to_json()["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert skip["id"].startswith("CKV_"), (logical_id, skip)
                assert len(skip["comment"]) >= 30, f"{logical_id}: {skip['id']} needs a reason"
