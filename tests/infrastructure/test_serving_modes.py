"""serving_mode=serverless and =async: the whole app built once per mode (the access tests'
fixed account and region) and put through what the default app goes through: CDK
assertions, botocore validation of the SageMaker / Application Auto Scaling parameters,
cdk-nag, cfn-lint and the access paths (calls.yaml entries `only_with` the mode included).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import botocore.session
import pytest
from aws_cdk.assertions import Template
from botocore.validate import ParamValidator
from cdk_nag import AwsSolutionsChecks

from stacks.application import GroceryStacks
from tests.access.app import CONTEXT, access_model
from tests.access.calls import listed_calls, load_document, render
from tests.access.evaluator import evaluate, failures
from tests.access.policies import AccessModel
from tests.access.service_calls import derived_service_calls, kms_calls
from tests.access.state_machine_calls import state_machine_calls
from tests.infrastructure.conftest import build_app
from tests.support.mode_apps import MODE_CONTEXTS, mode_app

SERVING = "Grocery-Serving"
MODES = {mode: MODE_CONTEXTS[mode] for mode in ("serverless", "async")}


@dataclasses.dataclass
class ModeApp:
    mode: str
    config: dict[str, str]
    stacks: GroceryStacks
    model: AccessModel

    def template(self, stack: str = "serving") -> dict[str, Any]:
        return Template.from_stack(getattr(self.stacks, stack)).to_json()

    def resolved(self, type_: str) -> list[dict[str, Any]]:
        """Properties of the serving stack's resources of this type, every intrinsic resolved
        (a deployed account with version 3 released)."""
        resources = self.model.resolver.stacks[SERVING].resources.values()
        return [r["Properties"] for r in resources if r["Type"] == type_]


@pytest.fixture(scope="module", params=sorted(MODES))
def app(request) -> ModeApp:
    config = MODES[request.param]
    stacks = build_app({**CONTEXT, **config})
    return ModeApp(request.param, config, stacks, access_model(stacks))


@pytest.fixture(scope="module")
def agnostic(app) -> GroceryStacks:
    """The same mode without a pinned account and region, as `cdk synth -c serving_mode=...`
    builds it (cdk-nag's acknowledgments name the <AWS::Region>-style ARNs of that build)."""
    return mode_app(app.mode)


def _validate(service: str, operation: str, params: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def _only(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


# --- the endpoint in each mode ------------------------------------------------------------


def test_endpoint_config_per_mode_is_valid_for_sagemaker(app):
    config = _only(app.resolved("AWS::SageMaker::EndpointConfig"))
    _validate("sagemaker", "CreateEndpointConfig", config)
    (variant,) = config["ProductionVariants"]
    assert variant["ModelName"] == config["EndpointConfigName"] == "grocery-classifier-v3"
    if app.mode == "serverless":
        assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
        assert "InstanceType" not in variant
        assert "InitialInstanceCount" not in variant
        # Serverless Inference takes no KMS key.
        assert "KmsKeyId" not in config
        assert "AsyncInferenceConfig" not in config
    else:
        assert variant["InstanceType"] == "ml.m4.xlarge"
        key = app.model.arn("Grocery-Storage/DataKey")
        bucket = app.model.ref("Grocery-Storage/Inference")
        output = config["AsyncInferenceConfig"]["OutputConfig"]
        assert output == {
            "S3OutputPath": f"s3://{bucket}/async-output",
            "S3FailurePath": f"s3://{bucket}/async-failures",
            "KmsKeyId": key,
            "NotificationConfig": {
                "SuccessTopic": app.model.arn("Grocery-Storage/Notifications"),
                "ErrorTopic": app.model.arn("Grocery-Storage/Notifications"),
            },
        }
        assert config["KmsKeyId"] == key


def test_blue_green_update_is_kept_and_valid(app):
    endpoint = _only(app.resolved("AWS::SageMaker::Endpoint"))
    _validate(
        "sagemaker",
        "UpdateEndpoint",
        {k: endpoint[k] for k in ("EndpointName", "EndpointConfigName", "DeploymentConfig")}
        | {"RetainAllVariantProperties": endpoint["RetainAllVariantProperties"]},
    )
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    alarms = endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert len(alarms) == 2
    # Serverless keeps no instance count, and must take a changed memory size.
    assert endpoint["RetainAllVariantProperties"] is (app.mode == "async")


def test_model_network_isolation_only_where_supported(app):
    model = _only(app.resolved("AWS::SageMaker::Model"))
    assert model["EnableNetworkIsolation"] is (app.mode != "serverless")


def test_scaling_per_mode(app):
    targets = app.resolved("AWS::ApplicationAutoScaling::ScalableTarget")
    policies = app.resolved("AWS::ApplicationAutoScaling::ScalingPolicy")
    if app.mode == "serverless":
        assert targets == []
        assert policies == []
        return
    target = _only(targets)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 3)
    _validate(
        "application-autoscaling",
        "RegisterScalableTarget",
        {k: target[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
        | {"MinCapacity": 0, "MaxCapacity": 3},
    )
    by_type = {policy["PolicyType"]: policy for policy in policies}
    assert set(by_type) == {"TargetTrackingScaling", "StepScaling"}
    tracking = by_type["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    metric = tracking["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert metric["Dimensions"] == [{"Name": "EndpointName", "Value": "grocery-classifier"}]
    step = by_type["StepScaling"]
    for policy in by_type.values():
        config_key = f"{policy['PolicyType']}PolicyConfiguration".replace(
            "TargetTrackingScaling", "TargetTrackingScaling"
        )
        _validate(
            "application-autoscaling",
            "PutScalingPolicy",
            {
                "PolicyName": policy["PolicyName"],
                "PolicyType": policy["PolicyType"],
                "ServiceNamespace": "sagemaker",
                "ResourceId": target["ResourceId"],
                "ScalableDimension": target["ScalableDimension"],
                config_key: policy[config_key],
            },
        )
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}
    ]
    # The alarm that starts the first instance acts on the step policy (its Ref is the ARN).
    alarms = [
        alarm
        for alarm in app.resolved("AWS::CloudWatch::Alarm")
        if alarm["MetricName"] == "HasBacklogWithoutCapacity"
    ]
    alarm = _only(alarms)
    assert alarm["AlarmName"] == "grocery-classifier-backlog-without-capacity"
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "grocery-classifier"}]
    assert len(alarm["AlarmActions"]) == 1
    assert alarm["ComparisonOperator"].startswith("Greater")
    raw = app.template()["Resources"]
    (step_id,) = [
        lid
        for lid, r in raw.items()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
        and r["Properties"]["PolicyType"] == "StepScaling"
    ]
    (raw_alarm,) = [
        r
        for r in raw.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["MetricName"] == "HasBacklogWithoutCapacity"
    ]
    assert raw_alarm["Properties"]["AlarmActions"] == [{"Ref": step_id}]
    assert raw_alarm["Condition"] == "HasApprovedModel"


# --- the API in each mode -------------------------------------------------------------------


def test_the_function_knows_the_mode(app):
    (function,) = [
        f
        for f in app.resolved("AWS::Lambda::Function")
        if f["Handler"] == "classify_api.handler.handler"
    ]
    env = function["Environment"]["Variables"]
    assert env["SERVING_MODE"] == app.mode
    assert ("INFERENCE_BUCKET" in env) is (app.mode == "async")


def test_results_route_exists_in_async_mode_only(app):
    resources = app.template()["Resources"]
    paths = {
        r["Properties"]["PathPart"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Resource"
    }
    methods = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method"
    ]
    if app.mode == "async":
        assert {"classify", "results", "{request_id}"} <= paths
        assert {m["HttpMethod"] for m in methods} == {"POST", "GET"}
        assert {m["AuthorizationType"] for m in methods} == {"AWS_IAM"}
    else:
        assert paths == {"classify"}
        assert [m["HttpMethod"] for m in methods] == ["POST"]


# --- the gates ------------------------------------------------------------------------------


def test_every_stack_passes_cdk_nag(agnostic):
    findings = {}
    for stack in agnostic.all():
        report = AwsSolutionsChecks().validate_scope(stack)
        findings[stack.stack_name] = [
            f"{v.rule_name}: {r.construct_path}"
            for v in report.violations
            for r in v.violating_resources
        ]
    assert findings == {stack.stack_name: [] for stack in agnostic.all()}


def test_serving_template_passes_cfn_lint(app, tmp_path):
    from cfnlint.api import lint

    path = tmp_path / "Grocery-Serving.template.json"
    path.write_text(json.dumps(app.template()))
    # Errors and warnings, as `make cfn-lint` reports them (informational rules are off).
    # The default region, as `make cfn-lint` lints.
    matches = [m for m in lint(path.read_text(), regions=["us-east-1"]) if m.rule.id[0] in "EW"]
    assert [str(m) for m in matches] == []


def test_access_paths(app):
    document = load_document()
    samples = {path: render(str(v), app.model) for path, v in document["samples"].items()}
    groups = [
        list(state_machine_calls(app.model, samples)),
        derived_service_calls(app.model),
        listed_calls(document, app.model, app.config),
    ]
    calls = [call for group in groups for call in group]
    calls += kms_calls(calls, app.model)
    mode_calls = [c for c in calls if "(async" in c.id or c.id.startswith("async ")]
    assert (len(mode_calls) > 5) is (app.mode == "async")
    report = failures(evaluate(calls, app.model).values())
    assert not report, "\n" + report


def test_budget_alerts_the_topic_in_the_app_that_sets_one(app):
    budgets = app.resolved("AWS::Budgets::Budget")
    if app.mode != "serverless":
        assert budgets == []
        return
    budget = _only(budgets)
    _validate(
        "budgets",
        "CreateBudget",
        {
            "AccountId": "111122223333",
            # CloudFormation takes the amount as a number, the API as a string.
            "Budget": budget["Budget"]
            | {"BudgetLimit": {"Amount": "150", "Unit": budget["Budget"]["BudgetLimit"]["Unit"]}},
            "NotificationsWithSubscribers": budget["NotificationsWithSubscribers"],
        },
    )
    assert budget["Budget"]["BudgetLimit"] == {"Amount": 150, "Unit": "USD"}
    assert budget["Budget"]["CostFilters"] == {"TagKeyValue": ["user:project$grocery"]}
    topic = app.model.arn("Grocery-Storage/Notifications")
    alerts = {
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"])
        for n in budget["NotificationsWithSubscribers"]
    }
    assert alerts == {("ACTUAL", 80), ("FORECASTED", 100)}
    for n in budget["NotificationsWithSubscribers"]:
        assert n["Subscribers"] == [{"SubscriptionType": "SNS", "Address": topic}]
