"""endpoint_schedule (realtime): scheduled actions on the variant's scalable target, in a bare
stack with only the endpoint (no app build)."""

from __future__ import annotations

import botocore.session
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from botocore.validate import ParamValidator

from stacks.config import Config
from stacks.serving.approved_model import ApprovedModel
from stacks.serving.endpoint import ClassifierEndpoint


def _template(config: Config) -> dict:
    stack = Stack(App(), "Bare")
    role = iam.Role(stack, "ModelRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    model = ApprovedModel(stack, "Model", prefix="grocery", model_role=role)
    ClassifierEndpoint(
        stack,
        "Classifier",
        config=config,
        model=model,
        key=kms.Key(stack, "Key"),
        topic=sns.Topic(stack, "Topic"),
        model_role=role,
    )
    return Template.from_stack(stack).to_json()["Resources"]


def _targets(resources: dict) -> list[dict]:
    return [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    ]


def test_in_service_hours_restore_capacity_and_off_hours_keep_one_instance():
    config = Config(
        endpoint_min_instances=2, endpoint_max_instances=4, endpoint_schedule="7-19 MON-FRI"
    )
    (target,) = _targets(_template(config))
    actions = {a["ScheduledActionName"]: a for a in target["ScheduledActions"]}
    assert actions["grocery-classifier-in-service"]["Schedule"] == "cron(0 7 ? * MON-FRI *)"
    assert actions["grocery-classifier-in-service"]["ScalableTargetAction"] == {
        "MinCapacity": 2,
        "MaxCapacity": 4,
    }
    assert actions["grocery-classifier-off-hours"]["Schedule"] == "cron(0 19 ? * MON-FRI *)"
    assert actions["grocery-classifier-off-hours"]["ScalableTargetAction"] == {
        "MinCapacity": 1,
        "MaxCapacity": 1,
    }
    model = botocore.session.get_session().get_service_model("application-autoscaling")
    shape = model.operation_model("PutScheduledAction").input_shape
    for action in actions.values():
        params = {
            "ServiceNamespace": "sagemaker",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "ResourceId": "endpoint/grocery-classifier/variant/AllTraffic",
            **action,
        }
        report = ParamValidator().validate(params, shape)
        assert not report.has_errors(), report.generate_report()


def test_a_fixed_size_endpoint_gets_a_target_for_its_schedule_but_no_policy():
    resources = _template(
        Config(endpoint_min_instances=2, endpoint_max_instances=2, endpoint_schedule="8-18")
    )
    (target,) = _targets(resources)
    assert len(target["ScheduledActions"]) == 2
    assert not [r for r in resources.values() if r["Type"].endswith("ScalingPolicy")]


def test_no_schedule_no_actions():
    (target,) = _targets(_template(Config()))
    assert "ScheduledActions" not in target
