"""The one typed configuration object of the app.

Defaults live here; `cdk.json` context and `-c key=value` override them. Values
from `-c` arrive as strings, values from `cdk.json` as JSON types: both are
parsed by the field's type. Every value is validated on load, and a bad one
fails synth with a message that names the key, the value and what to do.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stacks.image_uri import supported_regions
from stacks.serving.mode_config import check_serving
from stacks.training.retrain_config import check_retraining
from stacks.training.training_config import (
    DEFAULT_TUNING_RANGES,
    check_training,
    parse_tuning_ranges,
)

# The built-in image-classification algorithm trains on GPU instances only.
GPU_TRAINING_FAMILIES = ("p2", "p3", "p3dn", "p4d", "p5", "g4dn", "g5", "g6")

# No checkpoint_frequency: the algorithm stores every checkpoint inside model.tar.gz, which
# grows with each one and is downloaded by every endpoint start and transform job; without
# it only the best epoch is kept. Spot resume uses the job's CheckpointConfig, not this.
# https://docs.aws.amazon.com/sagemaker/latest/dg/IC-Hyperparameter.html
# Transfer-learning defaults for ~4,000 photos of 81 classes (see README).
# num_classes and num_training_samples come from the dataset's manifest at run time.
DEFAULT_HYPERPARAMETERS: dict[str, str] = {
    "use_pretrained_model": "1",
    "num_layers": "50",
    "image_shape": "3,224,224",
    "resize": "256",
    "epochs": "30",
    "learning_rate": "0.01",
    "optimizer": "sgd",
    "mini_batch_size": "32",
    "augmentation_type": "crop_color_transform",
    # The algorithm documents True / False for this one (not 0/1 or lowercase).
    "early_stopping": "True",
    "early_stopping_min_epochs": "8",
    "early_stopping_patience": "4",
    "early_stopping_tolerance": "0.0",
    "lr_scheduler_step": "10,20",
    "lr_scheduler_factor": "0.1",
    "top_k": "5",
    "precision_dtype": "float32",
}

# Set by the training pipeline from the dataset's manifest, never by configuration.
MANIFEST_HYPERPARAMETERS = ("num_classes", "num_training_samples")

API_GATEWAY_LOGGING_ROLE_MODES = ("create", "existing")
# model_approval -> the ModelApprovalStatus a new model package version is registered with.
MODEL_APPROVAL_STATUSES = {"manual": "PendingManualApproval", "auto": "Approved"}

_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,19}$")
_INSTANCE_PATTERN = re.compile(r"^ml\.([a-z0-9]+)\.([0-9]*x?large|medium|small)$")
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the fix."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a deployment can change. See README, "Configuration keys"."""

    prefix: str = "grocery"
    # Region and account for an explicit environment; empty = environment-agnostic templates.
    region: str = ""
    account: str = ""
    training_instance_type: str = "ml.p3.2xlarge"
    training_max_runtime_seconds: int = 4 * 3600
    use_spot_training: bool = True
    spot_max_wait_seconds: int = 8 * 3600
    # Instances per training job (> 1: the algorithm's distributed training, GPU types only).
    training_instance_count: int = 1
    # Epochs of an incremental training (from a registered version) unless the run sets them.
    incremental_epochs: int = 10
    # Hyperparameter tuning (docs/training.md, "Hyperparameter tuning"): the default number
    # of training jobs of a run, how many at once, and the ranges searched.
    tuning_max_jobs: int = 12
    tuning_max_parallel_jobs: int = 2
    tuning_ranges: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_TUNING_RANGES.items()}
    )
    hyperparameters: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_HYPERPARAMETERS)
    )
    accuracy_threshold: float = 0.8
    # Optional second gate: top-1 accuracy on the dataset's test/ channel (0 = off).
    test_accuracy_threshold: float = 0.0
    endpoint_instance_type: str = "ml.m4.xlarge"
    endpoint_min_instances: int = 1
    endpoint_max_instances: int = 2
    endpoint_invocations_per_instance_target: int = 100
    # How the model is served (docs/serving.md, "Serving modes"; costs: docs/costs.md):
    # "realtime" instances, "serverless" (memory and concurrency below) or "async".
    serving_mode: str = "realtime"
    serverless_memory_mb: int = 3072
    serverless_max_concurrency: int = 5
    # Real-time only: in-service hours (UTC), e.g. "8-18 MON-FRI"; outside them the
    # endpoint scales down to 1 instance. Empty: always at its configured capacity.
    endpoint_schedule: str = ""
    # An AWS Budgets cost budget (USD a month) alerting the topic; 0 = none.
    monthly_budget_usd: float = 0.0
    transform_instance_type: str = "ml.m4.xlarge"
    # Batch transform scale (docs/batch.md, "Scale"): instances per job, and parallel
    # requests per instance (0: SageMaker's default for the built-in algorithm, 1).
    transform_instance_count: int = 1
    transform_max_concurrent: int = 0
    batch_window_seconds: int = 300
    batch_max_images: int = 500
    alarm_email: str = ""
    retain_data: bool = True
    # "create": the storage stack sets the account's API Gateway logging role (fresh
    # account); "existing": the account already has one (python -m grocery preflight).
    api_gateway_logging_role: str = "create"
    # "manual": a new model version waits for approval (PendingManualApproval); "auto": it
    # is registered Approved.
    model_approval: str = "manual"
    # Review loop (issue 13): a prediction whose top-1 confidence is below this is queued
    # for a person to label (python -m grocery review).
    review_threshold: float = 0.6
    # Whether the API keeps the photo of an unsure prediction under review/images/ (false:
    # API predictions are never queued, only batch ones, whose photos are already in S3).
    review_keep_api_images: bool = True
    # Days before a kept API photo expires (lifecycle rule on review/images/).
    review_image_retention_days: int = 30
    # Retraining triggers (docs/training.md, "Retraining triggers"): a dataset uploaded by
    # `python -m preprocessing upload` (its manifest.json) starts a training by itself.
    retrain_on_new_dataset: bool = False
    # An EventBridge Scheduler expression (UTC), e.g. "cron(0 3 ? * MON *)" or
    # "rate(7 days)": retrains on the newest dataset. Empty: no schedule.
    retrain_schedule: str = ""
    # Scheduled retraining starts from the serving version when its labels equal the
    # dataset's (incremental training); false: always a full training.
    retrain_incremental: bool = True

    @property
    def model_approval_status(self) -> str:
        return MODEL_APPROVAL_STATUSES[self.model_approval]

    def __post_init__(self) -> None:
        for check in _CHECKS:
            check(self)


