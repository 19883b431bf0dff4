"""The operations dashboard construct, built in a bare stack with stand-in resources."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Template

from stacks.monitoring.dashboard import OperationsDashboard

ENDPOINT = "grocery-endpoint"


def render(value: Any) -> str:
    """A DashboardBody (string or Fn::Join) as text; intrinsics become `<Ref:Id>`-style markers."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    if "Ref" in value:
        return f"<Ref:{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<GetAtt:{'.'.join(value['Fn::GetAtt'])}>"
    if "Fn::ImportValue" in value:
        return f"<Import:{render(value['Fn::ImportValue'])}>"
    raise AssertionError(f"unexpected intrinsic in a dashboard body: {value}")


def dashboard_body(template: Template) -> dict[str, Any]:
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    return json.loads(render(dashboard["Properties"]["DashboardBody"]))


def metric_rows(body: dict[str, Any]) -> list[list[Any]]:
    """Every `metrics` row of every metric widget."""
    return [
        row
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"].get("metrics", [])
    ]


def has_metric(body, namespace: str, name: str, **dimensions: str) -> bool:
    for row in metric_rows(body):
        if row[:2] != [namespace, name]:
            continue
        pairs = row[2:]
        if pairs and isinstance(pairs[-1], dict):
            pairs = pairs[:-1]
        found = dict(zip(pairs[::2], pairs[1::2], strict=True))
        if all(found.get(k) == v for k, v in dimensions.items()):
            return True
    return False


def expressions(body) -> list[str]:
    return [
        row[0]["expression"]
        for row in metric_rows(body)
        if isinstance(row[0], dict) and "expression" in row[0]
    ]


def logical_id(stack: Stack, construct) -> str:
    return stack.get_logical_id(construct.node.default_child)


class StandIns:
    def __init__(self) -> None:
        self.stack = Stack(App(), "Bare")
        s = self.stack
        self.training = sfn.StateMachine(
            s, "Training", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(s, "T"))
        )
        self.batch = sfn.StateMachine(
            s, "Batch", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(s, "B"))
        )
        self.queue = sqs.Queue(s, "Queue")
        self.dlq = sqs.Queue(s, "DeadLetters")
        self.functions = {
            name: lambda_.Function(
                s,
                name,
                runtime=lambda_.Runtime.PYTHON_3_12,
                handler="index.handler",
                code=lambda_.Code.from_inline("def handler(event, context): return event"),
            )
            for name in ("ClassifyApi", "BatchTrigger", "BatchDecode")
        }
        self.alarm = cloudwatch.Alarm(
            s,
            "DlqAlarm",
            metric=self.dlq.metric_approximate_number_of_messages_visible(),
            threshold=1,
            evaluation_periods=1,
        )


@pytest.fixture(scope="module")
def full():
    parts = StandIns()
    construct = OperationsDashboard(
        parts.stack,
        "Ops",
        dashboard_name="grocery-operations",
        training_state_machine=parts.training,
        training_job_prefix="grocery-train-",
        endpoint_name=ENDPOINT,
        batch_state_machine=parts.batch,
        queue=parts.queue,
        dead_letter_queue=parts.dlq,
        functions=parts.functions,
        alarms=[parts.alarm],
    )
    template = Template.from_stack(parts.stack)
    return parts, construct, dashboard_body(template), template


def test_one_named_dashboard(full):
    _, construct, _, template = full
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    template.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": "grocery-operations"}
    )
    assert construct.missing == []


@pytest.mark.parametrize("machine", ["training", "batch"])
@pytest.mark.parametrize(
    "metric", ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut"]
)
def test_state_machine_outcomes(full, machine, metric):
    parts, _, body, _ = full
    arn = f"<Ref:{logical_id(parts.stack, getattr(parts, machine))}>"
    assert has_metric(body, "AWS/States", metric, StateMachineArn=arn)


def test_execution_time_in_minutes(full):
    parts, _, body, _ = full
    arn = f"<Ref:{logical_id(parts.stack, parts.training)}>"
    assert has_metric(body, "AWS/States", "ExecutionTime", StateMachineArn=arn)
    assert {"average / 60000", "maximum / 60000"} <= set(expressions(body))


