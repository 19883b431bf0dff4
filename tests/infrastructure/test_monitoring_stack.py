"""MonitoringStack: finds the product's functions and alarms in the stacks it watches."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, CfnCondition, Fn, Stack
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


def _alarm(scope, construct_id: str, function: PythonFunction, **kwargs) -> cloudwatch.Alarm:
    return cloudwatch.Alarm(
        scope,
        construct_id,
        metric=function.function.metric_errors(),
        threshold=1,
        evaluation_periods=1,
        **kwargs,
    )


@pytest.fixture(scope="module")
def parts():
    app = App()
    watched = Stack(app, "Serving")
    key = kms.Key(watched, "Key")
    condition = CfnCondition(watched, "Approved", expression=Fn.condition_equals("a", "b"))
    functions = {
        name: PythonFunction(
            watched, name, handler="pkg.handler.handler", description=name, key=key, service=name
        )
        for name in ("ClassifyFunction", "DecodeFunction", "OnlyWhenApproved")
    }
    functions["OnlyWhenApproved"].function.node.default_child.cfn_options.condition = condition
    functions["Named"] = PythonFunction(
        watched,
        "Named",
        handler="pkg.handler.handler",
        description="named",
        key=key,
        service="named",
        function_name="grocery-named",
    )
    plain = _alarm(watched, "ErrorsAlarm", functions["ClassifyFunction"])
    named = _alarm(
        watched, "NamedAlarm", functions["DecodeFunction"], alarm_name="grocery-endpoint-5xx-errors"
    )
    named.node.default_child.cfn_options.condition = condition
    hidden = _alarm(watched, "ConditionalUnnamed", functions["DecodeFunction"])
    hidden.node.default_child.cfn_options.condition = condition
    monitoring = MonitoringStack(
        app, "Monitoring", config=Config(), watched=[watched], endpoint_name="grocery-endpoint"
    )
    return {
        "watched": watched,
        "functions": functions,
        "alarms": (plain, named, hidden),
        "monitoring": monitoring,
        "template": Template.from_stack(monitoring),
    }


def test_functions_are_found_and_conditional_ones_skipped(parts):
    found, skipped = product_functions([parts["watched"]])
    functions = parts["functions"]
    named = found.pop("Serving/Named")
    assert found == {
        "Serving/ClassifyFunction": functions["ClassifyFunction"].function,
        "Serving/DecodeFunction": functions["DecodeFunction"].function,
    }
    # A fixed name stands for the function: no reference into the watched stack.
    assert named == "grocery-named"
    assert skipped == ["Serving/OnlyWhenApproved"]


def test_named_function_reaches_the_dashboard_without_an_export(parts):
    body = json.dumps(dashboard_body(parts["template"]))
    assert '"grocery-named"' in body
    assert "Import:Serving:ExportsOutputRefNamed" not in body


def test_alarms_are_found(parts):
    assert product_alarms([parts["watched"]]) == list(parts["alarms"])


def test_alarm_widget_references_by_export_or_by_name(parts):
    body = dashboard_body(parts["template"])
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    exported, by_name = widget["properties"]["alarms"]
    assert exported.startswith("<Import:Serving:ExportsOutputFnGetAttErrorsAlarm")
    # Built from the fixed name in the monitoring stack: no export of a conditional resource.
    assert by_name == (
        "arn:<Ref:AWS::Partition>:cloudwatch:<Ref:AWS::Region>:<Ref:AWS::AccountId>"
        ":alarm:grocery-endpoint-5xx-errors"
    )
    assert parts["monitoring"].skipped == [
        "Serving/OnlyWhenApproved",
        "Serving/ConditionalUnnamed",
    ]


def test_no_conditional_resource_is_exported(parts):
    outputs = Template.from_stack(parts["watched"]).to_json().get("Outputs", {})
    resources = Template.from_stack(parts["watched"]).to_json()["Resources"]
    conditional = {lid for lid, r in resources.items() if "Condition" in r}
    for output in outputs.values():
        assert not (
            str(output["Value"]) and any(lid in str(output["Value"]) for lid in conditional)
        )


def test_dashboard_shows_the_functions_across_stacks(parts):
    template = parts["template"]
    template.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": dashboard_name("grocery")}
    )
    body = dashboard_body(template)
    (errors,) = [w for w in body["widgets"] if w["properties"].get("title") == "Errors"]
    assert [m[-1]["label"] for m in errors["properties"]["metrics"]] == [
        "Serving/ClassifyFunction",
        "Serving/DecodeFunction",
        "Serving/Named",
    ]
    assert has_metric(body, "AWS/SageMaker", "ModelLatency", EndpointName="grocery-endpoint")
    assert parts["monitoring"].operations.missing == ["Training", "Batch classification"]


def test_dashboard_outputs(parts):
    outputs = parts["template"].to_json()["Outputs"]
    assert outputs["DashboardName"]["Value"] == "grocery-operations"
    url = outputs["DashboardUrl"]["Value"]["Fn::Join"][1]
    assert "#dashboards:name=grocery-operations" in "".join(p for p in url if isinstance(p, str))
