"""The label list a reviewer picks from: that of the model version the queued item names.

A version number ("3") or a released model name ("grocery-classifier-v3") is looked up in
the model registry (its metadata `labels_uri`); anything else, or a version whose labels
cannot be read, falls back to the released model's labels (/<prefix>/release/labels-uri),
then to the approved model's (/<prefix>/approved-model/labels-uri). Each list is read once.
"""

from __future__ import annotations

import re

import boto3
from botocore.exceptions import ClientError

from grocery.aws import error_code
from grocery.classify import read_labels
from grocery.errors import CommandError
from grocery.models import find
from stacks.names import (
    METADATA_LABELS_URI,
    NO_APPROVED_MODEL,
    approved_model_parameter,
    release_parameter,
)

_VERSION = re.compile(r"^(?:.*-v)?(\d+)$")


def version_number(model_version: str) -> int | None:
    """ "3" -> 3, "grocery-classifier-v3" -> 3, "some-model-name" -> None."""
    match = _VERSION.match(model_version.strip())
    return int(match.group(1)) if match else None


class LabelLists:
    def __init__(self, session: boto3.Session, prefix: str) -> None:
        self.session = session
        self.prefix = prefix
        self._by_version: dict[str, tuple[list[str], str]] = {}
        self._fallback: tuple[list[str], str] | None = None

    def for_version(self, model_version: str) -> tuple[list[str], str]:
        """(labels, where they came from) for an item's `model_version`."""
        if model_version not in self._by_version:
            self._by_version[model_version] = self._resolve(model_version)
        return self._by_version[model_version]

    def _resolve(self, model_version: str) -> tuple[list[str], str]:
        number = version_number(model_version)
        if number is not None:
            try:
                version = find(self.session.client("sagemaker"), self.prefix, number)
                uri = version.metadata.get(METADATA_LABELS_URI, "")
                if uri:
                    return read_labels(uri, self.session), f"model version {number} ({uri})"
            except CommandError:
                pass  # a version deleted from the registry: the released labels are the best guess
        return self.fallback()

    def fallback(self) -> tuple[list[str], str]:
        if self._fallback is None:
            for name in (
                release_parameter(self.prefix, "labels-uri"),
                approved_model_parameter(self.prefix, "labels-uri"),
            ):
                uri = self._parameter(name)
                if uri:
                    self._fallback = (read_labels(uri, self.session), f"{name} ({uri})")
                    break
            else:
                raise CommandError(
                    f"no label list to review with: neither the model versions nor "
                    f"{release_parameter(self.prefix, 'labels-uri')} name one; release a model "
                    "first (python -m grocery models approve 1)"
                )
        return self._fallback

    def _parameter(self, name: str) -> str:
        try:
            value = self.session.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as error:
            if error_code(error) == "ParameterNotFound":
                return ""
            raise
        return "" if value == NO_APPROVED_MODEL else value
