"""TEST-ONLY fake of CloudFormation updating the serving stack, for the release e2e tests.

moto's UpdateStack with UsePreviousValue does not read SSM-typed parameters again (AWS
does: that is how the release record reaches the stack), and moto has no in-place
UpdateEndpoint. So `aws-sdk:cloudformation:updateStack` / `describeStacks` tasks of a
state machine running in moto are answered here: the fake reads the release record from
(moto) SSM and does what the serving template declares for it — Model `<group>-v<N>` from
the model package, EndpointConfig `<group>-v<N>`, the endpoint on that config — or, with
`fail_next_update`, ends in UPDATE_ROLLBACK_COMPLETE with nothing changed (a blue/green
update whose alarm fired). Every other aws-sdk task runs against moto unchanged.

The endpoint config follows stacks/serving/endpoint.py for the deployment's serving_mode:
instances + the volume key (realtime), ServerlessConfig without key or network isolation
(serverless), instances + AsyncInferenceConfig (async). A record of 'none' makes the
template's condition false: the endpoint, its config and the Model are removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import boto3
from botocore.exceptions import ClientError

from stacks.config import Config
from stacks.names import (
    ASYNC_FAILURES_PREFIX,
    ASYNC_OUTPUT_PREFIX,
    NO_APPROVED_MODEL,
    model_package_group,
    release_parameter,
)
from stacks.serving.mode_config import ASYNC, SERVERLESS
from stacks.serving.names import VARIANT_NAME, endpoint_name
from tests.support.sfn_local import ACCOUNT, REGION

KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
INFERENCE_BUCKET = "grocery-inference"


@dataclasses.dataclass
class FakeServingStack:
    stack_name: str
    prefix: str
    model_role: str
    config: Config = dataclasses.field(default_factory=Config)
    topic_arn: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:notifications"
    status: str = "CREATE_COMPLETE"
    resolved_package: str = NO_APPROVED_MODEL
    fail_next_update: bool = False
    updates: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def _error(self, message: str, operation: str) -> ClientError:
        return ClientError({"Error": {"Code": "ValidationError", "Message": message}}, operation)

    def update_stack(self, **request: Any) -> dict[str, Any]:
        if request["StackName"] != self.stack_name:
            raise self._error(f"Stack [{request['StackName']}] does not exist", "UpdateStack")
        self.updates.append(request)
        ssm = boto3.client("ssm")
        package = ssm.get_parameter(Name=release_parameter(self.prefix, "model-package-arn"))[
            "Parameter"
        ]["Value"]
        if package == self.resolved_package:
            raise self._error("No updates are to be performed.", "UpdateStack")
        if self.fail_next_update:
            self.fail_next_update = False
            self.status = "UPDATE_ROLLBACK_COMPLETE"
            return {"StackId": f"arn:aws:cloudformation:::stack/{self.stack_name}/1"}
        self._serve(package)
        self.resolved_package = package
        self.status = "UPDATE_COMPLETE"
        return {"StackId": f"arn:aws:cloudformation:::stack/{self.stack_name}/1"}

    def describe_stacks(self, **request: Any) -> dict[str, Any]:
        return {"Stacks": [{"StackName": request["StackName"], "StackStatus": self.status}]}

    def _serve(self, package: str) -> None:
        """What CloudFormation does with the template for this record: replace the Model and
        config named after the version (the old ones go), or remove them all ('none')."""
        sagemaker = boto3.client("sagemaker")
        endpoint = endpoint_name(self.prefix)
        old = self._served_name()
        if package == NO_APPROVED_MODEL:
            with contextlib.suppress(ClientError):
                sagemaker.delete_endpoint(EndpointName=endpoint)
            self._delete(old)
            return
        name = f"{model_package_group(self.prefix)}-v{package.rsplit('/', 1)[1]}"
        if name != old:
            sagemaker.create_model(
                ModelName=name,
                ExecutionRoleArn=self.model_role,
                PrimaryContainer={"ModelPackageName": package},
                # Serverless Inference has no network isolation (endpoint.py, approved_model.py).
                EnableNetworkIsolation=self.config.serving_mode != SERVERLESS,
            )
            sagemaker.create_endpoint_config(EndpointConfigName=name, **self.endpoint_config(name))
        with contextlib.suppress(ClientError):
            sagemaker.delete_endpoint(EndpointName=endpoint)
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
        if name != old:
            self._delete(old)

    def endpoint_config(self, model_name: str) -> dict[str, Any]:
        """CreateEndpointConfig's fields (but the name) as the serving template declares them."""
        c = self.config
        variant: dict[str, Any] = {"VariantName": VARIANT_NAME, "ModelName": model_name}
        if c.serving_mode == SERVERLESS:
            variant["ServerlessConfig"] = {
                "MemorySizeInMB": c.serverless_memory_mb,
                "MaxConcurrency": c.serverless_max_concurrency,
            }
            return {"ProductionVariants": [variant]}
        variant |= {
            "InstanceType": c.endpoint_instance_type,
            "InitialInstanceCount": c.endpoint_min_instances,
            "InitialVariantWeight": 1.0,
        }
        fields: dict[str, Any] = {"ProductionVariants": [variant], "KmsKeyId": KEY_ARN}
        if c.serving_mode == ASYNC:
            output = f"s3://{INFERENCE_BUCKET}/"
            fields["AsyncInferenceConfig"] = {
                "OutputConfig": {
                    "S3OutputPath": output + ASYNC_OUTPUT_PREFIX.rstrip("/"),
                    "S3FailurePath": output + ASYNC_FAILURES_PREFIX.rstrip("/"),
                    "KmsKeyId": KEY_ARN,
                    "NotificationConfig": {
                        "SuccessTopic": self.topic_arn,
                        "ErrorTopic": self.topic_arn,
                    },
                }
            }
        return fields

    def _served_name(self) -> str | None:
        if self.resolved_package == NO_APPROVED_MODEL:
            return None
        return f"{model_package_group(self.prefix)}-v{self.resolved_package.rsplit('/', 1)[1]}"

    @staticmethod
    def _delete(name: str | None) -> None:
        if name is None:
            return
        sagemaker = boto3.client("sagemaker")
        with contextlib.suppress(ClientError):
            sagemaker.delete_endpoint_config(EndpointConfigName=name)
        with contextlib.suppress(ClientError):
            sagemaker.delete_model(ModelName=name)


@contextlib.contextmanager
def cloudformation_answered_by(fake: FakeServingStack):
    """Routes the state machines' CloudFormation aws-sdk tasks to `fake` (tests only)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as aws_sdk,
    )

    service = aws_sdk.StateTaskServiceAwsSdk
    original = service._eval_service_task

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, **kwargs):
        if self._get_boto_service_name() != "cloudformation":
            return original(self, env, resource_runtime_part, normalised_parameters, **kwargs)
        action = self._get_boto_service_action()
        env.stack.append(getattr(fake, action)(**normalised_parameters))
        return None

    service._eval_service_task = eval_service_task
    try:
        yield fake
    finally:
        service._eval_service_task = original
