"""Names of the review loop and of the prediction metrics, for the stacks.

The stack-side copy of lambdas/grocery_common/review_queue.py (prefixes) and
lambdas/grocery_common/confidence_metrics.py (namespace, metric and dimension names):
Lambda assets do not ship `stacks/`, and the stacks do not import the Lambdas' code.
tests/infrastructure/test_drift_names.py keeps both sides equal.
"""

from __future__ import annotations

from stacks.names import stack_name

# Prefixes of the inference bucket.
REVIEW_IMAGES_PREFIX = "review/images/"
REVIEW_QUEUE_PREFIX = "review/queue/"
REVIEW_DECISIONS_PREFIX = "review/decisions/"

PREDICTIONS = "Predictions"
TOP1_CONFIDENCE = "Top1Confidence"
BELOW_REVIEW_THRESHOLD = "BelowReviewThreshold"
QUEUED_FOR_REVIEW = "QueuedForReview"
REVIEW_QUEUE_FAILURES = "ReviewQueueFailures"
CLASS_PREDICTIONS = "ClassPredictions"
MODEL_VERSION = "ModelVersion"
SOURCE = "Source"
LABEL = "Label"
SOURCES = ("api", "batch")

# Published by the daily drift check (lambdas/drift_check).
DRIFT_SCORE = "PredictionDriftPSI"
DRIFT_PREDICTIONS = "DriftWindowPredictions"
DRIFT_WINDOW_DAYS = "DriftWindowDays"


def prediction_metrics_namespace(prefix: str) -> str:
    """`grocery` -> `Grocery-Predictions`: one namespace for the API's and batch's metrics."""
    return stack_name(prefix, "Predictions")


def review_environment(prefix: str, *, threshold: float) -> dict[str, str]:
    """What every writer of predictions needs to publish metrics and judge confidence."""
    return {
        "PREDICTION_METRICS_NAMESPACE": prediction_metrics_namespace(prefix),
        "REVIEW_THRESHOLD": repr(float(threshold)),
    }
