"""The training-option configuration keys: incremental training, instance count, tuning.

Importable without aws_cdk (stacks/config.py validates with it). Each check raises
ValueError naming the key, the value and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# GPU families the algorithm's distributed training runs on (ml.p*, ml.g*): the
# image-classification algorithm trains on GPU only, and multi-machine training is
# "dist_sync"/"dist_async" over MXNet's kvstore
# (https://docs.aws.amazon.com/sagemaker/latest/dg/IC-Hyperparameter.html, kv_store).
MAX_TRAINING_INSTANCES = 10
MAX_INCREMENTAL_EPOCHS = 1000
# CreateHyperParameterTuningJob ResourceLimits: MaxNumberOfTrainingJobs 1..(quota, 500 by
# default), MaxParallelTrainingJobs 1..(quota, 100 by default); kept low: each job is a GPU.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceLimits.html
MAX_TUNING_JOBS = 100
MAX_TUNING_PARALLEL_JOBS = 10

# The algorithm's tunable hyperparameters and the recommended ranges
# (https://docs.aws.amazon.com/sagemaker/latest/dg/IC-tuning.html), narrowed to what
# fits transfer learning of a pretrained ResNet with sgd (the configured optimizer):
# learning_rate and mini_batch_size have "the greatest impact"; momentum and weight_decay
# are sgd's. Continuous ranges: [min, max]; integer ranges: [min, max]; categorical: a list
# of strings. Override per key with config `tuning_ranges`.
DEFAULT_TUNING_RANGES: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "continuous", "min": 0.0001, "max": 0.1, "scaling": "Logarithmic"},
    "mini_batch_size": {"type": "integer", "min": 8, "max": 64},
    "momentum": {"type": "continuous", "min": 0.0, "max": 0.999},
    "weight_decay": {"type": "continuous", "min": 0.0, "max": 0.001},
}
# From the recommended-range table (IC-tuning.html): every range must stay inside it.
DOCUMENTED_RANGES: dict[str, tuple[str, Any]] = {
    "beta_1": ("continuous", (1e-6, 0.999)),
    "beta_2": ("continuous", (1e-6, 0.999)),
    "eps": ("continuous", (1e-8, 1.0)),
    "gamma": ("continuous", (1e-8, 0.999)),
    "learning_rate": ("continuous", (1e-6, 0.5)),
    "mini_batch_size": ("integer", (8, 512)),
    "momentum": ("continuous", (0.0, 0.999)),
    "optimizer": ("categorical", ("sgd", "adam", "rmsprop", "nag")),
    "weight_decay": ("continuous", (0.0, 0.999)),
}
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")


def is_gpu_family(instance_type: str) -> bool:
    """ml.p* and ml.g* (the families with GPUs)."""
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    return family[:1] in ("p", "g")


def _fail(key: str, value: object, fix: str) -> ValueError:
    return ValueError(f"config key '{key}' has invalid value {value!r}: {fix}")


def check_training(c: Any) -> None:
    if not 1 <= c.incremental_epochs <= MAX_INCREMENTAL_EPOCHS:
        raise _fail(
            "incremental_epochs",
            c.incremental_epochs,
            f"use 1-{MAX_INCREMENTAL_EPOCHS}: the epochs of an incremental training (one "
            "started from a registered version) unless the execution sets epochs",
        )
    _check_instance_count(c)
    for key, top in (
        ("tuning_max_jobs", MAX_TUNING_JOBS),
        ("tuning_max_parallel_jobs", MAX_TUNING_PARALLEL_JOBS),
    ):
        value = getattr(c, key)
        if not 1 <= value <= top:
            raise _fail(key, value, f"use 1-{top} (training jobs of one tuning run)")
    if c.tuning_max_parallel_jobs > c.tuning_max_jobs:
        raise _fail(
            "tuning_max_parallel_jobs",
            c.tuning_max_parallel_jobs,
            f"must be at most tuning_max_jobs ({c.tuning_max_jobs})",
        )
    check_tuning_ranges(c.tuning_ranges)


def _check_instance_count(c: Any) -> None:
    count = c.training_instance_count
    if not 1 <= count <= MAX_TRAINING_INSTANCES:
        raise _fail(
            "training_instance_count",
            count,
            f"use 1-{MAX_TRAINING_INSTANCES} instances per training job",
        )
    if count > 1 and not is_gpu_family(c.training_instance_type):
        raise _fail(
            "training_instance_count",
            count,
            f"more than one instance needs a GPU training_instance_type (ml.p*, ml.g*), not "
            f"{c.training_instance_type}: the algorithm's distributed training runs on GPUs",
        )


def parse_tuning_ranges(raw: Any) -> dict[str, dict[str, Any]]:
    """Overrides are merged onto the defaults per key; a JSON object string works with `-c`.
    A key set to null (JSON) is removed from the ranges."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise _fail("tuning_ranges", raw, f"use a JSON object ({error.msg})") from None
    if not isinstance(raw, Mapping):
        raise _fail(
            "tuning_ranges", raw, 'use a JSON object such as {"learning_rate": {"min": 0.001}}'
        )
    merged = {key: dict(value) for key, value in DEFAULT_TUNING_RANGES.items()}
    for key, value in raw.items():
        if value is None:
            merged.pop(str(key), None)
        elif isinstance(value, Mapping):
            base = merged.get(str(key), {"type": DOCUMENTED_RANGES.get(str(key), ("",))[0]})
            merged[str(key)] = {**base, **value}
        else:
            raise _fail(f"tuning_ranges.{key}", value, "use an object, or null to drop it")
    return merged


def check_tuning_ranges(ranges: Mapping[str, Mapping[str, Any]]) -> None:
    if not ranges:
        raise _fail("tuning_ranges", dict(ranges), "keep at least one range to tune")
    for key, spec in ranges.items():
        where = f"tuning_ranges.{key}"
        if key not in DOCUMENTED_RANGES:
            raise _fail(
                where,
                dict(spec),
                f"tune one of the algorithm's tunable hyperparameters: {', '.join(DOCUMENTED_RANGES)}",
            )
        kind, allowed = DOCUMENTED_RANGES[key]
        if spec.get("type") != kind:
            raise _fail(where, dict(spec), f'{key} is a {kind} range ("type": "{kind}")')
        if kind == "categorical":
            values = spec.get("values")
            if not values or not isinstance(values, list) or not set(values) <= set(allowed):
                raise _fail(where, dict(spec), f'use "values": a list from {list(allowed)}')
            continue
        low, high = spec.get("min"), spec.get("max")
        number = int if kind == "integer" else (int, float)
        if not all(isinstance(v, number) and not isinstance(v, bool) for v in (low, high)):
            raise _fail(where, dict(spec), f'"min" and "max" must be {kind} numbers')
        if not allowed[0] <= low < high <= allowed[1]:
            raise _fail(
                where,
                dict(spec),
                f"use {allowed[0]} <= min < max <= {allowed[1]} (the documented range)",
            )
        if spec.get("scaling", "Auto") not in SCALINGS:
            raise _fail(where, dict(spec), f"scaling is one of {', '.join(SCALINGS)}")
        if spec.get("scaling") == "Logarithmic" and low <= 0:
            raise _fail(where, dict(spec), "Logarithmic scaling needs min > 0")
