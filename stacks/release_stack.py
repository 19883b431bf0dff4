"""Release: approving a model package version serves it, without anyone running `cdk`.

An EventBridge rule on the registry's "SageMaker Model Package State Change" events of
this deployment's group starts the release state machine (stacks/release/workflow.py),
which updates the serving stack through a narrowly scoped CloudFormation service role.
Event: https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
"""

from __future__ import annotations

from aws_cdk import CfnOutput, CfnParameter, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import Config
from stacks.constructs.acknowledge import acknowledge_nag
from stacks.constructs.dependencies import depend_on_policy_only
from stacks.constructs.log_group import encrypted_log_group
from stacks.constructs.nag_findings import iam5_findings, iam5_resource
from stacks.names import APPROVED, REJECTED, model_package_group, stack_name
from stacks.release.calls import Calls
from stacks.release.deploy_role import deploy_role
from stacks.release.smoke import smoke_function
from stacks.release.workflow import ReleaseWorkflow
from stacks.serving.mode_config import SERVERLESS
from stacks.serving_stack import ServingStack
from stacks.storage_stack import StorageStack
from stacks.training.names import LABELS_FILE, TRAINING_JOBS_PREFIX

DETAIL_TYPE = "SageMaker Model Package State Change"
BOOTSTRAP_VERSION = "BootstrapVersion"


def serving_parameters(serving: Stack) -> list[str]:
    """Every CloudFormation parameter of the serving stack (all passed UsePreviousValue)."""
    keys = [
        serving.resolve(element.logical_id)
        for element in serving.node.find_all()
        if isinstance(element, CfnParameter)
    ]
    # Added by CDK's default synthesizer at synthesis (after this stack is built).
    return keys if BOOTSTRAP_VERSION in keys else [*keys, BOOTSTRAP_VERSION]


class ReleaseStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        storage: StorageStack,
        serving: ServingStack,
        model_role: iam.IRole,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        prefix = config.prefix
        self.deploy_role = deploy_role(
            self,
            prefix=prefix,
            model_role=model_role,
            serving_stack_name=serving.stack_name,
            key=storage.key,
        )
        calls = Calls(
            prefix=prefix,
            serving_stack_name=serving.stack_name,
            serving_parameters=serving_parameters(serving),
            deploy_role=self.deploy_role,
            artifacts=storage.artifacts,
        )
        # serving_mode=serverless: a smoke request proves the version serves that way.
        self.smoke = (
            smoke_function(self, prefix=prefix, key=storage.key)
            if config.serving_mode == SERVERLESS
            else None
        )
        self.workflow = ReleaseWorkflow(
            self,
            "Workflow",
            prefix=prefix,
            c=calls,
            topic=storage.topic,
            artifacts=storage.artifacts,
            smoke_function=self.smoke.function if self.smoke else None,
        )
        log_group = encrypted_log_group(self, "StateMachineLogs", key=storage.key)
        self.state_machine = sfn.StateMachine(
            self,
            "Release",
            state_machine_name=f"{prefix}-release",
            definition_body=sfn.DefinitionBody.from_chainable(self.workflow.start),
            comment="Serve an approved model package version: release record, UpdateStack of "
            "the serving stack, check the endpoint, batch pointer; see docs/serving.md",
            timeout=Duration.hours(3),
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        # labels.json is SSE-KMS (Decrypt); the topic is KMS-encrypted (GenerateDataKey).
        storage.key.grant(self.state_machine.role, "kms:Decrypt", "kms:GenerateDataKey")
        depend_on_policy_only(self.state_machine, self.state_machine.role)
        self.rule = events.Rule(
            self,
            "ApprovalEvents",
            description=f"Approvals and rejections in {model_package_group(prefix)} start a release",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[DETAIL_TYPE],
                detail={
                    "ModelPackageGroupName": [model_package_group(prefix)],
                    "ModelApprovalStatus": [APPROVED, REJECTED],
                },
            ),
            targets=[targets.SfnStateMachine(self.state_machine, retry_attempts=3)],
        )
        self._acknowledge(prefix, storage)
        CfnOutput(self, "ReleaseStateMachineArn", value=self.state_machine.state_machine_arn)

    def _acknowledge(self, prefix: str, storage: StorageStack) -> None:
        group = model_package_group(prefix)
        sagemaker = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
        ssm = "arn:<AWS::Partition>:ssm:<AWS::Region>"
        versions = (
            f"{sagemaker}:model-package/{group}/*",
            "versions of this deployment's group only",
        )
        configs = (
            f"{sagemaker}:endpoint-config/{group}-v*",
            "the endpoint configs of released versions (one per version: <group>-v<N>)",
        )
        workflow = [
            versions,
            configs,
            (
                "*",
                "ListModelPackages, X-Ray and the CloudWatch Logs delivery actions support "
                "no resource-level permissions",
            ),
            (
                f"arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/"
                f"{stack_name(prefix, 'Serving')}/*",
                "the serving stack (its ARN ends in a stack id CloudFormation generates)",
            ),
        ]
        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        for resource, reason in workflow:
            for finding in iam5_findings(resource):
                acknowledge_nag(policy, finding, reason)
        if self.smoke:
            # LambdaInvoke grants the function ARN and its versions (":*").
            function = self.smoke.function.node.default_child
            acknowledge_nag(
                policy,
                iam5_resource(f"<{self.get_logical_id(function)}.Arn>:*"),
                "Step Functions may invoke the smoke function's versions and aliases; only "
                "this one function.",
            )
        for finding in iam5_findings(
            f"{{}}/{TRAINING_JOBS_PREFIX}*/{LABELS_FILE}", storage.artifacts
        ):
            acknowledge_nag(
                policy, finding, "labels.json beside each model only (compared on release)"
            )
        deploy = [
            versions,
            configs,
            (f"{sagemaker}:model/{group}-v*", "the Models of released versions (<group>-v<N>)"),
            (
                f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/{stack_name(prefix, 'Serving')}-*",
                "the serving stack's own role (the classify Lambda's), whose name CloudFormation "
                "generates from the stack name; its inline policy names the released labels",
            ),
            (
                "*",
                "DescribeScalableTargets, DescribeScalingPolicies and DescribeScheduledActions "
                "support no resource-level permissions",
            ),
            (
                "arn:<AWS::Partition>:application-autoscaling:<AWS::Region>:<AWS::AccountId>:"
                "scalable-target/*",
                "scalable targets have generated ids; a condition limits the writes to "
                "SageMaker variant instance counts",
            ),
            (
                f"{ssm}:<AWS::AccountId>:parameter/{prefix}/release/*",
                "the two release records (model package ARN, labels URI)",
            ),
            (
                f"{ssm}:<AWS::AccountId>:parameter/cdk-bootstrap/*",
                "the CDK bootstrap version parameter every CDK stack checks",
            ),
            (
                f"{ssm}::parameter/aws/service/powertools/*",
                "the public Powertools layer parameter the classify Lambda's layer is read from",
            ),
        ]
        policy = self.deploy_role.node.find_child("DefaultPolicy")
        for resource, reason in deploy:
            for finding in iam5_findings(resource):
                acknowledge_nag(policy, finding, reason)
