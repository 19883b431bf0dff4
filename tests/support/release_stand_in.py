"""Grocery-Release as the CLI sees it, in moto: its stack output and a stand-in state machine.

The commands find the release state machine through the stack output
`ReleaseStateMachineArn`; these definitions end as the real workflow's do (its output
carries `expected_model`, `target.version` and `labels.note` when a version was released).
"""

from __future__ import annotations

import json
from typing import Any

from tests.support import sfn_local


def release_stack(session, definition: dict[str, Any]) -> str:
    """Creates Grocery-Release (output only) and its state machine; returns the machine ARN."""
    machine = sfn_local.create_state_machine(
        session.client("stepfunctions"), definition, name="grocery-release"
    )
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ReleaseStateMachineArn": {"Value": machine}},
    }
    session.client("cloudformation").create_stack(
        StackName="Grocery-Release", TemplateBody=json.dumps(template)
    )
    return machine


def releases(version: int, *, note: str = "Same labels as the version it replaces.") -> dict:
    """A workflow that ends released: the endpoint serves version `version`."""
    return {
        "StartAt": "Released",
        "States": {
            "Released": {
                "Type": "Pass",
                "Result": {
                    "expected_model": f"grocery-classifier-v{version}",
                    "target": {"version": str(version)},
                    "labels": {"note": note},
                },
                "End": True,
            }
        },
    }


NOTHING_TO_RELEASE = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
FAILS = {
    "StartAt": "No",
    "States": {"No": {"Type": "Fail", "Error": "ReleaseFailed", "Cause": "EndpointNotServing: x"}},
}
