"""Serving stack: endpoint (instance type, KMS, blue/green, auto scaling, alarms) and the API."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Token
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from stacks.names import NO_APPROVED_MODEL, release_parameter
from stacks.serving.api import FUNCTION_TIMEOUT, INTEGRATION_TIMEOUT
from tests.infrastructure.conftest import build_app

CONDITION = "HasApprovedModel"
# Everything that exists only once a model is approved.
CONDITIONAL_TYPES = (
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
)


@pytest.fixture(scope="module")
def template(template_of) -> Template:
    return template_of("serving")


@pytest.fixture(scope="module")
def resources(template) -> dict[str, dict]:
    return template.to_json()["Resources"]


def _only(template: Template, type_: str) -> dict:
    (resource,) = template.find_resources(type_).values()
    return resource


def _logical_id(template: Template, type_: str, prefix: str = "") -> str:
    (logical_id,) = [lid for lid in template.find_resources(type_) if lid.startswith(prefix)]
    return logical_id


PACKAGE = "arn:aws:sagemaker:us-east-1:111122223333:model-package/grocery-classifier/7"


def _concrete_name(value) -> str:
    """A Model/EndpointConfig name with the release record at version 7 (Select/Split/Join)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        assert value["Ref"] == "ReleasedModelPackageArn"
        return PACKAGE
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_concrete_name(part) for part in parts)
    if "Fn::Select" in value:
        index, source = value["Fn::Select"]
        separator, text = source["Fn::Split"]
        return _concrete_name(text).split(separator)[int(index)]
    raise AssertionError(value)


def _logical_id_of(resources, type_: str) -> str:
    (logical_id,) = [lid for lid, r in resources.items() if r["Type"] == type_]
    return logical_id


class TestModelFromThePackage:
    def test_cloudformation_declares_the_model_from_the_released_version(self, template):
        model = _only(template, "AWS::SageMaker::Model")
        assert model["Condition"] == CONDITION
        props = model["Properties"]
        assert props["PrimaryContainer"] == {"ModelPackageName": {"Ref": "ReleasedModelPackageArn"}}
        assert props["EnableNetworkIsolation"] is True
        assert "ModelRole" in json.dumps(props["ExecutionRoleArn"])
        assert _concrete_name(props["ModelName"]) == "grocery-classifier-v7"


class TestApprovedModelPointer:
    def test_read_from_ssm_at_deploy_time(self, template):
        parameters = template.to_json()["Parameters"]
        for name in ("ReleasedModelPackageArn", "ReleasedLabelsUri"):
            assert parameters[name]["Type"] == "AWS::SSM::Parameter::Value<String>"
        assert parameters["ReleasedModelPackageArn"]["Default"] == release_parameter(
            "grocery", "model-package-arn"
        )
        assert parameters["ReleasedLabelsUri"]["Default"] == release_parameter(
            "grocery", "labels-uri"
        )

    def test_condition_is_both_pointers_set(self, template):
        condition = json.dumps(template.to_json()["Conditions"][CONDITION])
        assert condition.count(f'"{NO_APPROVED_MODEL}"') == 2
        assert '"Ref": "ReleasedModelPackageArn"' in condition
        assert '"Ref": "ReleasedLabelsUri"' in condition
        assert "Fn::Not" in condition

    @pytest.mark.parametrize("type_", CONDITIONAL_TYPES)
    def test_endpoint_resources_share_the_condition(self, template, type_):
        for resource in template.find_resources(type_).values():
            assert resource["Condition"] == CONDITION

    def test_every_endpoint_alarm_and_policy_on_them_is_conditional(self, resources):
        for logical_id, resource in resources.items():
            if logical_id.startswith("ClassifierAlarms") or resource["Type"] in CONDITIONAL_TYPES:
                assert resource.get("Condition") == CONDITION, logical_id

    def test_unconditional_resources_never_reference_conditional_ones_directly(self, resources):
        conditional = {lid for lid, r in resources.items() if r.get("Condition") == CONDITION}
        for logical_id, resource in resources.items():
            if resource.get("Condition") == CONDITION:
                continue
            assert not set(resource.get("DependsOn", [])) & conditional, logical_id
            text = json.dumps(resource.get("Properties", {}))
            for target in conditional:
                if f'"{target}"' in text:
                    # Only inside Fn::If on the same condition.
                    assert f'"Fn::If": ["{CONDITION}"' in text, (logical_id, target)


