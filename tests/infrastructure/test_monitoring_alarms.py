"""The whole app: every alarm notifies the project's topic, and the one dashboard shows it all."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from stacks.constructs.python_function import PythonFunction
from tests.infrastructure.test_monitoring_dashboard import (
    dashboard_body,
    expressions,
    has_metric,
    metric_rows,
)


@pytest.fixture(scope="module")
def alarms(stacks) -> dict[str, dict]:
    """`<stack>/<logical id>` -> AWS::CloudWatch::Alarm resource, over every stack of the app."""
    found = {}
    for stack in stacks.all():
        for logical_id, resource in (
            Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").items()
        ):
            found[f"{stack.stack_name}/{logical_id}"] = resource
    return found


def _topic_reference(stacks, stack_name: str):
    """How a stack refers to the storage topic: a Ref inside storage, an import elsewhere."""
    (stack,) = [s for s in stacks.all() if s.stack_name == stack_name]
    return stack.resolve(stacks.storage.topic.topic_arn)


def test_the_app_has_alarms(alarms):
    assert len(alarms) >= 3, sorted(alarms)


def test_every_alarm_notifies_the_project_topic(stacks, alarms):
    for name, alarm in alarms.items():
        topic = _topic_reference(stacks, name.split("/")[0])
        assert "Fn::ImportValue" in topic or "Ref" in topic
        actions = alarm["Properties"].get("AlarmActions", [])
        assert actions, f"{name} notifies nobody"
        assert all(action == topic for action in actions), (name, actions, topic)
        assert alarm["Properties"].get("ActionsEnabled", True) is not False, name


def test_dead_letter_queue_depth_has_an_alarm(stacks, alarms):
    dlq = stacks.batch.resolve(stacks.batch.dead_letter_queue.queue_name)
    dlq_alarms = [
        name
        for name, alarm in alarms.items()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and {"Name": "QueueName", "Value": dlq} in alarm["Properties"].get("Dimensions", [])
    ]
    assert dlq_alarms


def test_email_subscription_comes_from_configuration():
    from tests.infrastructure.conftest import build_app

    stacks = build_app({"alarm_email": "ops@example.com"})
    Template.from_stack(stacks.storage).has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "ops@example.com"},
    )


class TestAppDashboard:
    @pytest.fixture(scope="class")
    @staticmethod
    def body(template_of):
        return dashboard_body(template_of("monitoring"))

    def test_nothing_is_missing_or_skipped(self, stacks):
        assert stacks.monitoring.operations.missing == []
        assert stacks.monitoring.skipped == []

    @pytest.mark.parametrize("part", ["training", "batch"])
    def test_state_machine_outcomes(self, stacks, body, part):
        machine = getattr(stacks, part).state_machine
        arn = stacks.monitoring.resolve(machine.state_machine_arn)["Fn::ImportValue"]
        for metric in ("ExecutionsSucceeded", "ExecutionsFailed"):
            assert has_metric(body, "AWS/States", metric, StateMachineArn=f"<Import:{arn}>")

    def test_endpoint_of_the_serving_stack(self, stacks, body):
        for metric in ("Invocations", "ModelLatency", "Invocation4XXErrors", "Invocation5XXErrors"):
            assert has_metric(
                body,
                "AWS/SageMaker",
                metric,
                EndpointName=stacks.serving.endpoint_name,
                VariantName="AllTraffic",
            )
        assert "invocations / perInstance" in expressions(body)

    def test_training_jobs_are_searched_by_their_name_prefix(self, body):
        searches = [e for e in expressions(body) if e.startswith("SEARCH(")]
        assert searches
        assert all("Host=grocery-train-" in e for e in searches)

    def test_dead_letter_queue_depth(self, stacks, body):
        dlq = stacks.monitoring.resolve(stacks.batch.dead_letter_queue.queue_name)
        assert has_metric(
            body,
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            QueueName=f"<Import:{dlq['Fn::ImportValue']}>",
        )

    def test_every_product_function_has_errors_and_duration(self, stacks, body):
        functions = [
            construct
            for stack in (stacks.training, stacks.serving, stacks.batch)
            for construct in stack.node.find_all()
            if isinstance(construct, PythonFunction)
        ]
        assert len(functions) >= 3  # classify API, batch trigger, batch decode at least
        for metric in ("Errors", "Duration"):
            rows = [r for r in metric_rows(body) if r[:2] == ["AWS/Lambda", metric]]
            assert len(rows) == len(functions), metric

    def test_every_alarm_is_on_the_dashboard(self, alarms, body):
        (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
        assert len(widget["properties"]["alarms"]) == len(alarms)
