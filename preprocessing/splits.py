"""Assign validated images to the output channels and find train/validation leakage.

* ``official``: the dataset's own lists: train.txt -> train, val.txt -> validation,
  test.txt -> test (a held-out third channel pair for evaluation).
* ``A/B`` (e.g. ``80/20``): pool the images and split them per class (stratified) into A%
  train and B% validation, reproducibly from the seed. Identical files of the same class
  (same sha256) are kept on the same side so the split itself cannot create leakage.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from preprocessing.errors import UserError
from preprocessing.sources import Item

TRAIN, VALIDATION, TEST = "train", "validation", "test"
CHANNELS = (TRAIN, VALIDATION, TEST)
OFFICIAL = "official"
_OFFICIAL_CHANNEL = {"train": TRAIN, "val": VALIDATION, "test": TEST}
_RATIO = re.compile(r"^(\d{1,2})/(\d{1,2})$")


def official_channel(origin: str) -> str:
    """The channel of an image from the dataset's train/val/test list."""
    return _OFFICIAL_CHANNEL[origin]


@dataclass(frozen=True)
class SplitSpec:
    name: str  # "official" or "80/20"
    validation_fraction: float = 0.0

    @property
    def is_official(self) -> bool:
        return self.name == OFFICIAL


def parse_split(text: str) -> SplitSpec:
    text = text.strip().lower()
    if text == OFFICIAL:
        return SplitSpec(OFFICIAL)
    match = _RATIO.match(text)
    if match:
        train, validation = int(match.group(1)), int(match.group(2))
        if train + validation == 100 and train > 0 and validation > 0:
            return SplitSpec(f"{train}/{validation}", validation / 100)
    raise UserError(
        f"unknown split {text!r}; use 'official' or TRAIN/VALIDATION percentages "
        "adding up to 100, e.g. 80/20"
    )


@dataclass(frozen=True, slots=True)
class Placed:
    """A validated image and where it goes."""

    item: Item
    sha256: str
    channel: str


def assign(
    items: list[tuple[Item, str]], spec: SplitSpec, seed: int, labels: list[str]
) -> list[Placed]:
    """Place (item, sha256) pairs into channels; raise UserError if a class cannot be split."""
    if spec.is_official:
        placed = [Placed(item, digest, official_channel(item.origin)) for item, digest in items]
    else:
        placed = _stratified(items, spec.validation_fraction, seed, labels)
    _check(placed, spec, labels)
    return placed


def _stratified(
    items: list[tuple[Item, str]], fraction: float, seed: int, labels: list[str]
) -> list[Placed]:
    by_class: dict[int, dict[str, list[Item]]] = defaultdict(lambda: defaultdict(list))
    for item, digest in items:
        by_class[item.label][digest].append(item)
    placed: list[Placed] = []
    for label in sorted(by_class):
        groups = sorted(
            (
                (sorted(members, key=lambda i: i.rel), digest)
                for digest, members in by_class[label].items()
            ),
            key=lambda group: group[0][0].rel,  # order independent of hash values
        )
        total = sum(len(members) for members, _ in groups)
        if len(groups) < 2:
            raise UserError(
                f"class {labels[label]!r} has {total} usable image(s) "
                f"({len(groups)} distinct); a train/validation split needs at least 2 distinct "
                "images per class: add images or remove the class"
            )
        target = min(max(int(total * fraction + 0.5), 1), total - 1)
        # One RNG per class: adding or removing a class does not reshuffle the others.
        random.Random(f"{seed}:{labels[label]}").shuffle(groups)
        in_validation = 0
        for members, digest in groups:
            fits = in_validation + len(members) <= total - 1  # train keeps at least one
            wanted = in_validation == 0 or in_validation + len(members) <= target
            take = in_validation < target and fits and wanted
            in_validation += len(members) if take else 0
            channel = VALIDATION if take else TRAIN
            placed.extend(Placed(item, digest, channel) for item in members)
    return placed


def _check(placed: list[Placed], spec: SplitSpec, labels: list[str]) -> None:
    train_counts = [0] * len(labels)
    validation_total = 0
    for p in placed:
        if p.channel == TRAIN:
            train_counts[p.item.label] += 1
        elif p.channel == VALIDATION:
            validation_total += 1
    empty = [labels[i] for i, count in enumerate(train_counts) if count == 0]
    if empty:
        raise UserError(
            f"class {empty[0]!r} has no usable training images ({len(empty)} class(es) empty); "
            "add images, fix the lists, or remove the class"
        )
    if validation_total == 0:
        raise UserError(
            f"split {spec.name!r} leaves the validation channel empty; "
            "the algorithm needs validation images (use --split 80/20 or add val.txt)"
        )


@dataclass(frozen=True)
class Leak:
    sha256: str
    channels: dict[str, list[str]]  # channel -> source paths

    def pairs(self, first: str, second: str) -> int:
        return len(self.channels.get(first, [])) * len(self.channels.get(second, []))


def find_leaks(placed: list[Placed]) -> list[Leak]:
    """Identical files (same sha256) placed in more than one channel."""
    repeated = {digest for digest, count in Counter(p.sha256 for p in placed).items() if count > 1}
    by_hash: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for p in placed:
        if p.sha256 in repeated:  # only duplicates get a (costly) entry
            by_hash[p.sha256][p.channel].append(p.item.rel)
    leaks = [
        Leak(digest, {ch: sorted(paths) for ch, paths in sorted(channels.items())})
        for digest, channels in by_hash.items()
        if len(channels) > 1
    ]
    return sorted(leaks, key=lambda leak: leak.sha256)


def leak_pairs(leaks: list[Leak]) -> dict[str, int]:
    return {
        "train/validation": sum(leak.pairs(TRAIN, VALIDATION) for leak in leaks),
        "train/test": sum(leak.pairs(TRAIN, TEST) for leak in leaks),
        "validation/test": sum(leak.pairs(VALIDATION, TEST) for leak in leaks),
    }
