"""How sure the model is, published as CloudWatch metrics (embedded metric format).

The classify API (per request) and batch decode (per batch) publish, through Powertools'
EMF provider (https://docs.powertools.aws.dev/lambda/python/latest/core/metrics/), into one
namespace shared by both sources (`<Prefix>-Predictions`, env PREDICTION_METRICS_NAMESPACE):

    Predictions            Count  predictions made
    Top1Confidence         None   one value per prediction: Average = mean top-1 confidence
    BelowReviewThreshold   Count  1 or 0 per prediction: Average = share below the review
                                  threshold, Sum = how many
    QueuedForReview        Count  review items written
    ReviewQueueFailures    Count  unsure predictions that could not be queued
    each under two dimension sets: [ModelVersion] (per version) and [Source] ("api" |
    "batch": fixed values the alarms watch, whichever version is served);

    ClassPredictions       Count  predictions per class, dimensions [ModelVersion, Label]
                                  (one EMF object per class: the drift check reads these)

EMF has no statistic sets, so per-prediction values are what make Average a true mean
over a batch of any size; Powertools flushes an object every 100 values (EMF's limit per
metric, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
The Lambda `service` dimension Powertools adds by default is left out: API and batch
would otherwise be separate metrics for the same version.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from collections.abc import Mapping

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from grocery_common.review_queue import DEFAULT_REVIEW_THRESHOLD, is_unsure

DEFAULT_NAMESPACE = "Grocery-Predictions"
NAMESPACE_VARIABLE = "PREDICTION_METRICS_NAMESPACE"
THRESHOLD_VARIABLE = "REVIEW_THRESHOLD"

PREDICTIONS = "Predictions"
TOP1_CONFIDENCE = "Top1Confidence"
BELOW_REVIEW_THRESHOLD = "BelowReviewThreshold"
QUEUED_FOR_REVIEW = "QueuedForReview"
REVIEW_QUEUE_FAILURES = "ReviewQueueFailures"
CLASS_PREDICTIONS = "ClassPredictions"
MODEL_VERSION = "ModelVersion"
SOURCE = "Source"
LABEL = "Label"

# `<prefix>-classifier-v<N>` (stacks/names.py released_model_name) -> N.
_VERSIONED_NAME = re.compile(r"^.*-v(\d+)$")


def model_version_of(model_name: str) -> str:
    """The model package version number of a released Model's name, else the name itself."""
    match = _VERSIONED_NAME.match(model_name or "")
    return match.group(1) if match else (model_name or "unknown")


def threshold_from(env: Mapping[str, str] = os.environ) -> float:
    return float(env.get(THRESHOLD_VARIABLE, DEFAULT_REVIEW_THRESHOLD))


@dataclasses.dataclass
class Tally:
    """What one request or one batch predicted, to publish at once."""

    threshold: float
    labels: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    confidences: list[float] = dataclasses.field(default_factory=list)
    queued: int = 0
    queue_failures: int = 0

    def add(self, label: str, confidence: float) -> bool:
        """Counts one prediction; True when it is unsure (below the review threshold)."""
        self.labels[label] += 1
        self.confidences.append(float(confidence))
        return is_unsure(confidence, self.threshold)

    @property
    def count(self) -> int:
        return len(self.confidences)


def _emf(namespace: str) -> EphemeralMetrics:
    metrics = EphemeralMetrics(namespace=namespace)
    metrics.service = None  # no `service` dimension (see the module docstring)
    return metrics


def publish(tally: Tally, *, model_version: str, source: str, namespace: str) -> None:
    """Prints the EMF objects of `tally` to stdout (Lambda sends them to CloudWatch Logs)."""
    if not tally.count and not tally.queue_failures:
        return
    summary = _emf(namespace)
    summary.add_dimension(MODEL_VERSION, model_version)
    summary.add_dimensions(**{SOURCE: source})
    summary.add_metric(PREDICTIONS, MetricUnit.Count, tally.count)
    summary.add_metric(QUEUED_FOR_REVIEW, MetricUnit.Count, tally.queued)
    summary.add_metric(REVIEW_QUEUE_FAILURES, MetricUnit.Count, tally.queue_failures)
    for confidence in tally.confidences:
        summary.add_metric(TOP1_CONFIDENCE, MetricUnit.NoUnit, confidence)
        summary.add_metric(
            BELOW_REVIEW_THRESHOLD,
            MetricUnit.Count,
            1 if is_unsure(confidence, tally.threshold) else 0,
        )
    if summary.metric_set:  # Powertools may just have flushed a full object
        summary.flush_metrics()
    for label, count in sorted(tally.labels.items()):
        per_class = _emf(namespace)
        per_class.add_dimension(MODEL_VERSION, model_version)
        per_class.add_dimension(LABEL, label)
        per_class.add_metric(CLASS_PREDICTIONS, MetricUnit.Count, count)
        per_class.flush_metrics()
