"""A review queue in (moto) S3: queued unsure predictions with real photos."""

from __future__ import annotations

import io

from PIL import Image

from grocery_common import review_queue as rq

BUCKET = "grocery-inference"
LABELS = ["Banana", "Plantain", "Golden-Delicious", "Granny-Smith", "Oatghurt", "Oat-Milk"]


class FixedLabels:
    """LabelLists' interface with one list for every model version."""

    def __init__(self, labels: list[str] = LABELS) -> None:
        self.labels = labels

    def for_version(self, model_version: str) -> tuple[list[str], str]:
        return self.labels, f"model version {model_version}"


def photo(n: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), ((n * 60) % 256, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def item(n: int, *, top: str = "Banana", second: str = "Plantain") -> rq.ReviewItem:
    item_id = f"20261201T1200{n:02d}Z-{n:04x}"
    return rq.ReviewItem(
        id=item_id,
        bucket=BUCKET,
        key=f"review/images/2026/12/01/{item_id}.jpg",
        top_k=rq.top_k_of([(top, 0.41), (second, 0.30), ("Oatghurt", 0.1)]),
        model_version="3",
        time=f"2026-12-01T12:00:{n:02d}Z",
        source="api",
    )


def queue(s3, count: int, *, bucket: str = BUCKET) -> list[rq.ReviewItem]:
    items = [item(n) for n in range(count)]
    for it in items:
        s3.put_object(Bucket=bucket, Key=it.key, Body=photo(int(it.id[-4:], 16)))
        s3.put_object(Bucket=bucket, Key=rq.queue_key(it.id), Body=it.to_json().encode())
    return items


def keys(s3, prefix: str, *, bucket: str = BUCKET) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(entry["Key"] for entry in listing.get("Contents", []))
