"""The label comparison and version checks of `train --from-version` (no AWS)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from grocery import train_from_version as from_version
from grocery.errors import CommandError


def test_equal_labels_have_no_difference():
    assert from_version.labels_difference(["a", "b"], ["a", "b"]) == ""


def test_a_longer_dataset_names_its_extra_class():
    assert from_version.labels_difference(["a", "b", "c"], ["a", "b"]) == (
        "the dataset has 3 classes, the version 2; the dataset also has class 2: 'c'"
    )


def test_the_same_classes_in_another_order_differ():
    # A class id is its position in labels.json: a reordering changes what the model answers.
    assert "class 0: 'b' in the dataset, 'a' in the version" in (
        from_version.labels_difference(["b", "a"], ["a", "b"])
    )


class _S3:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def get_object(self, Bucket, Key):  # noqa: N803 - boto3's names
        return {"Body": io.BytesIO(self.body)}


@pytest.mark.parametrize("body", [b"{}", b"not json", b"[1, 2]"])
def test_labels_that_are_not_a_list_of_names_are_refused(body):
    with pytest.raises(CommandError, match="is not a JSON array of class names"):
        from_version.read_labels(_S3(body), "s3://b/k/labels.json", "the dataset's labels")


def test_labels_uri_must_be_s3():
    with pytest.raises(CommandError, match="is not an s3:// URI"):
        from_version.read_labels(_S3(b"[]"), "https://b/k", "version 2's labels")


def test_a_version_without_artifact_or_labels_is_refused(monkeypatch):
    version = SimpleNamespace(description={"InferenceSpecification": {}}, metadata={})
    monkeypatch.setattr(from_version.models, "find", lambda *_: version)
    with pytest.raises(CommandError, match="names no model artifact"):
        from_version.resolve(None, "grocery", 2)
