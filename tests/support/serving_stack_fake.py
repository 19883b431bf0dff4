"""TEST-ONLY fake of CloudFormation updating the serving stack, for the release e2e tests.

moto's UpdateStack with UsePreviousValue does not read SSM-typed parameters again (AWS
does: that is how the release record reaches the stack), and moto has no in-place
UpdateEndpoint. So `aws-sdk:cloudformation:updateStack` / `describeStacks` tasks of a
state machine running in moto are answered here: the fake reads the release record from
(moto) SSM and does what the serving template declares for it — Model `<group>-v<N>` from
the model package, EndpointConfig `<group>-v<N>`, the endpoint on that config — or, with
`fail_next_update`, ends in UPDATE_ROLLBACK_COMPLETE with nothing changed (a blue/green
update whose alarm fired). Every other aws-sdk task runs against moto unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import boto3
from botocore.exceptions import ClientError

from stacks.names import NO_APPROVED_MODEL, model_package_group, release_parameter
from stacks.serving.names import VARIANT_NAME, endpoint_name


@dataclasses.dataclass
class FakeServingStack:
    stack_name: str
    prefix: str
    model_role: str
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
        sagemaker = boto3.client("sagemaker")
        name = f"{model_package_group(self.prefix)}-v{package.rsplit('/', 1)[1]}"
        existing = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
        if name not in existing:
            sagemaker.create_model(
                ModelName=name,
                ExecutionRoleArn=self.model_role,
                PrimaryContainer={"ModelPackageName": package},
                EnableNetworkIsolation=True,
            )
            sagemaker.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[
                    {
                        "VariantName": VARIANT_NAME,
                        "ModelName": name,
                        "InstanceType": "ml.m4.xlarge",
                        "InitialInstanceCount": 1,
                    }
                ],
            )
        endpoint = endpoint_name(self.prefix)
        with contextlib.suppress(ClientError):
            sagemaker.delete_endpoint(EndpointName=endpoint)
        sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)


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
