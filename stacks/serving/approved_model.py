"""The approved-model pointer, read at deploy time, and the condition "a model is approved"."""

from __future__ import annotations

from aws_cdk import CfnCondition, CfnParameter, Fn
from constructs import Construct

from stacks.names import NO_APPROVED_MODEL, approved_model_parameter

SSM_STRING = "AWS::SSM::Parameter::Value<String>"


class ApprovedModel(Construct):
    """CloudFormation parameters resolved from SSM on every deploy (the CDK CLI never skips a
    stack with SSM parameters), so re-deploying the stack is what promotes a new model.

    `condition` is true once the training pipeline has written a model: every endpoint
    resource carries it, so synth and deploy work on a fresh account.
    """

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.model_name_parameter = CfnParameter(
            scope,
            "ApprovedModelName",
            type=SSM_STRING,
            default=approved_model_parameter(prefix, "model-name"),
            description="SSM parameter holding the approved SageMaker Model's name (written "
            "by the training pipeline; 'none' before the first approval)",
        )
        self.labels_uri_parameter = CfnParameter(
            scope,
            "ApprovedLabelsUri",
            type=SSM_STRING,
            default=approved_model_parameter(prefix, "labels-uri"),
            description="SSM parameter holding the s3:// URI of the approved model's labels.json",
        )
        self.model_name = self.model_name_parameter.value_as_string
        self.labels_uri = self.labels_uri_parameter.value_as_string
        self.condition = CfnCondition(
            scope,
            "HasApprovedModel",
            expression=Fn.condition_and(
                Fn.condition_not(Fn.condition_equals(self.model_name, NO_APPROVED_MODEL)),
                Fn.condition_not(Fn.condition_equals(self.labels_uri, NO_APPROVED_MODEL)),
            ),
        )

    def when_approved(self, value: str, otherwise: str = NO_APPROVED_MODEL) -> str:
        """`value` once a model is approved, else `otherwise` (Fn::If on the condition).

        Referencing a conditional resource through Fn::If is also what lets an
        unconditional resource depend on it.
        """
        return Fn.condition_if(self.condition.logical_id, value, otherwise).to_string()
