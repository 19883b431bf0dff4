"""The concurrency guard: never two trainings of one deployment at once.

"List running trainings" (ListExecutions RUNNING of this state machine) -> "Another training
running?" -> `then` when this execution is the oldest running one; otherwise
"Training already running" (TrainingAlreadyRunning, notified). Of two executions started
together the newer one is refused, the older one goes on.

ListExecutions sorts "by time, with the most recent execution first" and is eventually
consistent (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html):
an execution that does not list itself yet (none listed) asks again after a few seconds.
The state machine's ARN in the grant is built from its fixed name (`<prefix>-training`): a
reference to the machine itself would make its role's policy depend on it (a cycle); the
call itself takes `$$.StateMachine.Id` (the context object).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from stacks.training.common import Stage, retry_throttling

POLL = Duration.seconds(5)


def state_machine_name(prefix: str) -> str:
    """The training state machine's fixed name (the guard's grant is built from it)."""
    return f"{prefix}-training"


def concurrency_guard(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    scope = stage.scope
    machine = Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=state_machine_name(stage.config.prefix),
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    running = tasks.CallAwsService(
        scope,
        "List running trainings",
        service="sfn",
        action="listExecutions",
        iam_action="states:ListExecutions",
        iam_resources=[machine],
        parameters={
            "StateMachineArn": sfn.JsonPath.string_at("$$.StateMachine.Id"),
            "StatusFilter": "RUNNING",
            "MaxResults": 1000,
        },
        result_selector={
            "count": sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.Executions")),
            "arns": sfn.JsonPath.list_at("$.Executions[*].ExecutionArn"),
        },
        result_path="$.running",
    )
    retry_throttling(running, "sfn")
    stage.catch(running)
    oldest = sfn.Pass(
        scope,
        "Oldest running training",
        parameters={
            # The last listed is the oldest (most recent first).
            "arn.$": "States.ArrayGetItem($.running.arns, States.MathAdd($.running.count, -1))",
            "me.$": "$$.Execution.Id",
        },
        result_path="$.running",
    )
    refuse = stage.fail(
        "Training already running",
        "TrainingAlreadyRunning",
        sfn.JsonPath.format(
            "execution {} is running; wait for it or stop it with `aws stepfunctions "
            "stop-execution --execution-arn {}`, then start this training again.",
            sfn.JsonPath.string_at("$.running.arn"),
            sfn.JsonPath.string_at("$.running.arn"),
        ),
    )
    oldest.next(
        sfn.Choice(scope, "Another training running?")
        .when(sfn.Condition.string_equals_json_path("$.running.arn", "$.running.me"), then)
        .otherwise(refuse)
    )
    wait = sfn.Wait(scope, "Wait to be listed", time=sfn.WaitTime.duration(POLL))
    wait.next(running)
    return running.next(
        sfn.Choice(scope, "Listed?")
        .when(sfn.Condition.number_greater_than("$.running.count", 0), oldest)
        .otherwise(wait)
    )
