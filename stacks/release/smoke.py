"""serving_mode=serverless: the release's smoke request, and the rollback when it fails.

The built-in image-classification container has not been shown to run on Serverless
Inference. After "Serves the version?" the release asks the endpoint once (the Lambda
lambdas/release_smoke: one tiny JPEG; it says why a Lambda and not an SDK task) and checks
the answer is one probability per label of the version. When it is not, the serving stack
already serves the new version (UPDATE_COMPLETE), so restoring the record is not enough:

    restore the record (the previous version, or 'none' before the first release)
    -> UpdateStack again (same call) -> wait -> UPDATE_COMPLETE: the previous version serves
    again (first release: the endpoint resources are removed) -> notify -> fail with
    ServerlessSmokeFailed: "version N cannot serve in serverless mode: <reason>; version M
    serves again".

A rollback that fails itself is notified the same way, saying what is left on the endpoint.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.constructs.acknowledge import skip_checkov
from stacks.constructs.python_function import PythonFunction
from stacks.names import NO_APPROVED_MODEL
from stacks.release import calls
from stacks.serving.names import endpoint_name

SMOKE_ERROR = "ServerlessSmokeFailed"
# Two InvokeEndpoint attempts of at most 5 s connect + 70 s read (lambdas/release_smoke).
FUNCTION_TIMEOUT = Duration.seconds(180)
LAMBDA_TRANSIENT = [
    "Lambda.TooManyRequestsException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
]
STATUS = "$.rollback_stack.stack.StackStatus"


def smoke_function(scope: Construct, *, prefix: str, key: kms.IKey) -> PythonFunction:
    """The function that sends the smoke request: InvokeEndpoint on this endpoint only."""
    function = PythonFunction(
        scope,
        "ServerlessSmoke",
        handler="release_smoke.handler.handler",
        description="Release smoke request: one tiny JPEG to the serverless endpoint; does the "
        "new version answer one probability per label?",
        key=key,
        service="release-smoke",
        timeout=FUNCTION_TIMEOUT,
    )
    function.role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sagemaker:InvokeEndpoint"],
            resources=[
                Stack.of(scope).format_arn(
                    service="sagemaker", resource="endpoint", resource_name=endpoint_name(prefix)
                )
            ],
        )
    )
    for check, reason in (
        (
            "CKV_AWS_115",
            "No reserved concurrency: one invocation per release, and releases run one at a "
            "time (the release state machine queues them).",
        ),
        (
            "CKV_AWS_116",
            "Invoked synchronously by the release state machine only, which retries and "
            "handles its failure (rollback, notification): no asynchronous event to keep.",
        ),
        (
            "CKV_AWS_117",
            "Calls only SageMaker Runtime over TLS with IAM; a VPC would add NAT or "
            "endpoint costs and no control.",
        ),
    ):
        skip_checkov(function.function, check, reason)
    return function


class ServerlessSmoke:
    """`chain(served)`: the smoke request, then `served` when it answers, else the rollback."""

    def __init__(
        self,
        scope: Construct,
        *,
        prefix: str,
        c: calls.Calls,
        function: lambda_.IFunction,
        topic: sns.ITopic,
    ) -> None:
        self.scope, self.prefix, self.c = scope, prefix, c
        self.function, self.topic = function, topic

    def chain(self, served: sfn.IChainable) -> sfn.IChainable:
        smoke = tasks.LambdaInvoke(
            self.scope,
            "Smoke request",
            lambda_function=self.function,
            payload=sfn.TaskInput.from_object(
                {
                    "endpoint_name": endpoint_name(self.prefix),
                    "classes": sfn.JsonPath.number_at("$.label_count"),
                }
            ),
            retry_on_service_exceptions=False,
            result_selector={
                "ok": sfn.JsonPath.string_at("$.Payload.ok"),
                "reason": sfn.JsonPath.string_at("$.Payload.reason"),
            },
            result_path="$.smoke",
        )
        smoke.add_retry(
            errors=[*calls.THROTTLING, *LAMBDA_TRANSIENT],
            interval=Duration.seconds(2),
            backoff_rate=2.0,
            max_attempts=3,
            jitter_strategy=sfn.JitterType.FULL,
        )
        rollback = self._rollback()
        # The call itself failing (timeout, error) leaves the version unproven: roll back too.
        call_failed = sfn.Pass(
            self.scope,
            "Smoke request failed",
            parameters={
                "ok": False,
                "reason.$": "States.Format('the smoke request failed ({}: {})', "
                "$.smoke_error.Error, $.smoke_error.Cause)",
            },
            result_path="$.smoke",
        ).next(rollback)
        smoke.add_catch(call_failed, errors=["States.ALL"], result_path="$.smoke_error")
        return smoke.next(
            sfn.Choice(self.scope, "Answers serverless?")
            .when(sfn.Condition.boolean_equals("$.smoke.ok", True), served)
            .otherwise(rollback)
        )

    def _message(self, name: str, template: str, *values: str) -> sfn.Pass:
        """$.rollback.message := States.Format(template, values...)."""
        arguments = ", ".join(values)
        return sfn.Pass(
            self.scope,
            name,
            parameters={"message.$": f"States.Format('{template}', {arguments})"},
            result_path="$.rollback",
        )

    def _rollback(self) -> sfn.IChainable:
        scope = self.scope
        cannot = self._message(
            "Cannot serve serverless",
            "version {} cannot serve in serverless mode: {}",
            "$.target.version",
            "$.smoke.reason",
        )
        labels, version = self.c.restore_record(
            scope, ("Roll back release labels", "Roll back release version")
        )
        update = self.c.update_stack(scope, "Roll back serving stack")
        describe = self.c.describe_stack(
            scope, "Describe serving stack after rollback", "$.rollback_stack"
        )
        wait = sfn.Wait(scope, "Wait for the rollback", time=sfn.WaitTime.duration(calls.POLL))
        failed = self._message(
            "Rollback failed",
            "{}; rolling back failed too ({}: {}): the endpoint may still serve version {}. "
            "See the serving stack events, then release another version "
            "(python -m grocery models approve N).",
            "$.rollback.message",
            "$.rollback_error.Error",
            "$.rollback_error.Cause",
            "$.target.version",
        )
        for state in (labels, version, update, describe):
            state.add_catch(failed, errors=["States.ALL"], result_path="$.rollback_error")
        stack_failed = sfn.Pass(
            scope,
            "Rollback stack failed",
            parameters={
                "Error": "ServingStackUpdateFailed",
                "Cause.$": f"States.Format('the serving stack ended in {{}}', {STATUS})",
            },
            result_path="$.rollback_error",
        ).next(failed)
        # arn:...:model-package/<group>/<version>: the third '/'-separated part.
        previous = self._message(
            "Previous version serves again",
            "{}; version {} serves again",
            "$.rollback.message",
            "States.ArrayGetItem(States.StringSplit($.current.arn, '/'), 2)",
        )
        removed = self._message(
            "No version serves",
            "{}; no version serves now: it was the first release, so its endpoint was removed",
            "$.rollback.message",
        )
        rolled_back = (
            sfn.Choice(scope, "Was a version serving?")
            .when(sfn.Condition.string_equals("$.current.arn", NO_APPROVED_MODEL), removed)
            .otherwise(previous)
        )
        notify = self._notify()
        for state in (previous, removed, failed):
            state.next(notify)
        updating = sfn.Condition.or_(
            *(sfn.Condition.string_equals(STATUS, s) for s in calls.STACK_UPDATING)
        )
        wait.next(describe).next(
            sfn.Choice(scope, "Rolled back?")
            .when(sfn.Condition.string_equals(STATUS, "UPDATE_COMPLETE"), rolled_back)
            .when(updating, wait)
            .otherwise(stack_failed)
        )
        return cannot.next(labels).next(version).next(update).next(wait)

    def _notify(self) -> sfn.IChainable:
        done = sfn.Fail(
            self.scope, "Rolled back", error=SMOKE_ERROR, cause_path="$.rollback.message"
        )
        notify = tasks.SnsPublish(
            self.scope,
            "Notify rollback",
            topic=self.topic,
            subject=f"{self.prefix}: model release failed (serverless smoke request)",
            message=sfn.TaskInput.from_json_path_at(
                sfn.JsonPath.format(
                    "Release {} failed: {}",
                    sfn.JsonPath.execution_name,
                    sfn.JsonPath.string_at("$.rollback.message"),
                )
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        calls.retry(notify)
        notify.add_catch(done, errors=["States.ALL"], result_path="$.notify_error")
        return notify.next(done)
