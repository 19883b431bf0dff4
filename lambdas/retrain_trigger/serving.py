"""The serving version: the release record (SSM) -> its model package version.

The release workflow writes `/<prefix>/release/model-package-arn` (stacks/names.py
release_parameter); "none" until the first release. The version's labels are its
CustomerMetadataProperties `labels_uri`, its artifact InferenceSpecification.Containers[0]
.ModelDataUrl (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeModelPackage.html).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from botocore.exceptions import ClientError

NO_RELEASE = "none"  # stacks/names.py NO_APPROVED_MODEL
LABELS_URI = "labels_uri"  # stacks/names.py METADATA_LABELS_URI


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    arn: str
    version: str  # "3"
    model_data: str  # s3://.../model.tar.gz
    labels_uri: str  # "" when the version does not name its labels


def served_version(ssm: Any, sagemaker: Any, parameter: str) -> ServedVersion | None:
    """The released version, or None when nothing is released (or no record exists yet)."""
    try:
        arn = ssm.get_parameter(Name=parameter)["Parameter"]["Value"].strip()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise
    if not arn or arn == NO_RELEASE:
        return None
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    return ServedVersion(
        arn=arn,
        version=str(package.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1]),
        model_data=containers[0].get("ModelDataUrl", "") if containers else "",
        labels_uri=package.get("CustomerMetadataProperties", {}).get(LABELS_URI, ""),
    )
