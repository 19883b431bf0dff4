"""Training: the GPU training pipeline (Step Functions) and the approved-model pointer (SSM)."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.config import Config
from stacks.constructs.acknowledge import acknowledge_nag, skip_checkov
from stacks.constructs.dependencies import depend_on_policy_only
from stacks.constructs.log_group import encrypted_log_group
from stacks.constructs.nag_findings import iam5_findings, iam5_resource
from stacks.constructs.python_function import PythonFunction
from stacks.image_uri import algorithm_image_uri
from stacks.names import model_package_group
from stacks.serving.names import endpoint_name
from stacks.storage_stack import StorageStack
from stacks.training.approved_model_pointer import ApprovedModelPointer
from stacks.training.definition import Resources, TrainingDefinition
from stacks.training.guard import state_machine_name
from stacks.training.names import LABELS_FILE, MANIFEST_FILE, TRAINING_JOBS_PREFIX, job_name_prefix
from stacks.training.register import METRICS_FILE, declare_group, grant_registration
from stacks.training.roles import (
    grant_state_machine,
    grant_test_gate,
    model_role,
    training_role,
)
from stacks.training.triggers import retrain_triggers
from stacks.training.tuning import nag_findings as tuning_nag_findings


class TrainingStack(Stack):
    """`self.state_machine` trains, gates and registers; `self.model_role` runs the Models.

    `self.approved_model`: the two SSM parameters, created with "none" on the first deploy
    (so serving and batch can read them before any model was approved) and never reset by
    CloudFormation afterwards.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        storage: StorageStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        image_uri = algorithm_image_uri(self)
        # The model registry: one version per model that passes the gates (register.py).
        self.model_package_group = declare_group(self, config.prefix)

        # Created once with "none", never overwritten by CloudFormation (see the module).
        self.approved_model = ApprovedModelPointer(
            self, "ApprovedModel", prefix=config.prefix, key=storage.key
        )

        self.training_role = training_role(
            self,
            training_data=storage.training_data,
            artifacts=storage.artifacts,
            key=storage.key,
            image_uri=image_uri,
        )
        self.model_role = model_role(
            self,
            artifacts=storage.artifacts,
            inference=storage.inference,
            key=storage.key,
            image_uri=image_uri,
            endpoint_name=endpoint_name(config.prefix),
        )

        # The optional test-set gate (config test_accuracy_threshold > 0) scores in a Lambda.
        evaluate = None
        if config.test_accuracy_threshold > 0:
            evaluate = PythonFunction(
                self,
                "ScoreTestSet",
                handler="training_evaluate.handler.handler",
                description="Training pipeline: top-1/top-5 accuracy of a new model on the "
                "dataset's test channel; writes evaluation.json beside the model",
                key=storage.key,
                service="training-evaluate",
                timeout=Duration.minutes(5),
                memory_size=512,
            )
            self._harden(evaluate)
        self.evaluate_function = evaluate

        self.definition = TrainingDefinition(
            self,
            "Definition",
            config=config,
            res=Resources(
                training_data=storage.training_data,
                artifacts=storage.artifacts,
                key=storage.key,
                topic=storage.topic,
                training_role=self.training_role,
                model_role=self.model_role,
                image_uri=image_uri,
                evaluate_function=evaluate.function if evaluate else None,
            ),
        )

        log_group = encrypted_log_group(self, "StateMachineLogs", key=storage.key)
        self.state_machine = sfn.StateMachine(
            self,
            "Pipeline",
            # Fixed: the concurrency guard's grant is built from it (guard.py).
            state_machine_name=state_machine_name(config.prefix),
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(self.definition.start),
            comment="Train the grocery classifier on GPU, gate on validation:accuracy, "
            "register the model; see docs/training.md",
            logs=sfn.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
            tracing_enabled=True,
        )
        grant_state_machine(
            self.state_machine.role,
            job_prefix=job_name_prefix(config.prefix),
            training_role=self.training_role,
            training_data=storage.training_data,
            key=storage.key,
        )
        grant_registration(self.state_machine.role, self, config.prefix)
        self._acknowledge(config, storage)
        if evaluate is not None:
            grant_test_gate(
                state_machine_role=self.state_machine.role,
                model_role=self.model_role,
                function_role=evaluate.role,
                job_prefix=job_name_prefix(config.prefix),
                training_data=storage.training_data,
                artifacts=storage.artifacts,
                key=storage.key,
            )
            # LambdaInvoke grants the function ARN and its versions (":*").
            acknowledge_nag(
                self.state_machine.role.node.find_child("DefaultPolicy"),
                iam5_resource(
                    f"<{self.get_logical_id(evaluate.function.node.default_child)}.Arn>:*"
                ),
                "Step Functions may invoke the scoring function's versions and aliases; only "
                "this one function.",
            )
            acknowledge_nag(
                self.state_machine.role.node.find_child("DefaultPolicy"),
                iam5_resource(
                    "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                    f"model/{job_name_prefix(config.prefix)}*"
                ),
                "the test gate's temporary Models are named after the job (per execution and "
                "retry); created and deleted within the pipeline's name prefix only",
            )
            acknowledge_nag(
                self.state_machine.role.node.find_child("DefaultPolicy"),
                iam5_resource(
                    "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                    f"transform-job/{job_name_prefix(config.prefix)}*"
                ),
                "test-set transform jobs are named after the model (per execution and retry); "
                "scoped to the pipeline's name prefix",
            )
        depend_on_policy_only(self.state_machine, self.state_machine.role)
        # Retraining triggers (config retrain_on_new_dataset / retrain_schedule); None when off.
        self.retrain_triggers = retrain_triggers(
            self,
            config=config,
            storage=storage,
            state_machine=self.state_machine,
            release_parameter_arn=self.approved_model.arns["release-model-package-arn"],
        )

        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        # No output re-exports a storage value (cfn-lint W6001): the artifacts bucket is
        # Grocery-Storage's ArtifactsBucketName; each execution's output names its artifact.
        CfnOutput(self, "ModelRoleArn", value=self.model_role.role_arn)
        CfnOutput(
            self,
            "ModelPackageGroupName",
            value=self.model_package_group.model_package_group_name,
        )
        CfnOutput(self, "ModelNameParameter", value=self.approved_model.names["model-name"])
        CfnOutput(self, "LabelsUriParameter", value=self.approved_model.names["labels-uri"])

    def _harden(self, evaluate: PythonFunction) -> None:
        for check, reason in (
            (
                "CKV_AWS_115",
                "Invoked once per training execution by Step Functions; reserving concurrency "
                "would take it from the account's small default quota for no benefit.",
            ),
            (
                "CKV_AWS_116",
                "Invoked synchronously by Step Functions, which retries and notifies failures; "
                "a DLQ only serves asynchronous invocations.",
            ),
            (
                "CKV_AWS_117",
                "Calls only S3 over TLS with IAM; a VPC would add NAT or endpoints and cost "
                "without narrowing access.",
            ),
        ):
            skip_checkov(evaluate.function, check, reason)

    def _acknowledge(self, config: Config, storage: StorageStack) -> None:
        policy = self.state_machine.role.node.find_child("DefaultPolicy")
        prefix = job_name_prefix(config.prefix)
        sagemaker = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>"
        data, artifacts = storage.training_data, storage.artifacts
        findings = [
            (
                f"{sagemaker}:training-job/{prefix}*",
                None,
                "job names are computed per "
                "execution and retry (a hash), so only the pipeline's name prefix can scope them",
            ),
            (
                f"{{}}/*/{MANIFEST_FILE}",
                data,
                "the dataset prefix is chosen per execution; only manifest.json files are readable",
            ),
            (
                f"{{}}/*/{LABELS_FILE}",
                data,
                "the dataset prefix is chosen per execution; only labels.json files are readable",
            ),
            (
                f"{{}}/{TRAINING_JOBS_PREFIX}*/{LABELS_FILE}",
                artifacts,
                "labels.json is copied beside each new model artifact; nothing else is writable",
            ),
            (
                f"{sagemaker}:model-package/{model_package_group(config.prefix)}/*",
                None,
                "CreateModelPackage of a new version: versions are numbered by SageMaker; "
                "scoped to this deployment's model package group",
            ),
            (
                f"{{}}/{TRAINING_JOBS_PREFIX}*/{METRICS_FILE}",
                artifacts,
                "metrics.json is written beside each new model artifact; nothing else is writable",
            ),
            (
                "*",
                None,
                "X-Ray PutTraceSegments/PutTelemetryRecords and the CloudWatch Logs "
                "delivery actions support no resource-level permissions",
            ),
        ]
        findings += tuning_nag_findings(config.prefix, artifacts)
        for resource, imported, reason in findings:
            for finding in iam5_findings(resource, imported):
                acknowledge_nag(policy, finding, reason)
