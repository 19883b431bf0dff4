"""What a batch run's outcome is, and whether re-running the batch can change it.

A transform job fails as a whole as soon as one input fails, and still writes the
outputs of the others: "uploads only the output for successfully processed objects. If
any object fails in the transform job batch transform marks the job as failed"
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html).
So a failed job is judged by its cause and by what it left:

- the job could not run or finish for a reason outside the batch (no capacity, a
  quota, throttling, an internal error, a refused API call, a time-out): FAILED, and a
  re-run can succeed;
- the model refused some inputs (FailureReason `ClientError: ...` or `AlgorithmError:
  ...`, e.g. a corrupt image that passed the trigger's checks): the same images fail
  the same way on every re-run. With some images classified the batch is PARTIAL (the
  results say which images failed and why); with none, FAILED. Either way no re-run is
  suggested, unless every image without output was deleted since (a re-run drops those).

Step Functions reports a failed `.sync` job as States.TaskFailed with the job's
Describe*Job output, as JSON, for cause; a refused CreateTransformJob call as
`SageMaker.<exception>` with the API's message
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

# FailureReason prefixes that name the job's inputs or model, not the circumstances.
DATA_FAILURES = ("ClientError", "AlgorithmError")
JOB_LOGS = "/aws/sagemaker/TransformJobs"


class Outcome:
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


@dataclasses.dataclass(frozen=True)
class JobFailure:
    """Why the transform task failed, as read from the Step Functions error."""

    error: str  # the Step Functions error name
    reason: str  # readable: the job's FailureReason, or the error's cause
    job_name: str = ""

    @property
    def data_failure(self) -> bool:
        """The model refused inputs: the same images fail again on a re-run."""
        return self.reason.split(":", 1)[0].strip() in DATA_FAILURES

    @property
    def text(self) -> str:
        job = f"transform job {self.job_name}" if self.job_name else "the transform job"
        return f"{job} failed ({self.error}): {self.reason}"


def read_failure(error: Mapping[str, Any] | None) -> JobFailure | None:
    """The transform task's failure from the state machine's `{"Error", "Cause"}` (None if none)."""
    if not error or not error.get("Error"):
        return None
    name, cause = str(error["Error"]), str(error.get("Cause") or "")
    try:
        description = json.loads(cause)
    except ValueError:
        description = None
    if isinstance(description, dict) and description.get("FailureReason"):
        return JobFailure(
            error=name,
            reason=str(description["FailureReason"]),
            job_name=str(description.get("TransformJobName") or ""),
        )
    return JobFailure(error=name, reason=cause or name)


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    outcome: str
    rerun: bool  # whether `python -m grocery batch rerun` can change the outcome
    failure: str  # the readable cause ("" when the run succeeded)
    advice: str  # what to do next, for the notification and `batch status`

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def judge(
    failure: JobFailure | None, *, batch_id: str, classified: int, without_output: int, deleted: int
) -> RunOutcome:
    """The outcome of a run whose rows are written.

    `without_output`: images the job wrote no output for; `deleted`: those of them that
    no longer exist.
    """
    if failure is None:
        return RunOutcome(Outcome.SUCCEEDED, rerun=False, failure="", advice="")
    rerun_command = f"python -m grocery batch rerun {batch_id}"
    if not failure.data_failure:
        return RunOutcome(
            Outcome.FAILED,
            rerun=True,
            failure=failure.text,
            advice=f"a re-run can succeed once the cause is gone: {rerun_command}",
        )
    outcome = Outcome.PARTIAL if classified else Outcome.FAILED
    if without_output and deleted == without_output:
        return RunOutcome(
            outcome,
            rerun=True,
            failure=failure.text,
            advice=(
                f"the {deleted} images without a prediction were deleted before the job read "
                f"them; a re-run leaves them out: {rerun_command}"
            ),
        )
    logs = f"log group {JOB_LOGS}" + (f", streams {failure.job_name}/*" if failure.job_name else "")
    refused = without_output - deleted
    if not refused:
        advice = f"the job failed although no image lacks a prediction; see the job's logs ({logs})"
    elif classified:
        advice = (
            f"the model could not process the {refused} images marked failed in the results "
            f"(see the job's logs: {logs}); a re-run fails the same way for them: fix or "
            "replace those photos and upload them again"
        )
    else:
        advice = (
            "no image was classified, and a re-run fails the same way until the cause is "
            f"fixed (the photos or the model: see the job's logs, {logs})"
        )
    return RunOutcome(outcome, rerun=False, failure=failure.text, advice=advice)
