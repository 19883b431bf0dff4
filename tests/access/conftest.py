"""Session fixtures: the app built once (fixed account and region), one evaluator run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.access.app import app_model
from tests.access.calls import Call, listed_calls, load_document, render
from tests.access.evaluator import Outcome, evaluate
from tests.access.policies import AccessModel
from tests.access.service_calls import derived_service_calls, kms_calls
from tests.access.state_machine_calls import state_machine_calls


@pytest.fixture(scope="session")
def model() -> AccessModel:
    """The whole app, built once per session with a fixed account and region."""
    return app_model()


@pytest.fixture(scope="session")
def calls_document() -> dict[str, Any]:
    return load_document()


@pytest.fixture(scope="session")
def samples(calls_document: dict[str, Any], model: AccessModel) -> dict[str, str]:
    return {path: render(str(value), model) for path, value in calls_document["samples"].items()}


@pytest.fixture(scope="session")
def all_calls(
    calls_document: dict[str, Any], model: AccessModel, samples: dict[str, str]
) -> dict[str, list[Call]]:
    """Every call by origin; each expected S3/SNS/SQS call brings its KMS calls along."""
    groups = {
        "state machine tasks": list(state_machine_calls(model, samples)),
        "services": derived_service_calls(model),
        "listed": listed_calls(calls_document, model),
    }
    groups["kms"] = kms_calls([c for group in groups.values() for c in group], model)
    return groups


@pytest.fixture(scope="session")
def outcomes(all_calls: dict[str, list[Call]], model: AccessModel) -> dict[str, Outcome]:
    """One evaluator run (one node process) for every call of the session."""
    return evaluate([call for group in all_calls.values() for call in group], model)
