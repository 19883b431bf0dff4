"""The approved-model pointer: two SSM parameters that CloudFormation creates but never writes.

An `AWS::SSM::Parameter` resource would put its template value ("none") back on any update
of that resource (a description, a tag, a CDK upgrade that renders it differently), and the
next serving deploy would then delete the endpoint. So each parameter is created by a
custom resource: PutParameter with Overwrite false on create (ParameterAlreadyExists is
ignored: the value the training pipeline wrote stays), nothing on update, nothing on delete
(a pointer it did not create must survive, so it deletes none: teardown leaves both).
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.constructs.acknowledge import skip_checkov
from stacks.constructs.dependencies import depend_on_policy_only
from stacks.constructs.log_group import encrypted_log_group
from stacks.names import (
    NO_APPROVED_MODEL,
    RELEASE_FIELDS,
    approved_model_parameter,
    release_parameter,
)

FIELDS = ("model-name", "labels-uri")
# The release record (stacks/release/): same treatment, created "none" once, never reset.
RELEASE = tuple(f"release-{field}" for field in RELEASE_FIELDS)
# CDK's id of the one Lambda that backs every AwsCustomResource of a stack.
PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"


def parameter_arn(name: str) -> str:
    return f"arn:{Aws.PARTITION}:ssm:{Aws.REGION}:{Aws.ACCOUNT_ID}:parameter{name}"


class ApprovedModelPointer(Construct):
    """`names[field]` / `arns[field]` for field in FIELDS ("model-name", "labels-uri")."""

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.names = {field: approved_model_parameter(prefix, field) for field in FIELDS}
        self.names.update(
            {f"release-{field}": release_parameter(prefix, field) for field in RELEASE_FIELDS}
        )
        self.arns = {field: parameter_arn(name) for field, name in self.names.items()}
        log_group = encrypted_log_group(self, "ProviderLogs", key=key)
        # Our own role instead of CDK's default (AWSLambdaBasicExecutionRole): it may write
        # this log group only; each custom resource adds its one parameter's SSM calls.
        role = iam.Role(
            self,
            "ProviderRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Creates the approved-model and release SSM parameters at deploy time, "
            "if absent",
        )
        log_group.grant_write(role)
        for field, name in self.names.items():
            cr.AwsCustomResource(
                self,
                "".join(part.capitalize() for part in field.split("-")),
                resource_type="Custom::ApprovedModelPointer",
                on_create=cr.AwsSdkCall(
                    service="SSM",
                    action="putParameter",
                    parameters={
                        "Name": name,
                        "Type": "String",
                        "Value": NO_APPROVED_MODEL,
                        "Overwrite": False,
                        "Description": "Released model version (written by the release workflow)"
                        if field in RELEASE
                        else "Approved model (written by the training state machine)",
                    },
                    physical_resource_id=cr.PhysicalResourceId.of(name),
                    ignore_error_codes_matching="ParameterAlreadyExists",
                ),
                # No on_update: CloudFormation never writes the pointer after creating it.
                # No on_delete: this resource cannot tell a pointer it created from one that
                # already existed (a logical-id change, a redeploy after destroy), and deleting
                # the approved model's pointer would make the next serving deploy delete the
                # endpoint. The two parameters outlive the stack (free; see docs/training.md).
                policy=cr.AwsCustomResourcePolicy.from_statements(
                    [
                        iam.PolicyStatement(
                            actions=["ssm:PutParameter"],
                            resources=[self.arns[field]],
                        )
                    ]
                ),
                install_latest_aws_sdk=False,
                log_group=log_group,
                role=role,
            )
        self._harden_provider(role)

    def _harden_provider(self, role: iam.Role) -> None:
        """W3005 and the checkov Lambda checks on CDK's one provider function of the stack."""
        provider = Stack.of(self).node.find_child(PROVIDER_ID)
        depend_on_policy_only(provider, role)
        for check, reason in (
            (
                "CKV_AWS_115",
                "CDK's custom-resource provider runs only during CloudFormation deployments; "
                "reserved concurrency would take from the account quota for no benefit.",
            ),
            (
                "CKV_AWS_116",
                "Invoked synchronously by CloudFormation, which reports failures itself; a DLQ "
                "only serves asynchronous invocations.",
            ),
            (
                "CKV_AWS_117",
                "Calls only the SSM API over TLS with IAM; a VPC would add NAT or endpoints "
                "without narrowing access.",
            ),
        ):
            skip_checkov(provider, check, reason)
