"""Names shared by the stacks, the Lambdas and the operator commands."""

from __future__ import annotations

# Prefixes of the inference bucket.
INCOMING_PREFIX = "incoming/"
PREDICTIONS_PREFIX = "predictions/"
RESULTS_PREFIX = "results/"


def stack_name(prefix: str, part: str) -> str:
    """`grocery`, `Storage` -> `Grocery-Storage`."""
    return f"{prefix[0].upper()}{prefix[1:]}-{part}"


def approved_model_parameter(prefix: str, field: str) -> str:
    """SSM parameter that points at the approved model (written by the training pipeline).

    Fields: `model-name` (a SageMaker Model name) and `labels-uri` (s3 URI of its labels.json).
    Both hold NO_APPROVED_MODEL until the first model passes the quality gate.
    """
    return f"/{prefix}/approved-model/{field}"


NO_APPROVED_MODEL = "none"
