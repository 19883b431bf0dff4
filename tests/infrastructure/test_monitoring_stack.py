"""MonitoringStack: finds the product's functions and alarms in the stacks it watches."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from stacks.config import Config
from stacks.constructs.python_function import PythonFunction
from stacks.monitoring_stack import (
    MonitoringStack,
    dashboard_name,
    product_alarms,
    product_functions,
)
from tests.infrastructure.test_monitoring_dashboard import dashboard_body, has_metric


@pytest.fixture(scope="module")
def app_parts():
    app = App()
    watched = Stack(app, "Serving")
    key = kms.Key(watched, "Key")
    functions = [
        PythonFunction(
            watched,
            name,
            handler="pkg.handler.handler",
            description=name,
            key=key,
            service=name,
        )
        for name in ("ClassifyFunction", "DecodeFunction")
    ]
    alarm = cloudwatch.Alarm(
        watched,
        "ErrorsAlarm",
        metric=functions[0].function.metric_errors(),
        threshold=1,
        evaluation_periods=1,
    )
    monitoring = MonitoringStack(
        app, "Monitoring", config=Config(), watched=[watched], endpoint_name="grocery-endpoint"
    )
    return watched, functions, alarm, monitoring


def test_functions_are_found_by_stack_and_construct_id(app_parts):
    watched, functions, _, _ = app_parts
    found = product_functions([watched])
    assert found == {
        "Serving/ClassifyFunction": functions[0].function,
        "Serving/DecodeFunction": functions[1].function,
    }


def test_alarms_are_found(app_parts):
    watched, _, alarm, _ = app_parts
    assert product_alarms([watched]) == [alarm]


def test_dashboard_shows_them_across_stacks(app_parts):
    _, _, _, monitoring = app_parts
    template = Template.from_stack(monitoring)
    template.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": dashboard_name("grocery")}
    )
    body = dashboard_body(template)
    lambda_rows = [r for r in body["widgets"] if r["properties"].get("title") == "Errors"]
    assert len(lambda_rows[0]["properties"]["metrics"]) == 2
    assert has_metric(body, "AWS/SageMaker", "ModelLatency", EndpointName="grocery-endpoint")
    (alarms,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    (arn,) = alarms["properties"]["alarms"]
    assert arn.startswith("<Import:Serving:ExportsOutputFnGetAttErrorsAlarm")
    assert monitoring.operations.missing == ["Training", "Batch classification"]


def test_dashboard_outputs(app_parts):
    _, _, _, monitoring = app_parts
    outputs = Template.from_stack(monitoring).to_json()["Outputs"]
    assert outputs["DashboardName"]["Value"] == "grocery-operations"
    url = outputs["DashboardUrl"]["Value"]["Fn::Join"][1]
    assert "#dashboards:name=grocery-operations" in "".join(p for p in url if isinstance(p, str))
