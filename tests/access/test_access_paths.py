"""Every runtime call of the deployed system is allowed, and what must not happen is denied.

Identity policy and the target's resource policy (topic, queue, bucket, key, function,
role trust) are evaluated together by @cloud-copilot/iam-simulate (tests/access/simulate.mjs).
A failure lists each call: who, action, resource, the decision and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.access.calls import ALLOWED, DENIED, Call
from tests.access.evaluator import Outcome, failures
from tests.access.policies import AccessModel
from tests.access.state_machine_calls import DIRECT_LAMBDA, TASKS, task_states


def _of(group: str, all_calls: dict[str, list[Call]], outcomes: dict[str, Outcome]):
    return [outcomes[call.id] for call in all_calls[group]]


@pytest.mark.parametrize("group", ["state machine tasks", "services", "kms"])
def test_derived_calls_are_allowed(
    group: str, all_calls: dict[str, list[Call]], outcomes: dict[str, Outcome]
) -> None:
    assert all_calls[group], f"no {group} calls derived: the derivation is broken"
    report = failures(_of(group, all_calls, outcomes))
    assert not report, "\n" + report


def test_listed_calls_are_allowed(
    all_calls: dict[str, list[Call]], outcomes: dict[str, Outcome]
) -> None:
    listed = [outcomes[c.id] for c in all_calls["listed"] if c.expect == ALLOWED]
    assert listed
    report = failures(listed)
    assert not report, "\n" + report


def test_what_must_not_happen_is_denied(
    all_calls: dict[str, list[Call]], outcomes: dict[str, Outcome]
) -> None:
    denied = [outcomes[c.id] for c in all_calls["listed"] if c.expect == DENIED]
    assert len(denied) >= 10
    report = failures(denied)
    assert not report, "\n" + report


def test_every_task_state_has_derived_calls(
    model: AccessModel, all_calls: dict[str, list[Call]]
) -> None:
    """A Task state without calls would be a path nobody checked."""
    tasks = task_states(model)
    assert {integration for _, _, integration in tasks} <= {*TASKS, DIRECT_LAMBDA}
    covered = {
        call.why.split(" (")[0].removeprefix("task ") for call in all_calls["state machine tasks"]
    }
    missing = [f"{machine}: {name}" for machine, name, _ in tasks if name not in covered]
    assert not missing, missing


def test_both_state_machines_and_their_sagemaker_jobs_are_covered(
    all_calls: dict[str, list[Call]],
) -> None:
    actions = {(c.who, c.action) for c in all_calls["state machine tasks"]}
    assert ("Grocery-Training/Pipeline/Role", "sagemaker:CreateTrainingJob") in actions
    assert ("Grocery-Training/Pipeline/Role", "sagemaker:CreateTransformJob") in actions
    assert ("Grocery-Training/Pipeline/Role", "iam:PassRole") in actions
    assert ("Grocery-Batch/Workflow/StateMachine/Role", "sagemaker:CreateTransformJob") in actions
    assert ("Grocery-Batch/Workflow/StateMachine/Role", "ssm:GetParameter") in actions


def test_every_alarm_notifies_through_the_topic(
    model: AccessModel, all_calls: dict[str, list[Call]], outcomes: dict[str, Outcome]
) -> None:
    alarms = list(model.resources_of_type("AWS::CloudWatch::Alarm"))
    published = [c for c in all_calls["services"] if c.who == "service:cloudwatch.amazonaws.com"]
    assert len(published) == len(alarms) >= 5
    report = failures(outcomes[c.id] for c in published)
    assert not report, "\n" + report


def test_the_agpl_evaluator_stays_out_of_lambda_assets() -> None:
    """lambdas/ is every function's asset: nothing in it may use the AGPL-3.0 evaluator."""
    lambdas = Path(__file__).resolve().parents[2] / "lambdas"
    offending = [
        str(path.relative_to(lambdas))
        for path in lambdas.rglob("*")
        if path.is_file()
        and (
            "node_modules" in path.parts
            or path.suffix in {".js", ".mjs", ".cjs", ".ts"}
            or (path.suffix == ".py" and "cloud-copilot" in path.read_text())
        )
    ]
    assert not offending