def _fail(key: str, value: object, fix: str) -> ConfigError:
    return ConfigError(f"config key '{key}' has invalid value {value!r}: {fix}")


def _check_prefix(c: Config) -> None:
    if not _PREFIX_PATTERN.match(c.prefix):
        raise _fail(
            "prefix",
            c.prefix,
            "use 2-20 characters: lowercase letters, digits and '-', starting with a letter",
        )


# Regions of the other partitions (aws-cn, aws-us-gov, the ISO ones): the templates use
# partition-aware ARNs, but the Powertools layer parameter and the algorithm's images have
# not been checked there, so a pinned region of theirs is refused instead of failing later.
_OTHER_PARTITION_REGIONS = re.compile(r"^(cn|us-gov|us-iso[a-z]*)-")


def _check_region(c: Config) -> None:
    if c.region and _OTHER_PARTITION_REGIONS.match(c.region):
        raise _fail(
            "region",
            c.region,
            "only the commercial 'aws' partition is supported (the Powertools layer "
            "parameter this project reads is not published there); use a region such as "
            "us-east-1 or eu-west-1",
        )
    if c.region and c.region not in supported_regions():
        raise _fail(
            "region",
            c.region,
            "use a region where the image-classification algorithm exists, e.g. us-east-1, "
            "or leave it empty for a region-agnostic template",
        )
    if c.account and not re.fullmatch(r"\d{12}", c.account):
        raise _fail("account", c.account, "use a 12-digit AWS account id, or leave it empty")


def _instance_family(key: str, value: str) -> str:
    match = _INSTANCE_PATTERN.match(value)
    if not match:
        raise _fail(key, value, "use a SageMaker instance type such as ml.m4.xlarge")
    return match.group(1)


def _check_instances(c: Config) -> None:
    family = _instance_family("training_instance_type", c.training_instance_type)
    if family not in GPU_TRAINING_FAMILIES:
        raise _fail(
            "training_instance_type",
            c.training_instance_type,
            "the image-classification algorithm trains on GPU only; use one of the "
            f"ml.{{{','.join(GPU_TRAINING_FAMILIES)}}}.* types, e.g. ml.p3.2xlarge or ml.g4dn.xlarge",
        )
    _instance_family("endpoint_instance_type", c.endpoint_instance_type)
    _instance_family("transform_instance_type", c.transform_instance_type)


