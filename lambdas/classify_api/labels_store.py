"""The serving model's label list, read once per execution environment from its S3 URI."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from classify_api.errors import HttpError
from grocery_common.labels import LabelError, parse_labels

S3_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 2, "mode": "standard"}
)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


class LabelsStore:
    """Caches the labels after the first successful read; a failed read is retried next time."""

    def __init__(self, s3_client: Any, uri: str) -> None:
        self._s3 = s3_client
        self.uri = uri
        self._labels: list[str] | None = None

    def get(self) -> list[str]:
        if self._labels is None:
            self._labels = self._load()
        return self._labels

    def _load(self) -> list[str]:
        try:
            bucket, key = parse_s3_uri(self.uri)
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return parse_labels(body, source=self.uri)
        except (ClientError, BotoCoreError) as error:
            raise HttpError(
                503,
                "labels_unavailable",
                "the model's label list cannot be read right now; retry",
                retry_after=5,
            ) from error
        except (ValueError, LabelError) as error:
            # LabelError is a ValueError too: a broken labels.json or URI is a deployment fault.
            raise HttpError(
                502, "labels_invalid", "the model's label list is invalid; operators: see the logs"
            ) from error
