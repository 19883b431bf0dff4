"""The classification API: an IAM-authorized REST API in front of the classify Lambda.

A REST API rather than a function URL: per-stage throttling with 429 + Retry-After,
access logs with the caller's IAM identity, request validation and binary media types,
all declared here; a function URL offers none of them.
"""

from __future__ import annotations

import json

from aws_cdk import Aws, Duration, Fn, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.config import Config
from stacks.constructs.acknowledge import acknowledge_nag, skip_checkov
from stacks.constructs.log_group import encrypted_log_group
from stacks.constructs.python_function import PythonFunction
from stacks.serving.approved_model import ApprovedModel
from stacks.serving.endpoint import ClassifierEndpoint
from stacks.serving.names import classify_errors_alarm_name, classify_function_name

STAGE_NAME = "v1"
# API Gateway's integration timeout (29 s default and maximum without a quota increase).
INTEGRATION_TIMEOUT = Duration.seconds(29)
# Below the integration timeout, so that API Gateway always gets the Lambda's own answer.
FUNCTION_TIMEOUT = Duration.seconds(25)
# Steady-state requests per second and burst for the whole stage; a 1-2 instance
# ml.m4.xlarge endpoint answers roughly 5-10 images per second per instance.
RATE_LIMIT = 20
BURST_LIMIT = 40
# Bodies of these types reach the Lambda base64-encoded, byte for byte.
BINARY_MEDIA_TYPES = ("image/jpeg", "image/png", "application/x-image", "application/octet-stream")


def _access_log_format() -> apigw.AccessLogFormat:
    f = apigw.AccessLogField
    fields = {
        "requestId": f.context_request_id(),
        "requestTime": f.context_request_time(),
        "ip": f.context_identity_source_ip(),
        "caller": f.context_identity_caller(),
        "userArn": f.context_identity_user_arn(),
        "httpMethod": f.context_http_method(),
        "resourcePath": f.context_resource_path(),
        "status": f.context_status(),
        "responseLength": f.context_response_length(),
        "responseLatency": f.context_response_latency(),
        "integrationStatus": f.context_integration_status(),
        "integrationLatency": f.context_integration_latency(),
        "errorMessage": f.context_error_message(),
    }
    return apigw.AccessLogFormat.custom(json.dumps(fields))