def _check_positive(c: Config) -> None:
    for key in (
        "training_max_runtime_seconds",
        "spot_max_wait_seconds",
        "endpoint_min_instances",
        "endpoint_max_instances",
        "endpoint_invocations_per_instance_target",
        "batch_max_images",
    ):
        value = getattr(c, key)
        if value <= 0:
            raise _fail(key, value, "use a positive whole number")
    if c.use_spot_training and c.spot_max_wait_seconds < c.training_max_runtime_seconds:
        raise _fail(
            "spot_max_wait_seconds",
            c.spot_max_wait_seconds,
            f"must be at least training_max_runtime_seconds ({c.training_max_runtime_seconds})",
        )
    if c.endpoint_max_instances < c.endpoint_min_instances:
        raise _fail(
            "endpoint_max_instances",
            c.endpoint_max_instances,
            f"must be at least endpoint_min_instances ({c.endpoint_min_instances})",
        )
    if not 0 <= c.batch_window_seconds <= 300:
        raise _fail(
            "batch_window_seconds",
            c.batch_window_seconds,
            "use 0-300 (the SQS event source's maximum batching window)",
        )
    if not 1 <= c.batch_max_images <= 10000:
        raise _fail("batch_max_images", c.batch_max_images, "use 1-10000 (the SQS batch limit)")
    if c.batch_window_seconds == 0 and c.batch_max_images > 10:
        raise _fail(
            "batch_window_seconds",
            0,
            "use at least 1 when batch_max_images is over 10 (Lambda takes more than 10 SQS "
            "messages at once only with a batching window)",
        )


def _check_threshold(c: Config) -> None:
    if not 0.0 < c.accuracy_threshold <= 1.0:
        raise _fail(
            "accuracy_threshold", c.accuracy_threshold, "use a fraction in (0, 1], e.g. 0.8"
        )
    if not 0.0 <= c.test_accuracy_threshold <= 1.0:
        raise _fail(
            "test_accuracy_threshold",
            c.test_accuracy_threshold,
            "use a fraction in [0, 1], e.g. 0.75, or 0 to skip the test-set evaluation",
        )


def _check_hyperparameters(c: Config) -> None:
    hp = c.hyperparameters
    for key in MANIFEST_HYPERPARAMETERS:
        if key in hp:
            raise _fail(
                f"hyperparameters.{key}",
                hp[key],
                "remove it: the training pipeline reads it from the dataset's manifest.json",
            )
    for key, value in hp.items():
        if not isinstance(value, str) or len(key) > 256 or len(value) > 256:
            raise _fail(f"hyperparameters.{key}", value, "use a string of at most 256 characters")
    if hp.get("early_stopping", "True") not in ("True", "False"):
        raise _fail(
            "hyperparameters.early_stopping",
            hp["early_stopping"],
            "use True or False (the values the algorithm documents)",
        )
    for key in ("epochs", "mini_batch_size", "num_layers"):
        if key in hp and not (hp[key].isdigit() and int(hp[key]) > 0):
            raise _fail(f"hyperparameters.{key}", hp[key], "use a positive whole number")
    shape = hp.get("image_shape", "3,224,224").split(",")
    resize = hp.get("resize")
    if resize is not None and (
        not resize.isdigit() or any(int(resize) <= int(side) for side in shape[1:])
    ):
        raise _fail(
            "hyperparameters.resize",
            resize,
            f"must be a whole number above the image_shape sides ({','.join(shape)})",
        )


def _check_api_gateway_role(c: Config) -> None:
    if c.api_gateway_logging_role not in API_GATEWAY_LOGGING_ROLE_MODES:
        raise _fail(
            "api_gateway_logging_role",
            c.api_gateway_logging_role,
            "use 'create' (this project sets the account's API Gateway CloudWatch Logs role) "
            "or 'existing' (the account and region already have one)",
        )


def _check_model_approval(c: Config) -> None:
    if c.model_approval not in MODEL_APPROVAL_STATUSES:
        raise _fail(
            "model_approval",
            c.model_approval,
            "use 'manual' (a new model version waits for `python -m grocery models approve`) "
            "or 'auto' (it is registered Approved)",
        )


def _check_review(c: Config) -> None:
    if not 0.0 < c.review_threshold <= 1.0:
        raise _fail(
            "review_threshold",
            c.review_threshold,
            "use a fraction in (0, 1], e.g. 0.6: predictions less confident than this are "
            "queued for review (1 queues every prediction)",
        )
    if not 1 <= c.review_image_retention_days <= 3650:
        raise _fail(
            "review_image_retention_days",
            c.review_image_retention_days,
            "use 1-3650 days: how long the API keeps photos queued for review",
        )


def _check_serving(c: Config) -> None:
    try:
        check_serving(c)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _check_retraining(c: Config) -> None:
    try:
        check_retraining(c)
    except ValueError as error:
        raise ConfigError(str(error)) from None


