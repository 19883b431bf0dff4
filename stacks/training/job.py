"""The training job: ONE builder of its definition (algorithm, channels, resources, stopping
condition, output, spot and checkpoints) that the single training job and every job of a
tuning run (tuning.py) share, and the "Train" state of a single run.

"Choose volume encryption" -> "Encrypt EBS volume with data key" | "Use encrypted instance
storage" (sets `$.resource_config`) -> `then` (the "Train" state, or tuning).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_stepfunctions as sfn

from stacks.config import Config
from stacks.training.common import THROTTLING, Resources, Stage
from stacks.training.names import (
    CHANNELS,
    CHECKPOINTS_PREFIX,
    DATASET_TAG,
    EXECUTION_TAG,
    TRAINING_JOBS_PREFIX,
    job_name_prefix,
)

VOLUME_SIZE_GB = 50
# Room for Step Functions to notice the job's end after SageMaker's own limit.
TRAINING_TASK_SLACK = Duration.hours(1)


def resource_configs(config: Config, res: Resources) -> dict[str, dict]:
    """ResourceConfig per storage kind, by the name of the Pass state that sets it.

    SageMaker refuses VolumeKmsKeyId on instance types with local NVMe storage (p3dn,
    p4d, p5, g4dn, g5, g6): that storage is encrypted by the instance's hardware. The
    EBS-only families (p2, p3) get the data key.
    """
    base = {
        # > 1: the algorithm's distributed training (config training_instance_count).
        "InstanceCount": config.training_instance_count,
        "InstanceType": sfn.JsonPath.string_at("$.instance_type"),
        "VolumeSizeInGB": VOLUME_SIZE_GB,
    }
    return {
        "Encrypt EBS volume with data key": {**base, "VolumeKmsKeyId": res.key.key_arn},
        "Use encrypted instance storage": base,
    }


def configured_hyperparameters(config: Config) -> dict[str, str]:
    """The config's hyperparameters, plus kv_store=dist_sync on several instances: the
    algorithm's weight-update mode across machines ("not applicable to single machine
    training"; synchronous "typically provide[s] better accuracy" than dist_async):
    https://docs.aws.amazon.com/sagemaker/latest/dg/IC-Hyperparameter.html (kv_store).
    A configured kv_store wins."""
    hyperparameters = dict(config.hyperparameters)
    if config.training_instance_count > 1:
        hyperparameters.setdefault("kv_store", "dist_sync")
    return hyperparameters


def choose_resources(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    """Sets `$.resource_config` for the run's instance type, then goes on to `then`."""
    ebs, local = (
        sfn.Pass(stage.scope, name, parameters=config, result_path="$.resource_config").next(then)
        for name, config in resource_configs(stage.config, stage.res).items()
    )
    ebs_only = sfn.Condition.or_(
        sfn.Condition.string_matches("$.instance_type", "ml.p2.*"),
        sfn.Condition.string_matches("$.instance_type", "ml.p3.*"),
    )
    return (
        sfn.Choice(
            stage.scope,
            "Choose volume encryption",
            comment="EBS (p2, p3) or NVMe instance storage",
        )
        .when(ebs_only, ebs)
        .otherwise(local)
    )


# The algorithm's incremental-training channel: a model.tar.gz it trained earlier.
# https://docs.aws.amazon.com/sagemaker/latest/dg/image-classification.html ("Incremental
# Training": ChannelName "model", ContentType application/x-sagemaker-model).
MODEL_CHANNEL = "model"
MODEL_CONTENT_TYPE = "application/x-sagemaker-model"


def input_data_config(res: Resources, *, incremental: bool) -> list[dict]:
    """The job's InputDataConfig, evaluated by a Pass state (`$.dataset`, and for an
    incremental run `$.initial_model.model_data`): the four image channels, plus `model`."""
    data = res.training_data.bucket_name

    def channel(name: str, content_type: str, uri: str) -> dict:
        return {
            "ChannelName": name,
            "ContentType": content_type,
            "CompressionType": "None",
            "InputMode": "File",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3DataDistributionType": "FullyReplicated",
                    "S3Uri": uri,
                }
            },
        }

    channels = [
        channel(
            name,
            "application/x-image",
            sfn.JsonPath.format(f"s3://{data}/{{}}{name}/", sfn.JsonPath.string_at("$.dataset")),
        )
        for name in CHANNELS
    ]
    if incremental:
        # S3Prefix of the object itself: the channel holds exactly that model.tar.gz.
        model = sfn.JsonPath.string_at("$.initial_model.model_data")
        channels.append(channel(MODEL_CHANNEL, MODEL_CONTENT_TYPE, model))
    return channels


