"""Names shared by the stacks, the Lambdas and the operator commands."""

from __future__ import annotations

# Prefixes of the inference bucket.
INCOMING_PREFIX = "incoming/"
PREDICTIONS_PREFIX = "predictions/"
RESULTS_PREFIX = "results/"
# Asynchronous serving (serving_mode=async): the API writes each request's image and its
# record under async-input/<id>/; SageMaker writes the answer under async-output/ or, when
# the model fails, async-failures/ (the endpoint config's S3OutputPath / S3FailurePath).
ASYNC_INPUT_PREFIX = "async-input/"
ASYNC_OUTPUT_PREFIX = "async-output/"
ASYNC_FAILURES_PREFIX = "async-failures/"


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


def model_package_group(prefix: str) -> str:
    """The SageMaker Model Package Group (model registry) of a deployment: every model that
    passes the training gates becomes a version of it."""
    return f"{prefix}-classifier"


# Model package approval statuses (SageMaker API values).
PENDING_MANUAL_APPROVAL = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"

# CustomerMetadataProperties keys of each model package version (the CLI reads them).
METADATA_TRAINING_JOB = "training_job"
METADATA_MODEL_NAME = "model_name"
METADATA_DATASET_MANIFEST = "dataset_manifest"
METADATA_LABELS_URI = "labels_uri"
METADATA_VALIDATION_ACCURACY = "validation_accuracy"
METADATA_TEST_ACCURACY = "test_accuracy"
METADATA_TEST_REPORT = "test_report"
# The version an incremental training started from ("none": a full training).
METADATA_TRAINED_FROM_VERSION = "trained_from_version"
# The tuning run's summary (s3 URI of tuning-summary.json; "none": no tuning).
METADATA_TUNING_SUMMARY = "tuning_summary"


def release_parameter(prefix: str, field: str) -> str:
    """SSM record of the released model version, written only by the release workflow.

    Fields: `model-package-arn` (the version the serving stack declares its Model from) and
    `labels-uri` (its labels.json). NO_APPROVED_MODEL until the first release. The serving
    stack reads both as SSM-typed CloudFormation parameters.
    """
    return f"/{prefix}/release/{field}"


RELEASE_FIELDS = ("model-package-arn", "labels-uri")


def released_model_name(prefix: str, version: str) -> str:
    """The SageMaker Model the serving stack declares for version N: `<prefix>-classifier-vN`."""
    return f"{model_package_group(prefix)}-v{version}"
