"""The review queue: unsure predictions waiting for a person, and what people decided.

One contract shared by the writers (the classify API and batch decode queue an item when
top-1 confidence is below `review_threshold`) and the readers (`python -m grocery review`,
`python -m preprocessing prepare --additions`). Everything lives in the inference bucket:

    review/images/<yyyy>/<mm>/<dd>/<id>.<ext>  photos the API kept for review (lifecycle expiry)
    review/queue/<id>.json                     one ReviewItem per unsure prediction
    review/claims/<id>.json                    a reviewer's lease on an item (conditional write)
    review/decisions/<id>.json                 one Decision per reviewed item

An item stays in `queue/` until it is decided; "skip" is a decision too (the item leaves the
queue for everyone). Nothing about the caller is stored beyond what ReviewItem holds.
Pure Python: the Lambdas import it without extra packages.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

REVIEW_PREFIX = "review/"
IMAGES_PREFIX = "review/images/"
QUEUE_PREFIX = "review/queue/"
CLAIMS_PREFIX = "review/claims/"
DECISIONS_PREFIX = "review/decisions/"

DEFAULT_REVIEW_THRESHOLD = 0.6
SOURCES = ("api", "batch")

# Verdicts of a Decision: a label from the version's label list, or one of the other two.
LABELLED = "label"
NOT_GROCERY = "not_grocery"
SKIPPED = "skip"
VERDICTS = (LABELLED, NOT_GROCERY, SKIPPED)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ReviewQueueError(ValueError):
    """A queue object or a decision is malformed; the message names the field."""


def check_id(item_id: str) -> str:
    if not isinstance(item_id, str) or not _ID.match(item_id):
        raise ReviewQueueError(
            f"review item id {item_id!r} must be 1-128 letters, digits, '.', '_' or '-'"
        )
    return item_id


def queue_key(item_id: str) -> str:
    return f"{QUEUE_PREFIX}{check_id(item_id)}.json"


def claim_key(item_id: str) -> str:
    return f"{CLAIMS_PREFIX}{check_id(item_id)}.json"


def decision_key(item_id: str) -> str:
    return f"{DECISIONS_PREFIX}{check_id(item_id)}.json"


def item_id_of(key: str) -> str:
    """`review/queue/abc.json` -> `abc` (also for claims/ and decisions/ keys)."""
    name = key.rsplit("/", 1)[-1]
    if not name.endswith(".json"):
        raise ReviewQueueError(f"{key!r} is not a review queue object (expected <id>.json)")
    return check_id(name[: -len(".json")])


def is_unsure(confidence: float, threshold: float) -> bool:
    """Queued when the top-1 confidence is strictly below the threshold."""
    return confidence < threshold


def _require(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str):
    if name not in data:
        raise ReviewQueueError(f"{where}: field {name!r} is missing")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ReviewQueueError(f"{where}: field {name!r} has the wrong type ({value!r})")
    return value


@dataclasses.dataclass(frozen=True)
class Guess:
    label: str
    confidence: float


@dataclasses.dataclass(frozen=True)
class ReviewItem:
    """One unsure prediction. `top_k` is best first; `time` is ISO 8601 UTC."""

    id: str
    bucket: str
    key: str
    top_k: tuple[Guess, ...]
    model_version: str  # the model package version number as text, or the model name
    time: str
    source: str  # "api" or "batch"

    @property
    def confidence(self) -> float:
        return self.top_k[0].confidence

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "image": {"bucket": self.bucket, "key": self.key},
                "top_k": [{"label": g.label, "confidence": g.confidence} for g in self.top_k],
                "model_version": self.model_version,
                "time": self.time,
                "source": self.source,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str = "review item") -> ReviewItem:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ReviewQueueError(f"{where}: not JSON ({error})") from None
        if not isinstance(data, dict):
            raise ReviewQueueError(f"{where}: expected a JSON object")
        image = _require(data, "image", dict, where)
        guesses = _require(data, "top_k", list, where)
        if not guesses:
            raise ReviewQueueError(f"{where}: field 'top_k' is empty")
        top_k = tuple(
            Guess(
                label=_require(g, "label", str, f"{where} top_k[{i}]"),
                confidence=float(_require(g, "confidence", (int, float), f"{where} top_k[{i}]")),
            )
            for i, g in enumerate(guesses)
        )
        source = _require(data, "source", str, where)
        if source not in SOURCES:
            raise ReviewQueueError(f"{where}: source {source!r} is not one of {SOURCES}")
        return cls(
            id=check_id(_require(data, "id", str, where)),
            bucket=_require(image, "bucket", str, f"{where} image"),
            key=_require(image, "key", str, f"{where} image"),
            top_k=top_k,
            model_version=_require(data, "model_version", str, where),
            time=_require(data, "time", str, where),
            source=source,
        )


@dataclasses.dataclass(frozen=True)
class Decision:
    """What a reviewer decided about one item. `label` is set only for verdict "label"."""

    id: str
    verdict: str
    label: str | None
    reviewer: str
    time: str
    item: ReviewItem

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ReviewQueueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")
        if (self.verdict == LABELLED) != bool(self.label):
            raise ReviewQueueError(
                f"decision {self.id}: a label is given exactly when the verdict is {LABELLED!r}"
            )

    @property
    def agrees_with_model(self) -> bool:
        return self.verdict == LABELLED and self.label == self.item.top_k[0].label

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "verdict": self.verdict,
                "label": self.label,
                "reviewer": self.reviewer,
                "time": self.time,
                "item": json.loads(self.item.to_json()),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str = "review decision") -> Decision:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ReviewQueueError(f"{where}: not JSON ({error})") from None
        if not isinstance(data, dict):
            raise ReviewQueueError(f"{where}: expected a JSON object")
        label = data.get("label")
        if label is not None and not isinstance(label, str):
            raise ReviewQueueError(f"{where}: field 'label' must be text or null")
        return cls(
            id=check_id(_require(data, "id", str, where)),
            verdict=_require(data, "verdict", str, where),
            label=label,
            reviewer=_require(data, "reviewer", str, where),
            time=_require(data, "time", str, where),
            item=ReviewItem.from_json(json.dumps(_require(data, "item", dict, where)), where=where),
        )


# `python -m grocery review export --out DIR` writes, `prepare --additions DIR` reads:
#     DIR/decisions/<id>.json   every Decision, as in review/decisions/
#     DIR/images/<id><suffix>   the photo of every Decision with verdict "label"
EXPORT_DECISIONS = "decisions"
EXPORT_IMAGES = "images"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def exported_photo_name(decision: Decision) -> str:
    """`<id>.jpg|.jpeg|.png` after the photo's key (the API and batch take JPEG and PNG)."""
    suffix = decision.item.key.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    return f"{decision.id}.{suffix}" if f".{suffix}" in PHOTO_SUFFIXES else f"{decision.id}.jpg"


def top_k_of(pairs: Sequence[tuple[str, float]]) -> tuple[Guess, ...]:
    """[(label, confidence), ...] best first -> the item's top_k."""
    return tuple(Guess(label=label, confidence=float(c)) for label, c in pairs)
