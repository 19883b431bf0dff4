"""How a batch run ends: batches/<batch id>/status.json, one SNS notification, the final state.

    success    SUCCEEDED  "grocery: batch <id> classified"             -> Classified (Succeed)
    partial    PARTIAL    "grocery: batch <id> partially classified"   -> PartiallyClassified (Succeed)
    unfixable  FAILED     "grocery: batch <id> FAILED", no re-run      -> FailedForGood (Fail)
    failure    FAILED     "grocery: batch <id> FAILED", re-run command -> Failed (Fail)

The decode step judges a failed transform job (lambdas/batch_decode/outcome.py): a
re-run is suggested only when it can change the outcome. Every status document holds
the run's `advice` (what to do next), which `python -m grocery batch status` prints.
"""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.batch import BATCHES_PREFIX

RERUN_COMMAND = "python -m grocery batch rerun {}"
_RESULTS = "Results: {} and {}"


class BatchEndings:
    """Builds the four endings in `scope` (the workflow construct: state names stay flat)."""

    def __init__(
        self, scope: Construct, *, prefix: str, bucket: s3.IBucket, topic: sns.ITopic
    ) -> None:
        self._scope, self._prefix, self._bucket, self._topic = scope, prefix, bucket, topic

    @property
    def status_resource(self) -> str:
        """The only objects the endings write."""
        return self._bucket.arn_for_objects(f"{BATCHES_PREFIX}*/status.json")

    # --- the endings ----------------------------------------------------------------------

    def success(self) -> sfn.IChainable:
        message = sfn.JsonPath.format(
            "Batch {} is done: {} of {} images classified, {} failed, {} objects skipped "
            f"(model {{}}). {_RESULTS}",
            *self._counts(),
            sfn.JsonPath.string_at("$.decode.model"),
            *self._results(),
        )
        return self._ending(
            "Success",
            status="SUCCEEDED",
            subject="classified",
            message=message,
            advice=sfn.JsonPath.string_at("$.decode.advice"),
            end=sfn.Succeed(self._scope, "Classified"),
        )

    def partial(self) -> sfn.IChainable:
        message = sfn.JsonPath.format(
            "Batch {} is partially classified: {} of {} images classified, {} failed, {} objects "
            f"skipped (model {{}}). Why: {{}}. Next: {{}}. {_RESULTS}",
            *self._counts(),
            sfn.JsonPath.string_at("$.decode.model"),
            sfn.JsonPath.string_at("$.decode.failure"),
            sfn.JsonPath.string_at("$.decode.advice"),
            *self._results(),
        )
        return self._ending(
            "Partial",
            status="PARTIAL",
            subject="partially classified",
            message=message,
            advice=sfn.JsonPath.string_at("$.decode.advice"),
            end=sfn.Succeed(self._scope, "PartiallyClassified"),
        )

    def unfixable(self) -> sfn.IChainable:
        message = sfn.JsonPath.format(
            f"Batch {{}} failed: {{}}. Next: {{}}. The results give the reason for each image. {_RESULTS}",
            sfn.JsonPath.string_at("$.batch_id"),
            sfn.JsonPath.string_at("$.decode.failure"),
            sfn.JsonPath.string_at("$.decode.advice"),
            *self._results(),
        )
        return self._ending(
            "Unfixable",
            status="FAILED",
            subject="FAILED",
            message=message,
            advice=sfn.JsonPath.string_at("$.decode.advice"),
            end=self._fail("FailedForGood"),
        )

    def failure(self) -> sfn.IChainable:
        """For failures a re-run can fix (no model yet, capacity, throttling, decode errors)."""
        batch_id = sfn.JsonPath.string_at("$.batch_id")
        message = sfn.JsonPath.format(
            "Batch {} failed ({}): {} The batch is recorded under s3://{}/{}; "
            f"re-run it with: {RERUN_COMMAND}",
            batch_id,
            sfn.JsonPath.string_at("$.error.Error"),
            sfn.JsonPath.string_at("$.error.Cause"),
            sfn.JsonPath.string_at("$.bucket"),
            sfn.JsonPath.string_at("$.record_key"),
            batch_id,
        )
        return self._ending(
            "Failure",
            status="FAILED",
            subject="FAILED",
            message=message,
            advice=sfn.JsonPath.format(f"re-run it with: {RERUN_COMMAND}", batch_id),
            end=self._fail("Failed"),
            with_results=False,
        )

    # --- parts ----------------------------------------------------------------------------

    @staticmethod
    def _counts() -> tuple[str, ...]:
        return tuple(
            sfn.JsonPath.string_at(path)
            for path in (
                "$.batch_id",
                "$.decode.classified",
                "$.decode.images",
                "$.decode.failed",
                "$.decode.skipped",
            )
        )

    @staticmethod
    def _results() -> tuple[str, str]:
        return (
            sfn.JsonPath.string_at("$.decode.results_jsonl"),
            sfn.JsonPath.string_at("$.decode.results_csv"),
        )

    def _fail(self, state_id: str) -> sfn.Fail:
        return sfn.Fail(
            self._scope, state_id, error_path="$.error.Error", cause_path="$.error.Cause"
        )

    def _ending(
        self,
        name: str,
        *,
        status: str,
        subject: str,
        message: str,
        advice: str,
        end: sfn.State,
        with_results: bool = True,
    ) -> sfn.IChainable:
        """Summarise<name> -> Record<name> (status.json) -> Notify<name> -> end."""
        scope = self._scope
        document = {
            "batch_id": sfn.JsonPath.string_at("$.batch_id"),
            "status": status,
            "execution": sfn.JsonPath.execution_id,
            "finished_at": sfn.JsonPath.state_entered_time,
            "model": sfn.JsonPath.object_at("$.model"),
            "error": sfn.JsonPath.object_at("$.error"),
            "advice": advice,
        }
        if with_results:
            document["results"] = sfn.JsonPath.object_at("$.decode")
        summarise = sfn.Pass(
            scope, f"Summarise{name}", parameters=document, result_path="$.status_document"
        )
        put = tasks.CallAwsService(
            scope,
            f"Record{name}",
            service="s3",
            action="putObject",
            parameters={
                "Bucket": sfn.JsonPath.string_at("$.bucket"),
                "Key": sfn.JsonPath.string_at("$.status_key"),
                "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.status_document")),
                "ContentType": "application/json",
            },
            iam_resources=[self.status_resource],
            iam_action="s3:PutObject",
            result_path=sfn.JsonPath.DISCARD,
        )
        notify = tasks.SnsPublish(
            scope,
            f"Notify{name}",
            topic=self._topic,
            subject=sfn.JsonPath.format(
                f"{self._prefix}: batch {{}} {subject}", sfn.JsonPath.string_at("$.batch_id")
            ),
            message=sfn.TaskInput.from_text(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        if status != "SUCCEEDED":
            # A run whose status cannot be written must still be reported.
            put.add_catch(notify, result_path="$.status_error")
        summarise.next(put).next(notify).next(end)
        return summarise
