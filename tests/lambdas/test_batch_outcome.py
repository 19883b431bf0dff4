"""A batch run's outcome: which failures a re-run can fix, and which leave a partial batch."""

from __future__ import annotations

import json

import pytest
from batch_decode.outcome import JobFailure, Outcome, judge, read_failure

BATCH = "20261125-132557-0123456789ab"
RERUN = f"python -m grocery batch rerun {BATCH}"


def sync_failure(reason: str, job: str = "grocery-b-x-0") -> dict[str, str]:
    """The state machine's $.error after a failed .sync job (States.TaskFailed + Describe*Job)."""
    description = {"TransformJobName": job, "TransformJobStatus": "Failed", "FailureReason": reason}
    return {"Error": "States.TaskFailed", "Cause": json.dumps(description)}


class TestReadFailure:
    def test_a_failed_job_s_reason_and_name_come_from_its_description(self):
        failure = read_failure(sync_failure("ClientError: See job logs for more information"))
        assert failure == JobFailure(
            "States.TaskFailed", "ClientError: See job logs for more information", "grocery-b-x-0"
        )
        assert failure.data_failure
        assert failure.text == (
            "transform job grocery-b-x-0 failed (States.TaskFailed): "
            "ClientError: See job logs for more information"
        )

    @pytest.mark.parametrize(
        ("error", "reason"),
        [
            (
                {
                    "Error": "SageMaker.AmazonSageMakerException",
                    "Cause": "Rate exceeded (Service: AmazonSageMaker; Status Code: 400; "
                    "Error Code: ThrottlingException)",
                },
                "Rate exceeded (Service: AmazonSageMaker; Status Code: 400; "
                "Error Code: ThrottlingException)",
            ),
            ({"Error": "States.Timeout"}, "States.Timeout"),
            ({"Error": "States.TaskFailed", "Cause": "[1, 2]"}, "[1, 2]"),
        ],
    )
    def test_other_errors_keep_their_cause(self, error, reason):
        failure = read_failure(error)
        assert (failure.reason, failure.job_name, failure.data_failure) == (reason, "", False)

    @pytest.mark.parametrize("error", [None, {}, {"Error": ""}])
    def test_no_error_is_no_failure(self, error):
        assert read_failure(error) is None


def _judge(reason: str | None, *, classified: int, without_output: int, deleted: int = 0):
    failure = read_failure(sync_failure(reason)) if reason else None
    return judge(
        failure,
        batch_id=BATCH,
        classified=classified,
        without_output=without_output,
        deleted=deleted,
    )


def test_a_successful_run_succeeded():
    assert _judge(None, classified=3, without_output=0).to_dict() == {
        "outcome": "SUCCEEDED",
        "rerun": False,
        "failure": "",
        "advice": "",
    }


@pytest.mark.parametrize(
    "reason",
    [
        "CapacityError: Unable to provision requested ML compute capacity. Please retry using a "
        "different ML instance type.",
        "InternalServerError: We encountered an internal error. Please try again.",
    ],
)
def test_a_failure_outside_the_batch_suggests_a_rerun(reason):
    run = _judge(reason, classified=0, without_output=3)
    assert (run.outcome, run.rerun) == (Outcome.FAILED, True)
    assert run.advice.endswith(RERUN)


def test_throttled_create_call_suggests_a_rerun():
    failure = read_failure({"Error": "SageMaker.AmazonSageMakerException", "Cause": "Rate"})
    run = judge(failure, batch_id=BATCH, classified=0, without_output=1, deleted=0)
    assert (run.outcome, run.rerun) == (Outcome.FAILED, True)


def test_images_the_model_refused_make_a_partial_batch_without_a_rerun():
    run = _judge("ClientError: See job logs for more information", classified=2, without_output=1)
    assert (run.outcome, run.rerun) == (Outcome.PARTIAL, False)
    assert "the model could not process the 1 images marked failed" in run.advice
    assert "log group /aws/sagemaker/TransformJobs, streams grocery-b-x-0/*" in run.advice
    assert "rerun" not in run.advice


@pytest.mark.parametrize("reason", ["ClientError: x", "AlgorithmError: See job logs"])
def test_nothing_classified_for_a_data_failure_is_failed_without_a_rerun(reason):
    run = _judge(reason, classified=0, without_output=2)
    assert (run.outcome, run.rerun) == (Outcome.FAILED, False)
    assert "no image was classified" in run.advice
    assert "rerun" not in run.advice


def test_images_deleted_before_the_job_are_left_out_by_a_rerun():
    run = _judge("ClientError: x", classified=1, without_output=2, deleted=2)
    assert (run.outcome, run.rerun) == (Outcome.PARTIAL, True)
    assert run.advice.endswith(RERUN)
    # ... but not when a photo that still exists was refused too.
    assert _judge("ClientError: x", classified=1, without_output=2, deleted=1).rerun is False


def test_a_data_failure_that_left_every_prediction_says_so():
    run = _judge("ClientError: x", classified=2, without_output=0)
    assert (run.outcome, run.rerun) == (Outcome.PARTIAL, False)
    assert "no image lacks a prediction" in run.advice
