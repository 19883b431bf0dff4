"""The released model version, read at deploy time, the SageMaker Model CloudFormation
declares from it, and the condition "a version is released".
"""

from __future__ import annotations

from aws_cdk import CfnCondition, CfnParameter, Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.constructs.acknowledge import skip_checkov
from stacks.names import NO_APPROVED_MODEL, model_package_group, release_parameter

SSM_STRING = "AWS::SSM::Parameter::Value<String>"


class ApprovedModel(Construct):
    """CloudFormation parameters resolved from the release record in SSM on every create
    and update (the release workflow's UpdateStack with UsePreviousValue re-reads them, as
    does `cdk deploy`), and the Model CloudFormation owns: `AWS::SageMaker::Model` from the
    model package version (Containers[].ModelPackageName), so `cdk destroy` removes it.

    `condition` is true once a version was released: every endpoint resource carries it,
    so synth and deploy work on a fresh account.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        model_role: iam.IRole,
        network_isolation: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.package_parameter = CfnParameter(
            scope,
            "ReleasedModelPackageArn",
            type=SSM_STRING,
            default=release_parameter(prefix, "model-package-arn"),
            description="SSM parameter holding the released model package version's ARN "
            "(written by the release workflow; 'none' before the first release)",
        )
        self.labels_uri_parameter = CfnParameter(
            scope,
            "ReleasedLabelsUri",
            type=SSM_STRING,
            default=release_parameter(prefix, "labels-uri"),
            description="SSM parameter holding the s3:// URI of the released version's labels.json",
        )
        self.package_arn = self.package_parameter.value_as_string
        self.labels_uri = self.labels_uri_parameter.value_as_string
        self.condition = CfnCondition(
            scope,
            "HasApprovedModel",
            expression=Fn.condition_and(
                Fn.condition_not(Fn.condition_equals(self.package_arn, NO_APPROVED_MODEL)),
                Fn.condition_not(Fn.condition_equals(self.labels_uri, NO_APPROVED_MODEL)),
            ),
        )
        # arn:...:model-package/<group>/<version> -> "<group>-v<version>": one name per
        # version, so a new release replaces the Model (and the config naming it).
        self.version = Fn.select(2, Fn.split("/", self.package_arn))
        self.resource_name = Fn.join(
            "-", [model_package_group(prefix), Fn.join("", ["v", self.version])]
        )
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sagemaker-model.html
        self.model = sagemaker.CfnModel(
            scope,
            "ReleasedModel",
            model_name=self.resource_name,
            execution_role_arn=model_role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                model_package_name=self.package_arn
            ),
            # Serverless Inference does not support network isolation (its feature
            # exclusions, https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html).
            enable_network_isolation=network_isolation,
        )
        self.model.cfn_options.condition = self.condition
        if not network_isolation:
            skip_checkov(
                self.model,
                "CKV_AWS_370",
                "serving_mode=serverless: Serverless Inference does not support network "
                "isolation (SageMaker feature exclusions); the model still runs without a VPC "
                "and reads only its own artifact with the model role.",
            )
        # Unconditional readers get the name through Fn::If (also orders them after it).
        self.model_name = self.when_approved(self.model.attr_model_name)

    def when_approved(self, value: str, otherwise: str = NO_APPROVED_MODEL) -> str:
        """`value` once a version is released, else `otherwise` (Fn::If on the condition).

        Referencing a conditional resource through Fn::If is also what lets an
        unconditional resource depend on it.
        """
        return Fn.condition_if(self.condition.logical_id, value, otherwise).to_string()