# CreateTransformJob: "If you specify the MaxConcurrentTransforms parameter, the value of
# (MaxConcurrentTransforms * MaxPayloadInMB) also cannot exceed 100 MB"; the batch sends
# MaxPayloadInMB 6 (stacks/batch/transform.py), so at most 16 parallel requests.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html
TRANSFORM_PAYLOAD_MB = 6
MAX_TRANSFORM_CONCURRENT = 100 // TRANSFORM_PAYLOAD_MB
MAX_TRANSFORM_INSTANCES = 20


def _check_transform(c: Config) -> None:
    if not 1 <= c.transform_instance_count <= MAX_TRANSFORM_INSTANCES:
        raise _fail(
            "transform_instance_count",
            c.transform_instance_count,
            f"use 1-{MAX_TRANSFORM_INSTANCES} instances per transform job (each bills by the "
            "second while the job runs; your account's quota may be lower: make preflight)",
        )
    if not 0 <= c.transform_max_concurrent <= MAX_TRANSFORM_CONCURRENT:
        raise _fail(
            "transform_max_concurrent",
            c.transform_max_concurrent,
            f"use 0 (SageMaker's default) to {MAX_TRANSFORM_CONCURRENT}: SageMaker refuses "
            f"more than 100 MB in flight per instance and each request may carry "
            f"{TRANSFORM_PAYLOAD_MB} MB",
        )


def _check_training(c: Config) -> None:
    try:
        check_training(c)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _check_email(c: Config) -> None:
    if c.alarm_email and not _EMAIL_PATTERN.match(c.alarm_email):
        raise _fail("alarm_email", c.alarm_email, "use one e-mail address, or leave it empty")


_CHECKS: tuple[Callable[[Config], None], ...] = (
    _check_prefix,
    _check_region,
    _check_instances,
    _check_positive,
    _check_serving,
    _check_threshold,
    _check_hyperparameters,
    _check_email,
    _check_transform,
    _check_api_gateway_role,
    _check_model_approval,
    _check_review,
    _check_retraining,
    _check_training,
)


def _parse_bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise _fail(key, raw, "use true or false")


def _parse_number(key: str, raw: Any, kind: type) -> int | float:
    if isinstance(raw, bool):
        raise _fail(key, raw, f"use a {kind.__name__}")
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise _fail(key, raw, f"use a {'whole number' if kind is int else 'number'}") from None
    if kind is int and isinstance(raw, float) and raw != value:
        raise _fail(key, raw, "use a whole number")
    return value


def _parse_hyperparameters(raw: Any) -> dict[str, str]:
    """Overrides are merged onto the defaults; a JSON object string works with `-c`."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise _fail("hyperparameters", raw, f"use a JSON object ({error.msg})") from None
    if not isinstance(raw, Mapping):
        raise _fail("hyperparameters", raw, 'use a JSON object such as {"epochs": "10"}')
    merged = dict(DEFAULT_HYPERPARAMETERS)
    merged.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()})
    return merged


def _parse(field: dataclasses.Field, raw: Any) -> Any:
    if field.name == "hyperparameters":
        return _parse_hyperparameters(raw)
    if field.name == "tuning_ranges":
        try:
            return parse_tuning_ranges(raw)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if field.type == "bool":
        return _parse_bool(field.name, raw)
    if field.type in ("int", "float"):
        return _parse_number(field.name, raw, int if field.type == "int" else float)
    return str(raw).strip()


# Context keys that belong to the CDK itself: feature flags ("@aws-cdk/..."), the CLI's
# "aws:cdk:..." settings, lookups cached as "name:account=...:region=...", and the two
# plain keys the CLI writes into cdk.json.
_CDK_KEYS = ("acknowledged-issue-numbers", "cli-telemetry")


def check_known_keys(keys: Iterable[str]) -> None:
    """A misspelt key (`accuracy_treshold`) would silently leave the default in force."""
    known = [field.name for field in dataclasses.fields(Config)]
    for key in keys:
        if key in known or key in _CDK_KEYS or key.startswith("@") or ":" in key:
            continue
        nearest = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean '{nearest[0]}'?" if nearest else "see README, Configuration keys"
        raise ConfigError(f"unknown config key '{key}': {hint}")


def config_from_context(get_context: Callable[[str], Any], keys: Iterable[str] = ()) -> Config:
    """Builds the Config from CDK context (e.g. `app.node.try_get_context`).

    `keys`: every context key given (`app.node.get_all_context()`), to refuse unknown ones.
    """
    check_known_keys(keys)
    values = {}
    for field in dataclasses.fields(Config):
        raw = get_context(field.name)
        if raw is not None:
            values[field.name] = _parse(field, raw)
    return Config(**values)
