"""Which SageMaker instance types have local NVMe storage, one rule for every job and endpoint.

SageMaker refuses a KMS key for the storage volume on those types (CreateTrainingJob's
VolumeKmsKeyId, CreateTransformJob's VolumeKmsKeyId, CreateEndpointConfig's KmsKeyId):
their instance storage is encrypted by a hardware module instead.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html#sagemaker-CreateEndpointConfig-request-KmsKeyId
"""

from __future__ import annotations

# Families with instance storage whose name has no "d" (the "d" ones are found by rule).
_INSTANCE_STORAGE_FAMILIES = ("g5", "g6", "g6e", "p4d", "p4de", "p5", "trn1", "inf2")


def has_instance_storage(instance_type: str) -> bool:
    """`ml.g4dn.xlarge` -> True (the "d" families: c5d, m5d, g4dn, p3dn, ...); `ml.p3.2xlarge` -> False."""
    family = instance_type.split(".")[1]
    generation = family.lstrip("abcdefghijklmnopqrstuvwxyz")
    suffix = generation.lstrip("0123456789")
    return family in _INSTANCE_STORAGE_FAMILIES or "d" in suffix
