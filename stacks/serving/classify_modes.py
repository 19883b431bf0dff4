"""What the serving mode changes in the classification API (stacks/serving/api.py builds it).

Every mode: SERVING_MODE in the Lambda's environment (the handler picks the call and the
payload limit by it, lambdas/classify_api/modes.py).
async: POST /classify stores the image under async-input/<id>/ and calls
InvokeEndpointAsync, answering 202 with the request id; GET /classify/results/{id} answers
the prediction once SageMaker wrote it (202 while queued). The function gets exactly those
S3 prefixes, InvokeEndpointAsync on the endpoint, and the data key.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.config import Config
from stacks.constructs.acknowledge import acknowledge_nag
from stacks.constructs.nag_findings import iam5_findings
from stacks.names import ASYNC_FAILURES_PREFIX, ASYNC_INPUT_PREFIX, ASYNC_OUTPUT_PREFIX
from stacks.serving.api import INTEGRATION_TIMEOUT, ClassifyApi
from stacks.serving.endpoint import ClassifierEndpoint
from stacks.serving.mode_config import ASYNC

RESULTS_PATH = "results"
REQUEST_ID_PARAMETER = "request_id"


class ClassifyModes(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        api: ClassifyApi,
        endpoint: ClassifierEndpoint,
        inference: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        function = api.function.function
        function.add_environment("SERVING_MODE", config.serving_mode)
        self.results_method: apigw.Method | None = None
        self.policy: iam.Policy | None = None
        if config.serving_mode == ASYNC:
            function.add_environment("INFERENCE_BUCKET", inference.bucket_name)
            self.policy = self._allow_async(function.role, endpoint, inference, key)
            self.results_method = self._results_route(api)

    def _allow_async(
        self,
        role: iam.IRole,
        endpoint: ClassifierEndpoint,
        inference: s3.IBucket,
        key: kms.IKey,
    ) -> iam.Policy:
        stack = Stack.of(self)
        policy = iam.Policy(
            self,
            "AsyncRequests",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="QueueRequests",
                    actions=["sagemaker:InvokeEndpointAsync"],
                    resources=[
                        stack.format_arn(
                            service="sagemaker",
                            resource="endpoint",
                            resource_name=endpoint.endpoint_name,
                        )
                    ],
                ),
                iam.PolicyStatement(
                    sid="StoreRequests",
                    actions=["s3:PutObject", "s3:GetObject"],
                    resources=[inference.arn_for_objects(f"{ASYNC_INPUT_PREFIX}*")],
                ),
                iam.PolicyStatement(
                    sid="ReadAnswers",
                    actions=["s3:GetObject"],
                    resources=[
                        inference.arn_for_objects(f"{ASYNC_OUTPUT_PREFIX}*"),
                        inference.arn_for_objects(f"{ASYNC_FAILURES_PREFIX}*"),
                    ],
                ),
                # Without ListBucket an answer not written yet reads as 403, not 404.
                iam.PolicyStatement(
                    sid="TellPendingAnswers",
                    actions=["s3:ListBucket"],
                    resources=[inference.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="UseDataKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                ),
            ],
        )
        for prefix, reason in (
            (ASYNC_INPUT_PREFIX, "the queued images and request records, one folder per id"),
            (ASYNC_OUTPUT_PREFIX, "the answers SageMaker writes, named by SageMaker"),
            (ASYNC_FAILURES_PREFIX, "the failures SageMaker writes, named by SageMaker"),
        ):
            for finding in iam5_findings(f"{{}}/{prefix}*", inference):
                acknowledge_nag(policy, finding, reason)
        return policy

    def _results_route(self, api: ClassifyApi) -> apigw.Method:
        """GET /classify/results/{request_id}, IAM-authorized like the POST."""
        classify = api.api.root.get_resource("classify")
        resource = classify.add_resource(RESULTS_PATH).add_resource(f"{{{REQUEST_ID_PARAMETER}}}")
        method = resource.add_method(
            "GET",
            apigw.LambdaIntegration(
                api.function.function,
                proxy=True,
                timeout=INTEGRATION_TIMEOUT,
                allow_test_invoke=False,
            ),
            authorization_type=apigw.AuthorizationType.IAM,
            request_parameters={f"method.request.path.{REQUEST_ID_PARAMETER}": True},
        )
        acknowledge_nag(
            method,
            "AwsSolutions-COG4",
            "IAM authorization is the design: callers are AWS principals signing with SigV4, "
            "there is no end-user identity for a Cognito user pool.",
        )
        return method
