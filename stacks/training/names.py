"""Names and S3 layout of the training pipeline, shared by the definition, IAM and the CLI."""

from __future__ import annotations

# Artifacts bucket layout: SageMaker writes <TRAINING_JOBS_PREFIX><job>/output/model.tar.gz,
# the pipeline copies the dataset's labels.json to <TRAINING_JOBS_PREFIX><job>/labels.json.
TRAINING_JOBS_PREFIX = "training-jobs/"
CHECKPOINTS_PREFIX = "checkpoints/"
MANIFEST_FILE = "manifest.json"
LABELS_FILE = "labels.json"
# The four channels of the image-classification algorithm's image format (REFERENCE.md 1).
CHANNELS = ("train", "validation", "train_lst", "validation_lst")
# Step Functions tags every job and model it creates with the execution that made it.
EXECUTION_TAG = "grocery:execution"
DATASET_TAG = "grocery:dataset"
ACCURACY_TAG = "grocery:validation-accuracy"


def job_name_prefix(prefix: str) -> str:
    """Training jobs are named `<prefix>-train-<md5 of execution id and attempt>` (<= 59 chars)."""
    return f"{prefix}-train-"
