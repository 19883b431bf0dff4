"""The model registry: the deployment's Model Package Group, and the training pipeline's
states that register every model passing the gates as a version of it.

After the gate(s): "Collect model metrics" (Pass) -> "Write model metrics" (S3 PutObject of
`training-jobs/<job>/metrics.json`, beside model.tar.gz) -> "Register model version"
(`aws-sdk:sagemaker:createModelPackage`). The version carries what serving it needs (the
algorithm image and artifact, content types, instance types), its metrics (ModelQuality
statistics = metrics.json: validation accuracy, and the test report when the test gate
ran) and metadata tying it to its training job, dataset manifest and labels.
CreateModelPackage: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.names import (
    METADATA_DATASET_MANIFEST,
    METADATA_LABELS_URI,
    METADATA_TEST_ACCURACY,
    METADATA_TEST_REPORT,
    METADATA_TRAINED_FROM_VERSION,
    METADATA_TRAINING_JOB,
    METADATA_TUNING_SUMMARY,
    METADATA_VALIDATION_ACCURACY,
    model_package_group,
)
from stacks.training.common import Stage, retry_throttling
from stacks.training.names import LABELS_FILE, MANIFEST_FILE, TRAINING_JOBS_PREFIX

METRICS_FILE = "metrics.json"
# What the algorithm's inference accepts, and what it answers (a JSON list of probabilities).
# https://docs.aws.amazon.com/sagemaker/latest/dg/image-classification.html#IC-inference
CONTENT_TYPES = ["image/jpeg", "image/png", "application/x-image"]
RESPONSE_TYPES = ["application/json"]
REGISTER_THROTTLING = ["ThrottlingException", "SageMaker.ThrottlingException"]


def declare_group(scope: Construct, prefix: str) -> sagemaker.CfnModelPackageGroup:
    """`<prefix>-classifier`: created empty by the training stack (costs nothing).

    Retained on stack deletion: its versions are the record of what was trained and served,
    and the versions the pipeline created are not CloudFormation resources, so deleting the
    group with the stack would fail on (or outlive) them. README "Storage" says how to
    delete it by hand.
    """
    group = sagemaker.CfnModelPackageGroup(
        scope,
        "ModelPackageGroup",
        model_package_group_name=model_package_group(prefix),
        model_package_group_description="Grocery classifier versions: every model that passed "
        "the training gates, with metrics and approval status (docs/training.md)",
    )
    group.apply_removal_policy(RemovalPolicy.RETAIN)
    return group


def package_arns(scope: Construct, prefix: str) -> list[str]:
    """The group's versions (`model-package/<group>/<n>`) and the group's own package ARN."""
    stack = Stack.of(scope)
    group = model_package_group(prefix)
    return [
        stack.format_arn(service="sagemaker", resource="model-package", resource_name=group),
        stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*"),
    ]


def prepare(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    """ "Describe model" (what registration and the notification need, from `$.training`)
    -> "Copy labels beside model" (training-jobs/<job>/labels.json) -> `then`."""
    res = stage.res
    artifacts, data = res.artifacts.bucket_name, res.training_data.bucket_name
    job = sfn.JsonPath.string_at("$.training.TrainingJobName")
    describe = sfn.Pass(
        stage.scope,
        "Describe model",
        comment="Everything the registration steps and the notification need",
        parameters={
            "training_job": job,
            "artifact": sfn.JsonPath.string_at("$.training.ModelArtifacts.S3ModelArtifacts"),
            "validation_accuracy": sfn.JsonPath.number_at("$.metrics.validation_accuracy[0]"),
            "accuracy_threshold": stage.config.accuracy_threshold,
            "dataset": sfn.JsonPath.string_at("$.dataset"),
            # trained_from_version (inputs.py, the training mode)
            "provenance": sfn.JsonPath.object_at("$.provenance"),
            "labels_source": sfn.JsonPath.format(
                f"{data}/{{}}{LABELS_FILE}", sfn.JsonPath.string_at("$.dataset")
            ),
            "labels_key": sfn.JsonPath.format(f"{TRAINING_JOBS_PREFIX}{{}}/{LABELS_FILE}", job),
            "labels_uri": sfn.JsonPath.format(
                f"s3://{artifacts}/{TRAINING_JOBS_PREFIX}{{}}/{LABELS_FILE}", job
            ),
        },
    )
    copy_labels = tasks.CallAwsService(
        stage.scope,
        "Copy labels beside model",
        service="s3",
        action="copyObject",
        parameters={
            "Bucket": artifacts,
            "Key": sfn.JsonPath.string_at("$.labels_key"),
            "CopySource": sfn.JsonPath.string_at("$.labels_source"),
        },
        # CopyObject is authorized as GetObject on the source ("Read labels" grants it)
        # and PutObject on the target.
        iam_action="s3:PutObject",
        iam_resources=[res.artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/{LABELS_FILE}")],
        result_path=sfn.JsonPath.DISCARD,
    )
    retry_throttling(copy_labels, "s3")
    stage.catch(copy_labels)
    return describe.next(copy_labels).next(then)


class Registration(Construct):
    """The three registration states; `self.chain` starts with the first and ends with the
    registration, whose result is `$.model_package` = {"arn", "version"}."""

    def __init__(self, stage: Stage, construct_id: str) -> None:
        super().__init__(stage.scope, construct_id)
        scope, config, artifacts = stage.scope, stage.config, stage.res.artifacts
        self.config = config
        self.artifacts = artifacts
        self.training_data = stage.res.training_data
        self.image_uri = stage.res.image_uri
        self.gated = config.test_accuracy_threshold > 0

        collect = sfn.Pass(
            scope,
            "Collect model metrics",
            comment=f"The version's metrics, written to {METRICS_FILE} beside the model",
            parameters=self.metrics_document(),
            result_path="$.model_metrics",
        )
        write = tasks.CallAwsService(
            scope,
            "Write model metrics",
            service="s3",
            action="putObject",
            parameters={
                "Bucket": artifacts.bucket_name,
                "Key": sfn.JsonPath.format(
                    f"{TRAINING_JOBS_PREFIX}{{}}/{METRICS_FILE}",
                    sfn.JsonPath.string_at("$.training_job"),
                ),
                "Body": sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.model_metrics")),
                "ContentType": "application/json",
            },
            iam_action="s3:PutObject",
            iam_resources=[artifacts.arn_for_objects(f"{TRAINING_JOBS_PREFIX}*/{METRICS_FILE}")],
            result_path=sfn.JsonPath.DISCARD,
        )
        register = sfn.CustomState(
            scope,
            "Register model version",
            state_json={
                "Type": "Task",
                "Comment": f"A version of model package group {model_package_group(config.prefix)}, "
                f"{config.model_approval_status}",
                "Resource": f"arn:{Aws.PARTITION}:states:::aws-sdk:sagemaker:createModelPackage",
                "Parameters": self.model_package_parameters(),
                # ARN: arn:...:model-package/<group>/<version>
                "ResultSelector": {
                    "arn.$": "$.ModelPackageArn",
                    "version.$": "States.ArrayGetItem(States.StringSplit($.ModelPackageArn, '/'), 2)",
                },
                "ResultPath": "$.model_package",
            },
        )
        for state in (write, register):
            state.add_retry(
                errors=[*REGISTER_THROTTLING, "S3.SlowDownException"],
                interval=Duration.seconds(2),
                backoff_rate=2.0,
                max_attempts=5,
                jitter_strategy=sfn.JitterType.FULL,
            )
            stage.catch(state)
        self.chain = sfn.Chain.start(collect).next(write).next(register)

    def metrics_uri(self) -> str:
        """A States.Format of the metrics file's s3 URI (the job's name from `$.training_job`)."""
        return (
            f"States.Format('s3://{self.artifacts.bucket_name}/{TRAINING_JOBS_PREFIX}"
            f"{{}}/{METRICS_FILE}', $.training_job)"
        )

    def metrics_document(self) -> dict:
        document: dict = {
            "training_job": sfn.JsonPath.string_at("$.training_job"),
            "dataset": sfn.JsonPath.string_at("$.dataset"),
            "validation": {
                "accuracy": sfn.JsonPath.number_at("$.validation_accuracy"),
                "threshold": self.config.accuracy_threshold,
            },
        }
        if self.gated:
            document["test"] = {
                "accuracy": sfn.JsonPath.number_at("$.test.accuracy"),
                "images": sfn.JsonPath.number_at("$.test.images"),
                "threshold": self.config.test_accuracy_threshold,
                "report": sfn.JsonPath.string_at("$.test.report_uri"),
            }
        return document

    def model_package_parameters(self) -> dict:
        c = self.config
        data = self.training_data.bucket_name
        metadata = {
            f"{METADATA_TRAINING_JOB}.$": "$.training_job",
            f"{METADATA_DATASET_MANIFEST}.$": f"States.Format('s3://{data}/{{}}{MANIFEST_FILE}', "
            "$.dataset)",
            f"{METADATA_LABELS_URI}.$": "$.labels_uri",
            f"{METADATA_VALIDATION_ACCURACY}.$": "States.Format('{}', $.validation_accuracy)",
            f"{METADATA_TRAINED_FROM_VERSION}.$": "$.provenance.trained_from_version",
            f"{METADATA_TUNING_SUMMARY}.$": "$.provenance.tuning_summary",
        }
        if self.gated:
            metadata[f"{METADATA_TEST_ACCURACY}.$"] = "States.Format('{}', $.test.accuracy)"
            metadata[f"{METADATA_TEST_REPORT}.$"] = "$.test.report_uri"
        return {
            "ModelPackageGroupName": model_package_group(c.prefix),
            "ModelPackageDescription.$": "States.Format('validation:accuracy {} of training "
            "job {}', $.validation_accuracy, $.training_job)",
            "InferenceSpecification": {
                "Containers": [{"Image": self.image_uri, "ModelDataUrl.$": "$.artifact"}],
                "SupportedContentTypes": CONTENT_TYPES,
                "SupportedResponseMIMETypes": RESPONSE_TYPES,
                "SupportedRealtimeInferenceInstanceTypes": [c.endpoint_instance_type],
                "SupportedTransformInstanceTypes": [c.transform_instance_type],
            },
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri.$": self.metrics_uri()}
                }
            },
            "CustomerMetadataProperties": metadata,
            "ModelApprovalStatus": c.model_approval_status,
        }


def grant_registration(role: iam.IRole, scope: Construct, prefix: str) -> None:
    """CreateModelPackage on this group's versions only (no tags: no AddTags needed)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="RegisterModelVersions",
            actions=["sagemaker:CreateModelPackage"],
            resources=package_arns(scope, prefix),
        )
    )
