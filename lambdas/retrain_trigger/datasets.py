"""Datasets in the training-data bucket, as `python -m preprocessing upload` lays them out.

`upload` copies a prepared folder to `datasets/<name>/` (its default prefix) and writes
`manifest.json` last, only once everything else is there: a manifest means a complete
dataset. The dataset's class names are `<prefix>labels.json` (position = class id).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from botocore.exceptions import ClientError

from grocery_common.batch_layout import is_missing
from grocery_common.labels import LabelError, parse_labels

DATASETS_PREFIX = "datasets/"
MANIFEST_FILE = "manifest.json"
LABELS_FILE = "labels.json"


@dataclasses.dataclass(frozen=True)
class Dataset:
    prefix: str  # e.g. "datasets/grocery-2027-01/", what the state machine takes
    uploaded: dt.datetime  # the manifest's LastModified

    @property
    def name(self) -> str:
        return self.prefix.removeprefix(DATASETS_PREFIX).rstrip("/")


def dataset_of_manifest(key: str) -> str | None:
    """`datasets/v3/manifest.json` -> `datasets/v3/`; None for any other key."""
    if not key.startswith(DATASETS_PREFIX) or not key.endswith(f"/{MANIFEST_FILE}"):
        return None
    prefix = key.removesuffix(MANIFEST_FILE)
    return prefix if len(prefix) > len(DATASETS_PREFIX) and "//" not in prefix else None


def newest_dataset(s3: Any, bucket: str) -> Dataset | None:
    """The dataset whose manifest.json was written last, among `datasets/<name>/`.

    One ListObjectsV2 per 1,000 dataset folders (Delimiter "/"), then one per dataset for
    its manifest alone: the images under each dataset are never listed.
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
    """
    newest: Dataset | None = None
    for prefix in _dataset_prefixes(s3, bucket):
        manifest = f"{prefix}{MANIFEST_FILE}"
        page = s3.list_objects_v2(Bucket=bucket, Prefix=manifest, MaxKeys=1)
        for entry in page.get("Contents", []):
            if entry["Key"] != manifest:
                continue  # e.g. manifest.json.bak
            if newest is None or entry["LastModified"] > newest.uploaded:
                newest = Dataset(prefix, entry["LastModified"])
    return newest


def _dataset_prefixes(s3: Any, bucket: str) -> list[str]:
    prefixes, token = [], None
    while True:
        kwargs = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, Prefix=DATASETS_PREFIX, Delimiter="/", **kwargs)
        prefixes += [entry["Prefix"] for entry in page.get("CommonPrefixes", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return prefixes


class LabelsUnavailableError(Exception):
    """A labels.json is missing or not a list of class names; the message says which."""


def read_labels(s3: Any, bucket: str, key: str) -> list[str]:
    """The class names in s3://bucket/key (LabelsUnavailableError when missing or unusable)."""
    uri = f"s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if is_missing(error):
            raise LabelsUnavailableError(f"{uri} does not exist") from None
        raise
    try:
        return parse_labels(body, source=uri)
    except LabelError as error:
        raise LabelsUnavailableError(str(error)) from None
