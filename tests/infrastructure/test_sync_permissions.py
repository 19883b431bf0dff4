"""Both state machine roles may list their SageMaker jobs' tags (issue 10, fix 3).

AWS's `.sync` policies for SageMaker list `sagemaker:ListTags`
(https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html). The Service
Authorization Reference lets ListTags name the job, so the grant is the roles' own job
name prefixes, not `*`. Evaluated with the real policy evaluator (tests/access).
"""

from __future__ import annotations

import pytest

from tests.access.app import app_model
from tests.access.calls import ALLOWED, DENIED, Call
from tests.access.evaluator import Outcome, evaluate, failures
from tests.access.templates import ACCOUNT, REGION

TRAINING = "Grocery-Training/Pipeline/Role"
BATCH = "Grocery-Batch/Workflow/StateMachine/Role"
SAGEMAKER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
CALLS = [
    Call(
        "training job",
        TRAINING,
        "sagemaker:ListTags",
        f"{SAGEMAKER}:training-job/grocery-train-0a1b",
    ),
    Call(
        "test-gate transform job",
        TRAINING,
        "sagemaker:ListTags",
        f"{SAGEMAKER}:transform-job/grocery-train-0a1b-0-0",
    ),
    Call(
        "batch transform job",
        BATCH,
        "sagemaker:ListTags",
        f"{SAGEMAKER}:transform-job/grocery-b-x-0",
    ),
    Call(
        "someone else's training job",
        TRAINING,
        "sagemaker:ListTags",
        f"{SAGEMAKER}:training-job/other-team-job",
        expect=DENIED,
    ),
    Call(
        "someone else's transform job",
        BATCH,
        "sagemaker:ListTags",
        f"{SAGEMAKER}:transform-job/other-team-job",
        expect=DENIED,
    ),
]


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    # The test-set gate on: the training role also runs a transform job.
    return evaluate(CALLS, app_model())


@pytest.mark.parametrize("call", [c for c in CALLS if c.expect == ALLOWED], ids=lambda c: c.id)
def test_sync_tasks_may_list_their_jobs_tags(call: Call, outcomes: dict[str, Outcome]) -> None:
    report = failures([outcomes[call.id]])
    assert not report, "\n" + report


@pytest.mark.parametrize("call", [c for c in CALLS if c.expect == DENIED], ids=lambda c: c.id)
def test_list_tags_is_scoped_to_the_roles_own_jobs(
    call: Call, outcomes: dict[str, Outcome]
) -> None:
    report = failures([outcomes[call.id]])
    assert not report, "\n" + report
