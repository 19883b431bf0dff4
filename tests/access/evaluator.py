"""Runs simulate.mjs once over a batch of calls: one node process for the whole session."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.access.calls import ALLOWED, DENIED, Call, PolicyTable, request_for
from tests.access.policies import AccessModel, unresolved_markers

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SIMULATOR = HERE / "simulate.mjs"
PACKAGE = REPO / "node_modules" / "@cloud-copilot" / "iam-simulate"


@dataclasses.dataclass(frozen=True)
class Outcome:
    call: Call
    decision: str | None  # Allowed, ImplicitlyDenied, ExplicitlyDenied; None if not evaluated
    problems: tuple[str, ...]

    @property
    def as_expected(self) -> bool:
        if self.problems or self.decision is None:
            return False
        allowed = self.decision == ALLOWED
        return allowed if self.call.expect == ALLOWED else not allowed

    def describe(self) -> str:
        c = self.call
        head = f"{c.id}: {c.who} {c.action} {c.resource} -> {self.decision} (expected {c.expect})"
        lines = [head, *(f"    problem: {p}" for p in self.problems)]
        if c.why:
            lines.append(f"    why: {c.why}")
        return "\n".join(lines)


def run_simulator(policies: Mapping[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
    """One node process over the whole batch (the input and output formats: simulate.mjs)."""
    node = shutil.which("node")
    assert node, "node is missing (Node.js 20+ is a prerequisite, see README)"
    assert PACKAGE.exists(), "@cloud-copilot/iam-simulate is missing: run `npm ci`"
    result = subprocess.run(
        [node, str(SIMULATOR)],
        input=json.dumps({"policies": policies, "requests": requests}),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, f"simulate.mjs failed:\n{result.stderr}"
    return json.loads(result.stdout)


def evaluate(calls: Iterable[Call], model: AccessModel) -> dict[str, Outcome]:
    """Evaluates every call (identity + resource policy together); outcomes by call id."""
    table = PolicyTable()
    calls = list(calls)
    by_id: dict[str, Call] = {}
    requests, early = [], {}
    for call in calls:
        if call.id in by_id:
            raise ValueError(f"two calls share the id {call.id}")
        by_id[call.id] = call
        try:
            request = request_for(call, model, table)
        except (KeyError, ValueError) as error:
            early[call.id] = Outcome(call, None, (f"cannot build the request: {error}",))
            continue
        markers = [
            marker
            for key in (*request["identityPolicies"], request["resourcePolicy"])
            if key
            for marker in unresolved_markers(table.documents[key])
        ]
        if markers:
            problem = f"a policy holds unresolved attributes {sorted(set(markers))}"
            early[call.id] = Outcome(call, None, (problem,))
            continue
        requests.append(request)
    decisions = run_simulator(table.documents, requests)
    outcomes = dict(early)
    for request in requests:
        answer = decisions[request["id"]]
        outcomes[request["id"]] = Outcome(
            by_id[request["id"]], answer["decision"], tuple(answer["problems"])
        )
    return outcomes


def failures(outcomes: Iterable[Outcome]) -> str:
    """'' when every outcome is as expected, else one readable block per failing call."""
    bad = [outcome.describe() for outcome in outcomes if not outcome.as_expected]
    return "\n".join(bad)


__all__ = ["ALLOWED", "DENIED", "Outcome", "evaluate", "failures"]