class TestEndpointConfig:
    def test_instance_type_count_and_model(self, template):
        (variant,) = _only(template, "AWS::SageMaker::EndpointConfig")["Properties"][
            "ProductionVariants"
        ]
        assert variant["InstanceType"] == "ml.m4.xlarge"
        assert variant["InitialInstanceCount"] == 1
        assert variant["VariantName"] == "AllTraffic"
        model = _logical_id(template, "AWS::SageMaker::Model")
        assert variant["ModelName"] == {"Fn::GetAtt": [model, "ModelName"]}

    def test_storage_volume_uses_the_customer_key(self, template):
        props = _only(template, "AWS::SageMaker::EndpointConfig")["Properties"]
        assert "DataKey" in json.dumps(props["KmsKeyId"])
        assert "Arn" in json.dumps(props["KmsKeyId"])

    @pytest.mark.parametrize("instance_type", ["ml.g4dn.xlarge", "ml.c5d.xlarge", "ml.g5.xlarge"])
    def test_no_key_on_instance_storage(self, instance_type):
        # CreateEndpointConfig fails with KmsKeyId on types with local NVMe storage.
        stacks = build_app({"endpoint_instance_type": instance_type})
        props = _only(Template.from_stack(stacks.serving), "AWS::SageMaker::EndpointConfig")
        assert "KmsKeyId" not in props["Properties"]

    def test_named_after_the_version_so_a_new_release_replaces_it(self, template):
        props = _only(template, "AWS::SageMaker::EndpointConfig")["Properties"]
        model = _only(template, "AWS::SageMaker::Model")["Properties"]
        assert props["EndpointConfigName"] == model["ModelName"]
        assert _concrete_name(props["EndpointConfigName"]) == "grocery-classifier-v7"

    def test_instance_type_from_configuration(self):
        stacks = build_app({"endpoint_instance_type": "ml.c5.xlarge"})
        Template.from_stack(stacks.serving).has_resource_properties(
            "AWS::SageMaker::EndpointConfig",
            {"ProductionVariants": [Match.object_like({"InstanceType": "ml.c5.xlarge"})]},
        )