def job_definition(config: Config, res: Resources, *, checkpoint_uri: str) -> dict:
    """What every training job of the pipeline runs with: the members CreateTrainingJob and
    a tuning job's TrainingJobDefinition (HyperParameterTrainingJobDefinition) share.

    `checkpoint_uri`: the `S3Uri.$` expression of the spot checkpoints (per job).
    InputDataConfig comes from `$.input_data_config` (inputs.py: with the model channel for
    an incremental run), ResourceConfig from `$.resource_config` (choose_resources);
    hyperparameters are added by the caller (HyperParameters, or a tuning job's
    StaticHyperParameters).
    """
    artifacts = res.artifacts.bucket_name
    stopping = {"MaxRuntimeInSeconds": config.training_max_runtime_seconds}
    definition = {
        "AlgorithmSpecification": {"TrainingImage": res.image_uri, "TrainingInputMode": "File"},
        "RoleArn": res.training_role.role_arn,
        "InputDataConfig.$": "$.input_data_config",
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{artifacts}/{TRAINING_JOBS_PREFIX}",
            "KmsKeyId": res.key.key_arn,
        },
        "ResourceConfig.$": "$.resource_config",
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
    }
    if config.use_spot_training:
        stopping["MaxWaitTimeInSeconds"] = config.spot_max_wait_seconds
        definition["EnableManagedSpotTraining"] = True
        # SageMaker resumes an interrupted spot job from here.
        definition["CheckpointConfig"] = {"S3Uri.$": checkpoint_uri}
    return definition


def job_name(prefix: str) -> str:
    """`<prefix>-train-<md5(execution id#attempt)>`: unique per execution and retry, <= 59 chars."""
    return (
        f"States.Format('{job_name_prefix(prefix)}{{}}', States.Hash("
        "States.Format('{}#{}', $$.Execution.Id, $$.State.RetryCount), 'MD5'))"
    )


def tags() -> list[dict]:
    """Every job and model the pipeline creates names the execution and dataset it is from."""
    return [
        {"Key": EXECUTION_TAG, "Value.$": "$$.Execution.Id"},
        {"Key": DATASET_TAG, "Value.$": "$.dataset"},
    ]


def training_parameters(config: Config, res: Resources) -> dict:
    """CreateTrainingJob's Parameters (raw ASL: spot + checkpoints are not in the L2 task)."""
    name = job_name(config.prefix)
    artifacts = res.artifacts.bucket_name
    checkpoints = f"States.Format('s3://{artifacts}/{CHECKPOINTS_PREFIX}{{}}/', {name})"
    return {
        "TrainingJobName.$": name,
        "HyperParameters.$": "$.hyperparameters",
        **job_definition(config, res, checkpoint_uri=checkpoints),
        "Tags": tags(),
    }


def training_timeout(config: Config) -> Duration:
    """The task's timeout: SageMaker's own limit for the job, plus slack."""
    limit = (
        config.spot_max_wait_seconds
        if config.use_spot_training
        else config.training_max_runtime_seconds
    )
    return Duration.seconds(limit + TRAINING_TASK_SLACK.to_seconds())


def train(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    """ "Train": one training job, waited for (.sync); its description in `$.training`."""
    state = sfn.CustomState(
        stage.scope,
        "Train",
        state_json={
            "Type": "Task",
            "Comment": "GPU training job of the built-in image-classification algorithm; "
            "waits for the job to end (.sync)",
            "Resource": f"arn:{Aws.PARTITION}:states:::sagemaker:createTrainingJob.sync",
            "Parameters": training_parameters(stage.config, stage.res),
            "TimeoutSeconds": int(training_timeout(stage.config).to_seconds()),
            "ResultPath": "$.training",
        },
    )
    # Each retry gets a new job name ($$.State.RetryCount is part of it).
    state.add_retry(
        errors=["ThrottlingException", *THROTTLING["sagemaker"]],
        interval=Duration.seconds(5),
        backoff_rate=2.0,
        max_attempts=3,
        jitter_strategy=sfn.JitterType.FULL,
    )
    stage.catch(state)
    return state.next(then)
