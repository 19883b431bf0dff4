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


# Instance families whose storage is local NVMe (hardware-encrypted): SageMaker refuses a
# VolumeKmsKeyId for them. Everything else is EBS-backed and gets the data key.
_INSTANCE_STORAGE_FAMILIES = ("g5", "g6", "g6e", "p4d", "p4de", "p5", "trn1", "inf2")


def has_instance_storage(instance_type: str) -> bool:
    """`ml.g4dn.xlarge` -> True (the "d" families: c5d, m5d, g4dn, p3dn, ...); `ml.p3.2xlarge` -> False."""
    family = instance_type.split(".")[1]
    generation = family.lstrip("abcdefghijklmnopqrstuvwxyz")
    suffix = generation.lstrip("0123456789")
    return family in _INSTANCE_STORAGE_FAMILIES or "d" in suffix