def test_training_job_accuracy_is_searched_by_job_prefix(full):
    _, _, body, _ = full
    searches = [e for e in expressions(body) if e.startswith("SEARCH(")]
    assert searches == [
        "SEARCH('{/aws/sagemaker/TrainingJobs,Host} "
        f"MetricName=\"{metric}\" Host=grocery-train-', 'Maximum', 300)"
        for metric in ("train:accuracy", "validation:accuracy")
    ]


@pytest.mark.parametrize(
    "metric",
    [
        "Invocations",
        "InvocationsPerInstance",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "InvocationModelErrors",
        "ModelLatency",
    ],
)
def test_endpoint_metrics(full, metric):
    _, _, body, _ = full
    assert has_metric(
        body, "AWS/SageMaker", metric, EndpointName=ENDPOINT, VariantName="AllTraffic"
    )


def test_endpoint_instance_count_and_utilization(full):
    _, _, body, _ = full
    assert "invocations / perInstance" in expressions(body)
    assert {"latencyAverage / 1000", "latencyp99 / 1000"} <= set(expressions(body))
    for metric in ("CPUUtilization", "MemoryUtilization"):
        assert has_metric(
            body,
            "/aws/sagemaker/Endpoints",
            metric,
            EndpointName=ENDPOINT,
            VariantName="AllTraffic",
        )


def test_queue_and_dead_letter_queue_depth(full):
    parts, _, body, _ = full
    for queue in (parts.queue, parts.dlq):
        name = f"<GetAtt:{logical_id(parts.stack, queue)}.QueueName>"
        assert has_metric(body, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=name)
    dlq_rows = [
        r
        for r in metric_rows(body)
        if isinstance(r[-1], dict) and r[-1].get("label") == "DLQ depth"
    ]
    assert dlq_rows
    assert dlq_rows[0][-1]["stat"] == "Maximum"


@pytest.mark.parametrize("metric", ["Errors", "Duration", "Invocations", "Throttles"])
def test_every_function_has_errors_and_duration(full, metric):
    parts, _, body, _ = full
    for function in parts.functions.values():
        ref = f"<Ref:{logical_id(parts.stack, function)}>"
        assert has_metric(body, "AWS/Lambda", metric, FunctionName=ref), function.node.id


def test_alarm_status_widget(full):
    parts, _, body, _ = full
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert widget["properties"]["alarms"] == [
        f"<GetAtt:{logical_id(parts.stack, parts.alarm)}.Arn>"
    ]


def test_widgets_fit_the_grid(full):
    _, _, body, _ = full
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= 24


def test_variant_name_is_configurable():
    parts = StandIns()
    OperationsDashboard(
        parts.stack, "Ops", dashboard_name="d", endpoint_name=ENDPOINT, endpoint_variant_name="Blue"
    )
    body = dashboard_body(Template.from_stack(parts.stack))
    assert has_metric(
        body, "AWS/SageMaker", "Invocations", EndpointName=ENDPOINT, VariantName="Blue"
    )
    assert not has_metric(body, "AWS/SageMaker", "Invocations", VariantName="AllTraffic")


def test_missing_parts_are_left_out_and_reported():
    parts = StandIns()
    construct = OperationsDashboard(
        parts.stack, "Ops", dashboard_name="d", functions=parts.functions
    )
    body = dashboard_body(Template.from_stack(parts.stack))
    assert construct.missing == ["Training", "Real-time endpoint", "Batch classification"]
    assert not any(
        row[0] in ("AWS/SageMaker", "AWS/States", "AWS/SQS") for row in metric_rows(body)
    )
    assert not [w for w in body["widgets"] if w["type"] == "alarm"]
    assert has_metric(body, "AWS/Lambda", "Errors")


def test_batch_section_without_state_machine_reports_it():
    parts = StandIns()
    construct = OperationsDashboard(
        parts.stack, "Ops", dashboard_name="d", dead_letter_queue=parts.dlq
    )
    assert construct.missing == [
        "Training",
        "Real-time endpoint",
        "Batch state machine",
        "Lambda functions",
    ]
