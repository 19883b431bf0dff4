"""`python -m grocery train --from-version N`: incremental training from a registered version.

The algorithm trains incrementally only when the new model has the version's num_layers,
image_shape and num_classes
(https://docs.aws.amazon.com/sagemaker/latest/dg/image-classification.html, "Incremental
Training"). num_classes and the class order come from the dataset's labels.json, so they
are compared with the version's labels.json before anything starts; a difference is
refused with what differs and the advice to train fully.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from grocery import models
from grocery.errors import CommandError
from stacks.names import METADATA_LABELS_URI

LABELS_FILE = "labels.json"
# Set by the version (the network's shape): an incremental run may not change them.
NETWORK_HYPERPARAMETERS = ("num_layers", "image_shape")
_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")


@dataclass(frozen=True)
class InitialModel:
    version: int
    model_data: str
    labels_uri: str

    def execution_input(self) -> dict[str, str]:
        """The state machine's `initial_model` (stacks/training/inputs.py)."""
        return {"version": str(self.version), "model_data": self.model_data}


def resolve(sagemaker, prefix: str, number: int) -> InitialModel:
    """Version `number` of `<prefix>-classifier`: its model.tar.gz and labels.json."""
    version = models.find(sagemaker, prefix, number)
    containers = version.description.get("InferenceSpecification", {}).get("Containers", [])
    model_data = containers[0].get("ModelDataUrl", "") if containers else ""
    labels_uri = version.metadata.get(METADATA_LABELS_URI, "")
    if not model_data or not labels_uri:
        raise CommandError(
            f"--from-version {number}: the version names no model artifact (ModelDataUrl) or "
            f"no {METADATA_LABELS_URI}; train fully instead (omit --from-version)"
        )
    return InitialModel(number, model_data, labels_uri)


def read_labels(s3, uri: str, what: str) -> list[str]:
    match = _S3_URI.match(uri)
    if not match:
        raise CommandError(f"{what}: {uri!r} is not an s3:// URI")
    bucket, key = match.groups()
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as error:
        raise CommandError(f"cannot read {what} {uri}: {error}") from None
    try:
        labels = json.loads(body)
    except ValueError:
        labels = None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise CommandError(f"{what} {uri} is not a JSON array of class names")
    return labels


def labels_difference(dataset: list[str], version: list[str]) -> str:
    """'' when equal (same classes, same order: a class id is its position), else why not."""
    if dataset == version:
        return ""
    counts = f"the dataset has {len(dataset)} classes, the version {len(version)}"
    for position, (new, old) in enumerate(zip(dataset, version, strict=False)):
        if new != old:
            return f"{counts}; the first difference is class {position}: {new!r} in the dataset, {old!r} in the version"
    longer, extra = (
        ("dataset", dataset[len(version)])
        if len(dataset) > len(version)
        else ("version", version[len(dataset)])
    )
    return f"{counts}; the {longer} also has class {min(len(dataset), len(version))}: {extra!r}"


def check_hyperparameters(overrides: dict[str, Any], number: int) -> None:
    for key in NETWORK_HYPERPARAMETERS:
        if key in overrides:
            raise CommandError(
                f"--hyperparameter {key}: it defines the network, which an incremental "
                f"training (--from-version {number}) keeps from the version; omit "
                "--from-version to train fully with another value"
            )


def initial_model(session, *, prefix: str, number: int, bucket: str, dataset: str) -> InitialModel:
    """Resolves the version and refuses it unless its labels equal the dataset's."""
    chosen = resolve(session.client("sagemaker"), prefix, number)
    s3 = session.client("s3")
    dataset_labels = read_labels(
        s3, f"s3://{bucket}/{dataset}{LABELS_FILE}", "the dataset's labels"
    )
    version_labels = read_labels(s3, chosen.labels_uri, f"version {number}'s labels")
    difference = labels_difference(dataset_labels, version_labels)
    if difference:
        raise CommandError(
            f"--from-version {number}: the dataset's labels differ from the version's "
            f"({difference}). Incremental training needs the same classes in the same order "
            "(num_classes and the output layer come from the version); train fully instead: "
            f"omit --from-version."
        )
    return chosen
