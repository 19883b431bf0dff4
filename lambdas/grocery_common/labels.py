"""Turns the algorithm's probability vectors into grocery labels.

Pure Python on purpose: no numpy import on the Lambda path (cold start). Used by
the classification API, the batch decode step and the operator commands.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import math
from collections.abc import Sequence
from typing import Any

DEFAULT_TOP_K = 5


class LabelError(ValueError):
    """The label list or a probability vector is unusable; the message says why."""


@dataclasses.dataclass(frozen=True)
class Guess:
    label: str
    class_id: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "class_id": self.class_id, "confidence": self.confidence}


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The best guess and the k best (best first)."""

    top_k: tuple[Guess, ...]

    @property
    def best(self) -> Guess:
        return self.top_k[0]

    @property
    def label(self) -> str:
        return self.best.label

    @property
    def class_id(self) -> int:
        return self.best.class_id

    @property
    def confidence(self) -> float:
        return self.best.confidence

    def sentence(self) -> str:
        """The original write-up's line: 'We are 97.1% confident this looks like a Banana.'"""
        return f"We are {self.confidence:.1%} confident this looks like a {self.label}."

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.best.to_dict(),
            "top_k": [guess.to_dict() for guess in self.top_k],
        }


def parse_labels(text: str | bytes, *, source: str = "labels.json") -> list[str]:
    """A JSON array of distinct, non-empty class names; position = class id."""
    try:
        labels = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LabelError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(labels, list) or not labels:
        raise LabelError(f"{source} must be a non-empty JSON array of class names")
    for class_id, label in enumerate(labels):
        if not isinstance(label, str) or not label.strip():
            raise LabelError(f"{source}: class id {class_id} has no name ({label!r})")
    if len(set(labels)) != len(labels):
        raise LabelError(f"{source}: class names must be distinct")
    return labels


def parse_probabilities(body: str | bytes | Sequence[Any]) -> list[float]:
    """Reads a real-time response (`[p0, p1, ...]`) or a batch `.out` (`{"prediction": [...]}`)."""
    data: Any = body
    if isinstance(body, (str, bytes, bytearray)):
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise LabelError(f"the model's output is not JSON: {error}") from None
    if isinstance(data, dict):
        if "prediction" not in data:
            raise LabelError(f"the model's output has no 'prediction' key (keys: {sorted(data)})")
        data = data["prediction"]
    if not isinstance(data, list) or not data:
        raise LabelError("the model's output must be a non-empty list of probabilities")
    probabilities = []
    for class_id, value in enumerate(data):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise LabelError(
                f"the model's output has a non-numeric probability at class id {class_id}: {value!r}"
            )
        probabilities.append(float(value))
    return probabilities


def decode(
    probabilities: Sequence[float], labels: Sequence[str], k: int = DEFAULT_TOP_K
) -> Prediction:
    """The k most likely labels, best first; ties go to the lower class id."""
    if len(probabilities) != len(labels):
        raise LabelError(
            f"the model returned {len(probabilities)} probabilities but its label list has "
            f"{len(labels)} labels: serve the labels.json that was trained with this model"
        )
    if k < 1:
        raise LabelError(f"top_k must be at least 1, got {k}")
    best = heapq.nsmallest(
        min(k, len(probabilities)), range(len(probabilities)), key=lambda i: (-probabilities[i], i)
    )
    return Prediction(
        top_k=tuple(Guess(label=labels[i], class_id=i, confidence=probabilities[i]) for i in best)
    )
