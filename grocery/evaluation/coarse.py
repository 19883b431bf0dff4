"""The coarse classes (Apple, Juice, Milk, ...) of a fine confusion matrix.

`coarse_of[class id]` is the coarse name of each fine class, as in the
manifest's `coarse_labels` (from the dataset's classes.csv). Coarse classes are
ordered by their first fine class, so the Grocery Store Dataset's 43 coarse
classes come in its coarse-id order (Apple first, Zucchini last).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Group:
    """A run of consecutive fine classes with the same coarse class: ids start..stop-1."""

    name: str
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def coarse_names(coarse_of: Sequence[str]) -> list[str]:
    """The distinct coarse names, in the order of their first fine class."""
    return list(dict.fromkeys(coarse_of))


def groups(coarse_of: Sequence[str]) -> list[Group]:
    """The runs of equal coarse names along the class ids (where the matrix gets separators)."""
    runs: list[Group] = []
    for class_id, name in enumerate(coarse_of):
        if runs and runs[-1].name == name:
            runs[-1] = dataclasses.replace(runs[-1], stop=class_id + 1)
        else:
            runs.append(Group(name, class_id, class_id + 1))
    return runs


def coarse_confusion(
    confusion: Sequence[Sequence[int]], coarse_of: Sequence[str]
) -> tuple[list[str], list[list[int]]]:
    """(coarse names, counts[true coarse][predicted coarse]): the fine matrix summed by group."""
    if len(confusion) != len(coarse_of):
        raise ValueError(
            f"{len(coarse_of)} coarse names for a {len(confusion)}-class confusion matrix"
        )
    names = coarse_names(coarse_of)
    index = {name: position for position, name in enumerate(names)}
    counts = [[0] * len(names) for _ in names]
    for truth, row in enumerate(confusion):
        for predicted, count in enumerate(row):
            counts[index[coarse_of[truth]]][index[coarse_of[predicted]]] += count
    return names, counts
