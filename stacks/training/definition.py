"""The training pipeline's state machine definition (JSONPath ASL, built with CDK states).

Execution input (see docs/training.md):

    {"dataset": "datasets/grocery/",              # key prefix in the training-data bucket
     "hyperparameters": {"epochs": "10"},         # optional, strings, merged onto the config
     "instance_type": "ml.g4dn.xlarge"}           # optional, defaults to the config

Path: apply defaults -> check input -> read manifest.json and labels.json -> check them ->
merge hyperparameters (config <- input <- manifest) -> clamp mini_batch_size -> train
(.sync) -> gate on validation:accuracy -> copy labels.json beside the artifact -> create the
SageMaker Model -> register it as a model package version (register.py) -> notify. Only an
approval releases a version: the release workflow (stacks/release) moves the approved-model
SSM parameters that batch reads, never this pipeline. Every failure
is caught, notified (with its cause) and ends in one Fail state.

Only SDK integrations, no Lambda: every step is visible in the console and runs as-is in moto
(tests/e2e). JSONPath rather than JSONata because moto executes JSONPath only.
"""

from __future__ import annotations

import dataclasses

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from stacks.config import Config
from stacks.instance_storage import has_instance_storage
from stacks.training.names import (
    ACCURACY_TAG,
    CHANNELS,
    CHECKPOINTS_PREFIX,
    DATASET_TAG,
    EXECUTION_TAG,
    LABELS_FILE,
    MANIFEST_FILE,
    TRAINING_JOBS_PREFIX,
    job_name_prefix,
)
from stacks.training.register import Registration, success_message, success_subject

FAILURE = "$.failure"
VOLUME_SIZE_GB = 50
# Room for Step Functions to notice the job's end after SageMaker's own limit.
TRAINING_TASK_SLACK = Duration.hours(1)