class TestEndpoint:
    def test_fixed_name_and_the_generated_config(self, template, stacks):
        props = _only(template, "AWS::SageMaker::Endpoint")["Properties"]
        assert props["EndpointName"] == "grocery-classifier" == stacks.serving.endpoint_name
        config_id = _logical_id(template, "AWS::SageMaker::EndpointConfig")
        assert props["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}

    def test_updates_keep_the_autoscaled_instance_count(self, template):
        props = _only(template, "AWS::SageMaker::Endpoint")["Properties"]
        assert props["RetainAllVariantProperties"] is True

    def test_blue_green_with_a_baking_period_and_rollback_on_both_alarms(self, template):
        deployment = _only(template, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
        policy = deployment["BlueGreenUpdatePolicy"]
        routing = policy["TrafficRoutingConfiguration"]
        assert routing["Type"] == "ALL_AT_ONCE"
        assert routing["WaitIntervalInSeconds"] >= 300
        assert policy["MaximumExecutionTimeoutInSeconds"] > routing["WaitIntervalInSeconds"]
        rollback = [a["AlarmName"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]]
        alarm_ids = {
            lid for lid in template.find_resources("AWS::CloudWatch::Alarm") if "Classifier" in lid
        }
        assert {ref["Ref"] for ref in rollback} == alarm_ids
        assert len(alarm_ids) == 2

    def test_stack_exposes_a_plain_endpoint_name(self, stacks):
        assert not Token.is_unresolved(stacks.serving.endpoint_name)


class TestAutoScaling:
    def test_target_tracks_the_variant(self, template):
        props = _only(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
        assert (props["MinCapacity"], props["MaxCapacity"]) == (1, 2)
        assert props["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
        assert props["ServiceNamespace"] == "sagemaker"
        endpoint_id = _logical_id(template, "AWS::SageMaker::Endpoint")
        assert props["ResourceId"] == {
            "Fn::Join": [
                "",
                [
                    "endpoint/",
                    {"Fn::GetAtt": [endpoint_id, "EndpointName"]},
                    "/variant/AllTraffic",
                ],
            ]
        }
        assert "RoleARN" not in props  # the service-linked role

    def test_policy_is_target_tracking_on_invocations_per_instance(self, template):
        props = _only(template, "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"]
        assert props["PolicyType"] == "TargetTrackingScaling"
        target_id = _logical_id(template, "AWS::ApplicationAutoScaling::ScalableTarget")
        assert props["ScalingTargetId"] == {"Ref": target_id}
        tracking = props["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["TargetValue"] == 100
        assert tracking["PredefinedMetricSpecification"] == {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        }

    def test_bounds_and_target_from_configuration(self):
        stacks = build_app(
            {
                "endpoint_min_instances": "2",
                "endpoint_max_instances": "5",
                "endpoint_invocations_per_instance_target": "40",
            }
        )
        template = Template.from_stack(stacks.serving)
        target = _only(template, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 5)
        policy = _only(template, "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"]
        assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 40
        template.has_resource_properties(
            "AWS::SageMaker::EndpointConfig",
            {"ProductionVariants": [Match.object_like({"InitialInstanceCount": 2})]},
        )

    def test_min_equal_to_max_means_a_fixed_fleet(self):
        stacks = build_app({"endpoint_min_instances": "2", "endpoint_max_instances": "2"})
        template = Template.from_stack(stacks.serving)
        template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)
        template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 0)
        template.resource_count_is("AWS::SageMaker::Endpoint", 1)


class TestAlarms:
    @pytest.mark.parametrize(
        ("name", "metric", "statistic"),
        [
            ("grocery-classifier-5xx-errors", "Invocation5XXErrors", "Sum"),
            ("grocery-classifier-model-latency", "ModelLatency", "p90"),
        ],
    )
    def test_endpoint_alarm_notifies_the_topic(self, template, name, metric, statistic):
        (alarm,) = [
            a
            for a in template.find_resources("AWS::CloudWatch::Alarm").values()
            if a["Properties"].get("AlarmName") == name
        ]
        props = alarm["Properties"]
        assert props["Namespace"] == "AWS/SageMaker"
        assert props["MetricName"] == metric
        stat = props.get("Statistic") or props.get("ExtendedStatistic")
        assert stat == statistic
        assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == {
            "EndpointName": "grocery-classifier",
            "VariantName": "AllTraffic",
        }
        assert props["TreatMissingData"] == "notBreaching"
        (action,) = props["AlarmActions"]
        assert "NotificationsTopic" in json.dumps(action) or "Notifications" in json.dumps(action)

    def test_function_errors_alarm_is_unconditional(self, resources):
        (alarm,) = [
            r for lid, r in resources.items() if lid.startswith("ClassifyApiFunctionErrors")
        ]
        assert "Condition" not in alarm
        assert alarm["Properties"]["MetricName"] == "Errors"
        assert alarm["Properties"]["AlarmActions"]

    def test_model_role_may_read_the_rollback_alarms(self, template):
        policies = [
            p
            for lid, p in template.find_resources("AWS::IAM::Policy").items()
            if lid.startswith("ClassifierRollbackAlarmsReadable")
        ]
        (policy,) = policies
        assert policy["Condition"] == CONDITION
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "cloudwatch:DescribeAlarms"
        assert len(statement["Resource"]) == 2
        assert "ModelRole" in json.dumps(policy["Properties"]["Roles"])


class TestApi:
    def test_method_is_iam_authorized_and_validated(self, template):
        props = _only(template, "AWS::ApiGateway::Method")["Properties"]
        assert props["HttpMethod"] == "POST"
        assert props["AuthorizationType"] == "AWS_IAM"
        assert props["RequestParameters"]["method.request.header.Content-Type"] is True
        assert "RequestValidatorId" in props
        validator = _only(template, "AWS::ApiGateway::RequestValidator")["Properties"]
        assert validator["ValidateRequestParameters"] is True

    def test_only_one_method_exists(self, template):
        template.resource_count_is("AWS::ApiGateway::Method", 1)

    def test_lambda_timeout_is_below_the_integration_timeout(self, template, resources):
        integration = _only(template, "AWS::ApiGateway::Method")["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        (function,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
        timeout_ms = integration.get("TimeoutInMillis", 29000)
        assert timeout_ms == INTEGRATION_TIMEOUT.to_milliseconds()
        assert function["Properties"]["Timeout"] * 1000 < timeout_ms
        assert function["Properties"]["Timeout"] == FUNCTION_TIMEOUT.to_seconds()

    def test_binary_images_reach_the_lambda(self, template):
        props = _only(template, "AWS::ApiGateway::RestApi")["Properties"]
        assert {"image/jpeg", "image/png"} <= set(props["BinaryMediaTypes"])

    def test_stage_is_throttled_traced_and_access_logged_to_an_encrypted_group(
        self, template, resources
    ):
        stage = _only(template, "AWS::ApiGateway::Stage")["Properties"]
        (settings,) = stage["MethodSettings"]
        assert settings["ThrottlingRateLimit"] > 0
        assert settings["ThrottlingBurstLimit"] >= settings["ThrottlingRateLimit"]
        assert stage["TracingEnabled"] is True
        (log_group_id,) = [
            part["Ref"]
            for part in stage["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
            if isinstance(part, dict) and part.get("Ref", "").startswith("ClassifyApiAccessLogs")
        ]
        assert "DataKey" in json.dumps(resources[log_group_id]["Properties"]["KmsKeyId"])
        assert "userArn" in stage["AccessLogSetting"]["Format"]

    def test_throttled_requests_get_retry_after(self, template):
        template.has_resource_properties(
            "AWS::ApiGateway::GatewayResponse",
            {
                "ResponseType": "THROTTLED",
                "ResponseParameters": {"gatewayresponse.header.Retry-After": "'1'"},
            },
        )

    def test_only_api_gateway_may_invoke_the_function(self, template):
        (permission,) = template.find_resources("AWS::Lambda::Permission").values()
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
        assert "/POST/classify" in json.dumps(permission["Properties"]["SourceArn"])


class TestFunction:
    def test_environment_points_at_the_approved_model(self, resources):
        (function,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
        env = function["Properties"]["Environment"]["Variables"]
        model = _logical_id_of(resources, "AWS::SageMaker::Model")
        assert env["MODEL_NAME"] == {
            "Fn::If": [CONDITION, {"Fn::GetAtt": [model, "ModelName"]}, NO_APPROVED_MODEL]
        }
        assert env["LABELS_URI"] == {"Ref": "ReleasedLabelsUri"}
        # Through the endpoint's attribute: the function is updated after the endpoint.
        assert env["ENDPOINT_NAME"]["Fn::If"][0] == CONDITION
        assert env["ENDPOINT_NAME"]["Fn::If"][1]["Fn::GetAtt"][1] == "EndpointName"
        assert env["ENDPOINT_NAME"]["Fn::If"][2] == NO_APPROVED_MODEL

    def test_may_invoke_only_this_endpoint(self, template):
        statements = [
            s
            for p in template.find_resources("AWS::IAM::Policy").values()
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if "sagemaker:InvokeEndpoint" in json.dumps(s["Action"])
        ]
        (statement,) = statements
        assert statement["Action"] == "sagemaker:InvokeEndpoint"
        assert json.dumps(statement["Resource"]).endswith(':endpoint/grocery-classifier"]]}')

    def test_may_read_exactly_the_approved_labels(self, resources):
        (policy,) = [
            r for lid, r in resources.items() if lid.startswith("ClassifyApiReadApprovedLabels")
        ]
        assert policy["Condition"] == CONDITION
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "s3:GetObject"
        resource = json.dumps(statement["Resource"])
        assert "ReleasedLabelsUri" in resource
        assert "*" not in resource

    def test_stack_exposes_the_function(self, stacks):
        assert isinstance(stacks.serving.api_function, lambda_.Function)


class TestOutputsAndOrder:
    def test_outputs_for_the_client(self, template):
        outputs = template.to_json()["Outputs"]
        assert outputs["ApiUrl"]["Value"]["Fn::Join"][1][-1] == "/classify"
        assert outputs["EndpointName"]["Value"] == {
            "Fn::If": [CONDITION, "grocery-classifier", NO_APPROVED_MODEL]
        }
        assert outputs["ModelName"]["Value"]["Fn::If"][0] == CONDITION
        assert _concrete_name(outputs["ModelName"]["Value"]["Fn::If"][1]) == "grocery-classifier-v7"

    def test_nothing_is_exported_to_monitoring(self, stacks):
        # An export in use blocks replacing its resource ("Export ... in use") and makes
        # destroying Serving cascade; Monitoring names the function and alarms instead.
        monitoring = json.dumps(Template.from_stack(stacks.monitoring).to_json())
        assert f"{stacks.serving.stack_name}:" not in monitoring
        outputs = Template.from_stack(stacks.serving).to_json()["Outputs"]
        assert [name for name, output in outputs.items() if "Export" in output] == []

    def test_deployed_after_training(self, stacks):
        assert stacks.training in stacks.serving.dependencies

    def test_prefix_changes_every_name(self):
        stacks = build_app({"prefix": "shop"})
        template = Template.from_stack(stacks.serving)
        assert stacks.serving.endpoint_name == "shop-classifier"
        assert template.to_json()["Parameters"]["ReleasedModelPackageArn"]["Default"] == (
            "/shop/release/model-package-arn"
        )


def _concrete(value):
    """Intrinsics (Ref, Fn::*) become plain strings, as CloudFormation resolves them."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")):
            return "resolved-by-cloudformation"
        return {key: _concrete(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_concrete(item) for item in value]
    return value


class TestAgainstTheSageMakerApi:
    """The properties CloudFormation passes on, checked against botocore's service model."""

    @staticmethod
    def _errors(operation: str, params: dict) -> str:
        import botocore.session
        from botocore.validate import ParamValidator

        model = botocore.session.get_session().get_service_model("sagemaker")
        shape = model.operation_model(operation).input_shape
        return ParamValidator().validate(params, shape).generate_report()

    def test_endpoint_config(self, template):
        props = _concrete(_only(template, "AWS::SageMaker::EndpointConfig")["Properties"])
        params = {"EndpointConfigName": "generated", **props}
        assert self._errors("CreateEndpointConfig", params) == ""

    def test_endpoint_update(self, template):
        props = _concrete(_only(template, "AWS::SageMaker::Endpoint")["Properties"])
        props.pop("Tags")  # CloudFormation tags the endpoint with AddTags, not UpdateEndpoint
        params = {**props, "EndpointConfigName": "generated"}
        assert self._errors("UpdateEndpoint", params) == ""
