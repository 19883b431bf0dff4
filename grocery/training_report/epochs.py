"""Per-epoch train and validation accuracy of an image-classification training job.

The built-in algorithm (MXNet) logs one line per epoch and split, e.g.
`[12/01/2026 10:04:12 INFO 140377403373376] Epoch[2] Train-accuracy=0.581019` and
`... Epoch[2] Validation-accuracy=0.666667`, epochs counted from 0 (a real log:
https://github.com/aws/amazon-sagemaker-examples/issues/2746). SageMaker turns the same lines
into the metrics train:accuracy and validation:accuracy
(https://docs.aws.amazon.com/sagemaker/latest/dg/IC-tuning.html); DescribeTrainingJob's
FinalMetricDataList keeps only the last value of each.

Why the logs first: they carry the epoch number, and they are kept as long as the log group
keeps them. The CloudWatch metrics have timestamps only, and CloudWatch keeps 1-minute data
for 15 days, then 5-minute and 1-hour averages, so epochs of a few seconds merge into one
point (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricStat.html).
They are the fallback when the logs are gone, numbered in time order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

# Batch lines (`Epoch[0] Batch [20]#011Speed: ... accuracy=0.12`) do not match: the epoch
# lines have `Train-` or `Validation-` right before `accuracy=`.
_EPOCH_LINE = re.compile(
    r"Epoch\[(\d+)\] (Train|Validation)-accuracy=([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
)

LOGS = "logs"
METRICS = "metrics"
NONE = "none"


@dataclass(frozen=True)
class Epoch:
    number: int  # 1-based: the log's Epoch[0] is epoch 1
    train: float | None
    validation: float | None


@dataclass(frozen=True)
class History:
    epochs: tuple[Epoch, ...]
    source: str  # LOGS, METRICS or NONE
    note: str  # where the values came from, or why there are none

    @property
    def best(self) -> Epoch | None:
        """The epoch of the highest validation accuracy: the algorithm keeps that model."""
        scored = [e for e in self.epochs if e.validation is not None]
        return max(scored, key=lambda e: (e.validation, -e.number)) if scored else None


def from_log_messages(messages: Iterable[str]) -> tuple[Epoch, ...]:
    """Epochs in order. A spot job resumed from a checkpoint logs some epochs again: the
    later line of an epoch wins, as it belongs to the run that produced the model."""
    train: dict[int, float] = {}
    validation: dict[int, float] = {}
    for message in messages:
        for number, split, value in _EPOCH_LINE.findall(message):
            (train if split == "Train" else validation)[int(number)] = float(value)
    numbers = sorted(set(train) | set(validation))
    return tuple(Epoch(n + 1, train.get(n), validation.get(n)) for n in numbers)


def from_metric_series(
    train: Sequence[tuple[datetime, float]], validation: Sequence[tuple[datetime, float]]
) -> tuple[Epoch, ...]:
    """The i-th data point of each series is taken as epoch i (both in time order)."""
    count = max(len(train), len(validation))
    return tuple(
        Epoch(
            i + 1,
            train[i][1] if i < len(train) else None,
            validation[i][1] if i < len(validation) else None,
        )
        for i in range(count)
    )