# Errors worth retrying with backoff: throttling (and SageMaker's generic API error, which
# is what throttling on CreateTrainingJob/CreateModel surfaces as in Step Functions).
THROTTLING = {
    "s3": ["S3.SlowDownException", "S3.ServiceUnavailableException"],
    "ssm": ["Ssm.ThrottlingException", "Ssm.TooManyUpdatesException"],
    "sns": ["SNS.ThrottledException", "SNS.KMSThrottlingException"],
    "sagemaker": ["SageMaker.ThrottlingException", "SageMaker.AmazonSageMakerException"],
    "lambda": [
        "Lambda.TooManyRequestsException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    ],
}
TEST_PREDICTIONS = "test-predictions/"
EVALUATION_REPORT = "evaluation.json"


@dataclasses.dataclass(frozen=True)
class Resources:
    """What the definition points at (the stack passes its constructs)."""

    training_data: s3.IBucket
    artifacts: s3.IBucket
    key: kms.IKey
    topic: sns.ITopic
    training_role: iam.IRole
    model_role: iam.IRole
    image_uri: str
    # The optional test-set gate's scoring Lambda (config test_accuracy_threshold > 0).
    evaluate_function: lambda_.IFunction | None = None


def _retry_throttling(state, service: str) -> None:
    state.add_retry(
        errors=["ThrottlingException", *THROTTLING[service]],
        interval=Duration.seconds(2),
        backoff_rate=2.0,
        max_attempts=5,
        max_delay=Duration.seconds(60),
        jitter_strategy=sfn.JitterType.FULL,
    )


def _failure(scope: Construct, name: str, error: str, cause: str) -> sfn.Pass:
    """A Pass that states why the execution fails (cause: plain text or a States.Format)."""
    return sfn.Pass(
        scope,
        name,
        parameters={"Error": error, "Cause": cause},
        result_path=FAILURE,
    )


class TrainingDefinition(Construct):
    """Builds the chain; `self.start` is the first state."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, res: Resources
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.res = res
        self.job_prefix = job_name_prefix(config.prefix)

        # ---- failure path: notify, then fail with the cause --------------------------------
        failed = sfn.Fail(
            self,
            "Failed",
            error="TrainingPipelineFailed",
            cause_path=sfn.JsonPath.format(
                "{}: {}",
                sfn.JsonPath.string_at("$.failure.Error"),
                sfn.JsonPath.string_at("$.failure.Cause"),
            ),
        )
        notify_failure = tasks.SnsPublish(
            self,
            "Notify failure",
            topic=res.topic,
            subject=f"{config.prefix}: training pipeline failed",
            message=sfn.TaskInput.from_json_path_at(
                sfn.JsonPath.format(
                    "Training pipeline execution {} failed. {}: {}",
                    sfn.JsonPath.execution_name,
                    sfn.JsonPath.string_at("$.failure.Error"),
                    sfn.JsonPath.string_at("$.failure.Cause"),
                )
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        _retry_throttling(notify_failure, "sns")
        notify_failure.add_catch(failed, errors=["States.ALL"], result_path="$.notify_error")
        notify_failure.next(failed)
        self.notify_failure = notify_failure

        # ---- the happy path ------------------------------------------------------------------
        self.start = self._input().next(self._check_input())

    # Each builder returns the first state of its part and chains to the next part itself.

    def _catch(self, state) -> None:
        state.add_catch(self.notify_failure, errors=["States.ALL"], result_path=FAILURE)

    def _input(self) -> sfn.Chain:
        read = sfn.Pass(
            self,
            "Read input",
            comment="Execution input beside its defaults (instance type from the config)",
            parameters={
                "defaults": {
                    "hyperparameters": {},
                    "instance_type": self.config.training_instance_type,
                },
                "input": sfn.JsonPath.entire_payload,
            },
        )
        apply = sfn.Pass(
            self,
            "Apply defaults",
            parameters={
                "request": sfn.JsonPath.json_merge(
                    sfn.JsonPath.object_at("$.defaults"), sfn.JsonPath.object_at("$.input")
                )
            },
            output_path="$.request",
        )
        return read.next(apply)

    def _check_input(self) -> sfn.Choice:
        reject = _failure(
            self,
            "Reject input",
            "InvalidInput",
            "The execution input must be "
            '{"dataset": "<key prefix in the training-data bucket, ending with />"} '
            'with optional "hyperparameters" (an object of strings) and "instance_type" '
            '(e.g. "ml.p3.2xlarge"); see docs/training.md.',
        ).next(self.notify_failure)
        dataset, hps, instance = "$.dataset", "$.hyperparameters", "$.instance_type"
        valid = sfn.Condition.and_(
            sfn.Condition.is_present(dataset),
            sfn.Condition.is_string(dataset),
            sfn.Condition.string_matches(dataset, "*/"),
            sfn.Condition.not_(sfn.Condition.string_matches(dataset, "s3:*")),
            sfn.Condition.not_(sfn.Condition.string_matches(dataset, "/*")),
            sfn.Condition.is_string(instance),
            sfn.Condition.string_matches(instance, "ml.*"),
            # An object: none of the scalar types (Choice rules have no IsObject).
            sfn.Condition.not_(
                sfn.Condition.or_(
                    sfn.Condition.is_null(hps),
                    sfn.Condition.is_string(hps),
                    sfn.Condition.is_numeric(hps),
                    sfn.Condition.is_boolean(hps),
                )
            ),
        )
        return sfn.Choice(self, "Check input").when(valid, self._read_dataset()).otherwise(reject)

    def _read_dataset_file(
        self, state_name: str, file_name: str, *, result_selector: dict, result_path: str
    ) -> tasks.CallAwsService:
        """GetObject of `<dataset>/<file_name>` from the training-data bucket, parsed as JSON."""
        training_data = self.res.training_data
        return tasks.CallAwsService(
            self,
            state_name,
            service="s3",
            action="getObject",
            parameters={
                "Bucket": training_data.bucket_name,
                "Key": sfn.JsonPath.format(f"{{}}{file_name}", sfn.JsonPath.string_at("$.dataset")),
            },
            iam_action="s3:GetObject",
            iam_resources=[training_data.arn_for_objects(f"*/{file_name}")],
            result_selector=result_selector,
            result_path=result_path,
        )

    def _read_dataset(self) -> sfn.IChainable:
        bucket = self.res.training_data.bucket_name
        body = sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.Body"))
        read_manifest = self._read_dataset_file(
            "Read manifest",
            MANIFEST_FILE,
            result_selector={"content": body},
            result_path="$.manifest",
        )
        # Only the label count is kept: the check compares it with num_classes.
        read_labels = self._read_dataset_file(
            "Read labels",
            LABELS_FILE,
            result_selector={"count": sfn.JsonPath.array_length(body)},
            result_path="$.labels",
        )
        for state, missing in ((read_manifest, MANIFEST_FILE), (read_labels, LABELS_FILE)):
            _retry_throttling(state, "s3")
            not_found = _failure(
                self,
                f"Missing {missing}",
                "DatasetIncomplete",
                sfn.JsonPath.format(
                    f"No {missing} under s3://{bucket}/{{}}: pass the key prefix of a dataset "
                    "uploaded with `python -m preprocessing upload` (it writes manifest.json last).",
                    sfn.JsonPath.string_at("$.dataset"),
                ),
            ).next(self.notify_failure)
            state.add_catch(not_found, errors=["S3.NoSuchKeyException"], result_path=FAILURE)
            self._catch(state)
        return read_manifest.next(read_labels).next(self._check_manifest())

    def _check_manifest(self) -> sfn.Choice:
        classes, samples = (
            "$.manifest.content.num_classes",
            "$.manifest.content.num_training_samples",
        )
        fields_missing = _failure(
            self,
            "Manifest lacks counts",
            "ManifestInvalid",
            sfn.JsonPath.format(
                f"{MANIFEST_FILE} under {{}} must hold the numbers num_classes and "
                "num_training_samples (as written by `python -m preprocessing prepare`).",
                sfn.JsonPath.string_at("$.dataset"),
            ),
        ).next(self.notify_failure)
        inconsistent = _failure(
            self,
            "Manifest inconsistent",
            "ManifestInvalid",
            sfn.JsonPath.format(
                f"{MANIFEST_FILE} under {{}} is inconsistent: num_classes={{}} (needs >= 2 and "
                f"the {LABELS_FILE} length, {{}}), num_training_samples={{}} (needs >= 1).",
                sfn.JsonPath.string_at("$.dataset"),
                sfn.JsonPath.string_at(classes),
                sfn.JsonPath.string_at("$.labels.count"),
                sfn.JsonPath.string_at(samples),
            ),
        ).next(self.notify_failure)
        has_counts = sfn.Condition.and_(
            sfn.Condition.is_present(classes),
            sfn.Condition.is_numeric(classes),
            sfn.Condition.is_present(samples),
            sfn.Condition.is_numeric(samples),
        )
        consistent = sfn.Condition.and_(
            sfn.Condition.number_greater_than_equals(classes, 2),
            sfn.Condition.number_equals_json_path(classes, "$.labels.count"),
            sfn.Condition.number_greater_than_equals(samples, 1),
        )
        check = (
            sfn.Choice(self, "Check manifest")
            .when(sfn.Condition.not_(has_counts), fields_missing)
            .when(sfn.Condition.not_(consistent), inconsistent)
        )
        if self.config.test_accuracy_threshold > 0:
            tests = "$.manifest.content.num_test_samples"
            no_test_channel = _failure(
                self,
                "No test channel",
                "ManifestInvalid",
                sfn.JsonPath.format(
                    f"the test accuracy gate is on (test_accuracy_threshold="
                    f"{self.config.test_accuracy_threshold}) but {MANIFEST_FILE} under {{}} "
                    "counts no test images (num_test_samples): prepare the dataset with a "
                    "test split, or set test_accuracy_threshold=0.",
                    sfn.JsonPath.string_at("$.dataset"),
                ),
            ).next(self.notify_failure)
            has_tests = sfn.Condition.and_(
                sfn.Condition.is_present(tests),
                sfn.Condition.is_numeric(tests),
                sfn.Condition.number_greater_than_equals(tests, 1),
            )
            check.when(sfn.Condition.not_(has_tests), no_test_channel)
        return check.otherwise(self._hyperparameters())

    def _hyperparameters(self) -> sfn.IChainable:
        manifest = "$.manifest.content"
        collect = sfn.Pass(
            self,
            "Collect hyperparameters",
            comment="Configured, requested (execution input) and manifest values, in merge order",
            parameters={
                "dataset": sfn.JsonPath.string_at("$.dataset"),
                "instance_type": sfn.JsonPath.string_at("$.instance_type"),
                "configured": dict(self.config.hyperparameters),
                "requested": sfn.JsonPath.object_at("$.hyperparameters"),
                "from_manifest": {
                    "num_classes": sfn.JsonPath.format(
                        "{}", sfn.JsonPath.string_at(f"{manifest}.num_classes")
                    ),
                    "num_training_samples": sfn.JsonPath.format(
                        "{}", sfn.JsonPath.string_at(f"{manifest}.num_training_samples")
                    ),
                },
                "num_training_samples": sfn.JsonPath.number_at(f"{manifest}.num_training_samples"),
            },
        )
        merge = sfn.Pass(
            self,
            "Merge hyperparameters",
            comment="num_classes and num_training_samples always come from the manifest",
            parameters={
                "dataset": sfn.JsonPath.string_at("$.dataset"),
                "instance_type": sfn.JsonPath.string_at("$.instance_type"),
                "num_training_samples": sfn.JsonPath.number_at("$.num_training_samples"),
                "hyperparameters": sfn.JsonPath.json_merge(
                    sfn.JsonPath.json_merge(
                        sfn.JsonPath.object_at("$.configured"),
                        sfn.JsonPath.object_at("$.requested"),
                    ),
                    sfn.JsonPath.object_at("$.from_manifest"),
                ),
            },
        )
        mini_batch = "$.hyperparameters.mini_batch_size"
        not_text = _failure(
            self,
            "Reject mini_batch_size",
            "InvalidInput",
            'hyperparameters.mini_batch_size must be a string holding a whole number, e.g. "32".',
        ).next(self.notify_failure)
        read_batch = sfn.Pass(
            self,
            "Read mini-batch size",
            parameters={"value": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at(mini_batch))},
            result_path="$.mini_batch_size",
        )
        clamp = sfn.Pass(
            self,
            "Clamp mini-batch size",
            comment="The algorithm fails if mini_batch_size exceeds the number of training images",
            input_path="$.hyperparameters.num_training_samples",
            result_path=mini_batch,
        )
        train = self._storage()
        check_batch = (
            sfn.Choice(self, "Check mini-batch size")
            .when(
                sfn.Condition.number_greater_than_json_path(
                    "$.mini_batch_size.value", "$.num_training_samples"
                ),
                clamp.next(train),
            )
            .otherwise(train)
        )
        batch_is_text = (
            sfn.Choice(self, "Check mini_batch_size type")
            .when(sfn.Condition.is_string(mini_batch), read_batch.next(check_batch))
            .otherwise(not_text)
        )
        return collect.next(merge).next(batch_is_text)

    def resource_configs(self) -> dict[str, dict]:
        """ResourceConfig per storage kind, by the name of the Pass state that sets it.

        SageMaker refuses VolumeKmsKeyId on instance types with local NVMe storage (p3dn,
        p4d, p5, g4dn, g5, g6): that storage is encrypted by the instance's hardware. The
        EBS-only families (p2, p3) get the data key.
        """
        base = {
            "InstanceCount": 1,
            "InstanceType": sfn.JsonPath.string_at("$.instance_type"),
            "VolumeSizeInGB": VOLUME_SIZE_GB,
        }
        return {
            "Encrypt EBS volume with data key": {**base, "VolumeKmsKeyId": self.res.key.key_arn},
            "Use encrypted instance storage": base,
        }

    def _storage(self) -> sfn.IChainable:
        train = self._train()
        (ebs, local) = (
            sfn.Pass(self, name, parameters=config, result_path="$.resource_config").next(train)
            for name, config in self.resource_configs().items()
        )
        ebs_only = sfn.Condition.or_(
            sfn.Condition.string_matches("$.instance_type", "ml.p2.*"),
            sfn.Condition.string_matches("$.instance_type", "ml.p3.*"),
        )
        return (
            sfn.Choice(
                self, "Choose volume encryption", comment="EBS (p2, p3) or NVMe instance storage"
            )
            .when(ebs_only, ebs)
            .otherwise(local)
        )

    def _job_name(self) -> str:
        """`<prefix>-train-<md5(execution id#attempt)>`: unique per execution and retry, <= 59 chars."""
        return (
            f"States.Format('{self.job_prefix}{{}}', States.Hash("
            "States.Format('{}#{}', $$.Execution.Id, $$.State.RetryCount), 'MD5'))"
        )

    def training_parameters(self) -> dict:
        """CreateTrainingJob's Parameters (raw ASL: spot + checkpoints are not in the L2 task)."""
        c, res = self.config, self.res
        data, artifacts = res.training_data.bucket_name, res.artifacts.bucket_name

        def channel(name: str) -> dict:
            return {
                "ChannelName": name,
                "ContentType": "application/x-image",
                "CompressionType": "None",
                "InputMode": "File",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3DataDistributionType": "FullyReplicated",
                        "S3Uri.$": f"States.Format('s3://{data}/{{}}{name}/', $.dataset)",
                    }
                },
            }

        job_name = self._job_name()
        stopping = {"MaxRuntimeInSeconds": c.training_max_runtime_seconds}
        params = {
            "TrainingJobName.$": job_name,
            "AlgorithmSpecification": {
                "TrainingImage": res.image_uri,
                "TrainingInputMode": "File",
            },
            "RoleArn": res.training_role.role_arn,
            "HyperParameters.$": "$.hyperparameters",
            "InputDataConfig": [channel(name) for name in CHANNELS],
            "OutputDataConfig": {
                "S3OutputPath": f"s3://{artifacts}/{TRAINING_JOBS_PREFIX}",
                "KmsKeyId": res.key.key_arn,
            },
            "ResourceConfig.$": "$.resource_config",
            "StoppingCondition": stopping,
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            "Tags": [
                {"Key": EXECUTION_TAG, "Value.$": "$$.Execution.Id"},
                {"Key": DATASET_TAG, "Value.$": "$.dataset"},
            ],
        }
        if c.use_spot_training:
            stopping["MaxWaitTimeInSeconds"] = c.spot_max_wait_seconds
            params["EnableManagedSpotTraining"] = True
            # Per job: SageMaker resumes an interrupted spot job from here.
            params["CheckpointConfig"] = {
                "S3Uri.$": f"States.Format('s3://{artifacts}/{CHECKPOINTS_PREFIX}{{}}/', {job_name})"
            }
        return params

    def training_timeout(self) -> Duration:
        c = self.config
        limit = c.spot_max_wait_seconds if c.use_spot_training else c.training_max_runtime_seconds
        return Duration.seconds(limit + TRAINING_TASK_SLACK.to_seconds())

    def _train(self) -> sfn.IChainable:
        train = sfn.CustomState(
            self,
            "Train",
            state_json={
                "Type": "Task",
                "Comment": "GPU training job of the built-in image-classification algorithm; "
                "waits for the job to end (.sync)",
                "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTrainingJob.sync",
                "Parameters": self.training_parameters(),
                "TimeoutSeconds": int(self.training_timeout().to_seconds()),
                "ResultPath": "$.training",
            },
        )
        # Each retry gets a new job name ($$.State.RetryCount is part of it).
        train.add_retry(
            errors=["ThrottlingException", *THROTTLING["sagemaker"]],
            interval=Duration.seconds(5),
            backoff_rate=2.0,
            max_attempts=3,
            jitter_strategy=sfn.JitterType.FULL,
        )
        self._catch(train)
        return train.next(self._gate())

    def _gate(self) -> sfn.IChainable:
        threshold = self.config.accuracy_threshold
        accuracy = "$.metrics.validation_accuracy[0]"
        job = sfn.JsonPath.string_at("$.training.TrainingJobName")
        no_metric = _failure(
            self,
            "No accuracy metric",
            "AccuracyMissing",
            sfn.JsonPath.format(
                "Training job {} reported no validation:accuracy: nothing was registered.", job
            ),
        ).next(self.notify_failure)
        too_low = _failure(
            self,
            "Accuracy below threshold",
            "AccuracyBelowThreshold",
            sfn.JsonPath.format(
                f"validation:accuracy {{}} of training job {{}} is below the threshold {threshold}: "
                "nothing was registered.",
                sfn.JsonPath.string_at(accuracy),
                job,
            ),
        ).next(self.notify_failure)
        read = sfn.Pass(
            self,
            "Read accuracy",
            parameters={
                "validation_accuracy": sfn.JsonPath.list_at(
                    "$.training.FinalMetricDataList[?(@.MetricName == 'validation:accuracy')].Value"
                )
            },
            result_path="$.metrics",
        )
        gate = (
            sfn.Choice(
                self, "Check accuracy", comment=f"Quality gate: validation:accuracy >= {threshold}"
            )
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present(accuracy),
                    sfn.Condition.is_numeric(accuracy),
                    sfn.Condition.number_greater_than_equals(accuracy, threshold),
                ),
                self._register(),
            )
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present(accuracy), sfn.Condition.is_numeric(accuracy)
                ),
                too_low,
            )
            .otherwise(no_metric)
        )
        has_metrics = (
            sfn.Choice(self, "Has metrics")
            .when(sfn.Condition.is_present("$.training.FinalMetricDataList"), read.next(gate))
            .otherwise(no_metric)
        )
        return has_metrics

    def _register(self) -> sfn.IChainable:
        res = self.res
        artifacts, data = res.artifacts.bucket_name, res.training_data.bucket_name
        job = sfn.JsonPath.string_at("$.training.TrainingJobName")
        describe = sfn.Pass(
            self,
            "Describe model",
            comment="Everything the registration steps and the notification need",
            parameters={
                "training_job": job,
                "artifact": sfn.JsonPath.string_at("$.training.ModelArtifacts.S3ModelArtifacts"),
                "validation_accuracy": sfn.JsonPath.number_at("$.metrics.validation_accuracy[0]"),
                "accuracy_threshold": self.config.accuracy_threshold,
                "dataset": sfn.JsonPath.string_at("$.dataset"),
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
            self,
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
        create_model = sfn.CustomState(
            self,
            "Create model",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createModel",
                "Parameters": self.model_parameters(),
                # The Model's name is the last part of its ARN.
                "ResultSelector": {
                    "name.$": "States.ArrayGetItem(States.StringSplit($.ModelArn, '/'), 1)",
                    "arn.$": "$.ModelArn",
                },
                "ResultPath": "$.model",
            },
        )
        notify = tasks.SnsPublish(
            self,
            "Notify success",
            topic=res.topic,
            subject=success_subject(self.config),
            message=sfn.TaskInput.from_json_path_at(success_message(self.config)),
            result_path=sfn.JsonPath.DISCARD,
        )
        _retry_throttling(copy_labels, "s3")
        create_model.add_retry(
            errors=["ThrottlingException", *THROTTLING["sagemaker"]],
            interval=Duration.seconds(2),
            backoff_rate=2.0,
            max_attempts=5,
            jitter_strategy=sfn.JitterType.FULL,
        )
        _retry_throttling(notify, "sns")
        for state in (copy_labels, create_model):
            self._catch(state)
        # The version is registered; a failed e-mail does not undo that.
        done = sfn.Succeed(self, "Model registered")
        notify.add_catch(done, errors=["States.ALL"], result_path="$.notify_error")
        # Every model that passed the gate(s) becomes a version in the registry (register.py).
        version = Registration(
            self,
            "Registry",
            config=self.config,
            artifacts=res.artifacts,
            training_data=res.training_data,
            image_uri=res.image_uri,
            catch=self.notify_failure,
            failure_path=FAILURE,
        ).chain
        pointers = version.next(notify).next(done)
        registered = describe.next(copy_labels).next(create_model)
        if self.config.test_accuracy_threshold > 0:
            return registered.next(self._test_gate(pointers))
        return registered.next(pointers)

    def transform_parameters(self) -> dict:
        """CreateTransformJob on the dataset's test/ channel with the new model."""
        c, res = self.config, self.res
        data, artifacts = res.training_data.bucket_name, res.artifacts.bucket_name
        resources = {"InstanceType": c.transform_instance_type, "InstanceCount": 1}
        if not has_instance_storage(c.transform_instance_type):
            resources["VolumeKmsKeyId"] = res.key.key_arn
        return {
            # <model name>-<attempt>: unique per execution and retry, <= 63 characters.
            "TransformJobName.$": "States.Format('{}-{}', $.model.name, $$.State.RetryCount)",
            "ModelName.$": "$.model.name",
            "BatchStrategy": "SingleRecord",
            "MaxPayloadInMB": 6,
            "TransformInput": {
                "ContentType": "application/x-image",
                "SplitType": "None",
                "CompressionType": "None",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri.$": f"States.Format('s3://{data}/{{}}test/', $.dataset)",
                    }
                },
            },
            "TransformOutput": {
                "S3OutputPath.$": f"States.Format('s3://{artifacts}/{TRAINING_JOBS_PREFIX}"
                f"{{}}/{TEST_PREDICTIONS}', $.training_job)",
                "KmsKeyId": res.key.key_arn,
                "AssembleWith": "None",
            },
            "TransformResources": resources,
            "Tags": [
                {"Key": EXECUTION_TAG, "Value.$": "$$.Execution.Id"},
                {"Key": DATASET_TAG, "Value.$": "$.dataset"},
            ],
        }

    def _test_gate(self, approve: sfn.IChainable) -> sfn.IChainable:
        """Optional: transform the test/ channel, score it, gate on top-1 test accuracy."""
        res, threshold = self.res, self.config.test_accuracy_threshold
        data, artifacts = res.training_data.bucket_name, res.artifacts.bucket_name
        transform = sfn.CustomState(
            self,
            "Evaluate on test channel",
            state_json={
                "Type": "Task",
                "Comment": "Batch transform of the held-out test/ images with the new model",
                "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTransformJob.sync",
                "Parameters": self.transform_parameters(),
                "TimeoutSeconds": int(Duration.hours(3).to_seconds()),
                # (CDK drops a None ResultPath from raw state JSON: keep a small result.)
                "ResultSelector": {"name.$": "$.TransformJobName"},
                "ResultPath": "$.transform",
            },
        )
        transform.add_retry(
            errors=["ThrottlingException", *THROTTLING["sagemaker"]],
            interval=Duration.seconds(5),
            backoff_rate=2.0,
            max_attempts=3,
            jitter_strategy=sfn.JitterType.FULL,
        )
        score = tasks.LambdaInvoke(
            self,
            "Score test predictions",
            lambda_function=res.evaluate_function,
            payload=sfn.TaskInput.from_object(
                {
                    "truth": {
                        "bucket": data,
                        "lst_key": sfn.JsonPath.format(
                            "{}test_lst/test.lst", sfn.JsonPath.string_at("$.dataset")
                        ),
                        "labels_key": sfn.JsonPath.format(
                            f"{{}}{LABELS_FILE}", sfn.JsonPath.string_at("$.dataset")
                        ),
                    },
                    "predictions": {
                        "bucket": artifacts,
                        "prefix": sfn.JsonPath.format(
                            f"{TRAINING_JOBS_PREFIX}{{}}/{TEST_PREDICTIONS}",
                            sfn.JsonPath.string_at("$.training_job"),
                        ),
                    },
                    "report": {
                        "bucket": artifacts,
                        "key": sfn.JsonPath.format(
                            f"{TRAINING_JOBS_PREFIX}{{}}/{EVALUATION_REPORT}",
                            sfn.JsonPath.string_at("$.training_job"),
                        ),
                    },
                    "threshold": threshold,
                }
            ),
            retry_on_service_exceptions=False,
            result_selector={
                "accuracy": sfn.JsonPath.number_at("$.Payload.test_accuracy"),
                "images": sfn.JsonPath.number_at("$.Payload.images"),
                "passed": sfn.JsonPath.string_at("$.Payload.passed"),
                "report_uri": sfn.JsonPath.string_at("$.Payload.report_uri"),
            },
            result_path="$.test",
        )
        _retry_throttling(score, "lambda")
        for state in (transform, score):
            self._catch(state)
        too_low = _failure(
            self,
            "Test accuracy below threshold",
            "TestAccuracyBelowThreshold",
            sfn.JsonPath.format(
                f"test accuracy {{}} of model {{}} on {{}} test images is below the threshold "
                f"{threshold}: the model was created but not approved; report {{}}.",
                sfn.JsonPath.string_at("$.test.accuracy"),
                sfn.JsonPath.string_at("$.model.name"),
                sfn.JsonPath.string_at("$.test.images"),
                sfn.JsonPath.string_at("$.test.report_uri"),
            ),
        ).next(self.notify_failure)
        gate = (
            sfn.Choice(
                self, "Check test accuracy", comment=f"Test-set gate: accuracy >= {threshold}"
            )
            .when(sfn.Condition.boolean_equals("$.test.passed", True), approve)
            .otherwise(too_low)
        )
        return transform.next(score).next(gate)

    def model_parameters(self) -> dict:
        res = self.res
        return {
            # Unique per execution (the job name) and per retry of this state.
            "ModelName.$": "States.Format('{}-{}', $.training_job, $$.State.RetryCount)",
            "PrimaryContainer": {"Image": res.image_uri, "ModelDataUrl.$": "$.artifact"},
            "ExecutionRoleArn": res.model_role.role_arn,
            "EnableNetworkIsolation": True,
            "Tags": [
                {"Key": EXECUTION_TAG, "Value.$": "$$.Execution.Id"},
                {"Key": DATASET_TAG, "Value.$": "$.dataset"},
                {"Key": ACCURACY_TAG, "Value.$": "States.Format('{}', $.validation_accuracy)"},
            ],
        }