class ClassifyApi(Construct):
    """POST {ApiUrl} with an image body, signed with SigV4 (service `execute-api`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        model: ApprovedModel,
        endpoint: ClassifierEndpoint,
        key: kms.IKey,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function = PythonFunction(
            self,
            "Classify",
            handler="classify_api.handler.handler",
            description="Classifies one JPEG/PNG with the approved model's endpoint",
            key=key,
            service="classify-api",
            timeout=FUNCTION_TIMEOUT,
            memory_size=512,
            # Fixed names: the dashboard refers to them by name, not through an export that
            # would block replacing them and tie Serving's lifetime to Monitoring's.
            function_name=classify_function_name(config.prefix),
            environment={
                # Through Fn::If on the endpoint itself: the function is updated only after
                # the endpoint is in service (first creation, or a promotion's blue/green).
                "ENDPOINT_NAME": model.when_approved(endpoint.endpoint.attr_endpoint_name),
                "MODEL_NAME": model.model_name,
                "LABELS_URI": model.labels_uri,
            },
        )
        role = self.function.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:InvokeEndpoint"],
                resources=[
                    stack.format_arn(
                        service="sagemaker",
                        resource="endpoint",
                        resource_name=endpoint.endpoint_name,
                    )
                ],
            )
        )
        self.labels_policy = self._allow_reading_labels(model, role)
        skip_checkov(
            self.function.function,
            "CKV_AWS_115",
            "No reserved concurrency: a fresh account's concurrency quota is 10 and Lambda "
            "refuses reservations below that floor; the API stage's throttling bounds load.",
        )
        skip_checkov(
            self.function.function,
            "CKV_AWS_116",
            "Invoked synchronously by API Gateway: errors go back to the caller, a DLQ "
            "would never receive anything.",
        )
        skip_checkov(
            self.function.function,
            "CKV_AWS_117",
            "Calls only AWS APIs (SageMaker runtime, S3) over TLS with IAM; a VPC would add "
            "NAT or endpoint costs and no control.",
        )

        self.access_logs = encrypted_log_group(self, "AccessLogs", key=key)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{config.prefix}-classify",
            description="Grocery classifier: POST an image to /classify (IAM/SigV4)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(BINARY_MEDIA_TYPES),
            # Access logging, like execution logging, needs the account's API Gateway
            # CloudWatch Logs role: the storage stack sets it (api_gateway_logging_role),
            # not each API (one setting per account and region).
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=RATE_LIMIT,
                throttling_burst_limit=BURST_LIMIT,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=_access_log_format(),
                tracing_enabled=True,
            ),
        )
        # RestApi's own URL output is the stage root; the stack outputs ApiUrl instead.
        self.api.node.try_remove_child("Endpoint")
        validator = self.api.add_request_validator(
            "RequireContentType", validate_request_parameters=True
        )
        self.method = self.api.root.add_resource("classify").add_method(
            "POST",
            apigw.LambdaIntegration(
                self.function.function,
                proxy=True,
                timeout=INTEGRATION_TIMEOUT,
                allow_test_invoke=False,
            ),
            authorization_type=apigw.AuthorizationType.IAM,
            request_validator=validator,
            request_parameters={
                "method.request.header.Content-Type": True,
                "method.request.querystring.top_k": False,
            },
        )
        self.api.add_gateway_response(
            "Throttled",
            type=apigw.ResponseType.THROTTLED,
            response_headers={"Retry-After": "'1'"},
            templates={
                "application/json": json.dumps(
                    {"error": "throttled", "message": "too many requests; retry", "retryable": True}
                )
            },
        )
        self.url = self.api.url_for_path("/classify")
        self.errors_alarm = cloudwatch.Alarm(
            self,
            "FunctionErrors",
            alarm_name=classify_errors_alarm_name(config.prefix),
            alarm_description="The classify Lambda crashed or timed out (handled errors do not count)",
            metric=self.function.function.metric_errors(period=Duration.minutes(5)),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.errors_alarm.add_alarm_action(actions.SnsAction(topic))
        self._acknowledge()

    def _allow_reading_labels(self, model: ApprovedModel, role: iam.IRole) -> iam.Policy:
        """s3:GetObject on exactly the approved labels.json (its s3:// URI, as an ARN).

        Conditional, like the endpoint: before an approval the URI is "none".
        """
        bucket_and_key = Fn.select(1, Fn.split("s3://", model.labels_uri))
        # Not a child of the role: the function depends on its role, and must not depend on
        # a conditional resource (CloudFormation refuses DependsOn on an absent resource).
        policy = iam.Policy(
            self,
            "ReadApprovedLabels",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{bucket_and_key}"],
                )
            ],
        )
        policy.node.default_child.cfn_options.condition = model.condition
        return policy

    def _acknowledge(self) -> None:
        stage = self.api.deployment_stage
        skip_checkov(
            stage,
            "CKV_AWS_120",
            "Every request is a POST of a different image; API Gateway caches GET responses "
            "only, so a cache cluster would cost money and never hit.",
        )
        acknowledge_nag(
            stage,
            "AwsSolutions-APIG3",
            "Every method requires SigV4 (AWS_IAM): unsigned requests are refused by API "
            "Gateway before the Lambda runs, and the stage is throttled. A WAF web ACL is for "
            "deployments that expose the API to untrusted networks.",
        )
        acknowledge_nag(
            self.api,
            "AwsSolutions-APIG2",
            "Request parameters are validated (Content-Type is required). The body is a binary "
            "image that no JSON-schema model can describe: the Lambda checks its size and "
            "JPEG/PNG signature and answers 4xx.",
        )
        acknowledge_nag(
            stage,
            "AwsSolutions-APIG6",
            "Execution logs would go to a log group API Gateway creates itself "
            "(API-Gateway-Execution-Logs_<api id>/v1: not under this app's key, no retention); "
            "the access logs (KMS, 3 months) record every request with its caller.",
        )
        acknowledge_nag(
            self.method,
            "AwsSolutions-COG4",
            "IAM authorization is the design: callers are AWS principals signing with SigV4, "
            "there is no end-user identity for a Cognito user pool.",
        )
