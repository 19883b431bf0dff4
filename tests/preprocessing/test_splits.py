"""splits: parsing, official placement, stratified percentage split, leakage."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from preprocessing import splits
from preprocessing.errors import UserError
from preprocessing.sources import Item

LABELS = ["a", "b", "c"]


def _items(counts: list[int], origin: str = "") -> list[tuple[Item, str]]:
    out = []
    for label, n in enumerate(counts):
        for i in range(n):
            rel = f"{LABELS[label]}/{i:03d}.jpg"
            out.append((Item(Path(rel), rel, label, origin, rel), f"{label}-{i}"))
    return out


@pytest.mark.parametrize(
    ("text", "name", "fraction"),
    [("official", "official", 0.0), ("80/20", "80/20", 0.2), (" 90/10 ", "90/10", 0.1)],
)
def test_parse_split(text, name, fraction):
    spec = splits.parse_split(text)
    assert (spec.name, spec.validation_fraction) == (name, fraction)


@pytest.mark.parametrize("text", ["70/20", "random", "80-20", "100/0", "0/100", "80/20/0"])
def test_unknown_split_is_a_user_error(text):
    with pytest.raises(UserError, match="unknown split"):
        splits.parse_split(text)


def test_stratified_split_per_class():
    placed = splits.assign(_items([50, 10, 7]), splits.parse_split("80/20"), 0, LABELS)
    counts = Counter((p.item.label, p.channel) for p in placed)
    assert counts[(0, "validation")] == 10
    assert counts[(0, "train")] == 40
    assert counts[(1, "validation")] == 2
    assert counts[(1, "train")] == 8
    assert counts[(2, "validation")] == 1
    assert counts[(2, "train")] == 6
    assert len(placed) == 67


def test_every_class_appears_on_both_sides_even_when_tiny():
    placed = splits.assign(_items([2, 3, 2]), splits.parse_split("90/10"), 5, LABELS)
    sides = {(p.item.label, p.channel) for p in placed}
    assert sides == {(label, ch) for label in range(3) for ch in ("train", "validation")}


def test_same_seed_same_split_other_seed_other_split():
    spec = splits.parse_split("80/20")

    def validation(seed):
        return sorted(
            p.item.rel
            for p in splits.assign(_items([40, 40, 40]), spec, seed, LABELS)
            if p.channel == "validation"
        )

    assert validation(1) == validation(1)
    assert validation(1) != validation(2)
    # Input order does not matter either.
    reversed_items = list(reversed(_items([40, 40, 40])))
    again = sorted(
        p.item.rel
        for p in splits.assign(reversed_items, spec, 1, LABELS)
        if p.channel == "validation"
    )
    assert again == validation(1)


def test_identical_files_stay_on_one_side():
    items = _items([20, 20, 20])
    # Five copies of the same photo in class a.
    items = [
        (item, "dup" if item.label == 0 and i < 5 else digest)
        for i, (item, digest) in enumerate(items)
    ]
    for seed in range(10):
        placed = splits.assign(items, splits.parse_split("80/20"), seed, LABELS)
        assert len({p.channel for p in placed if p.sha256 == "dup"}) == 1
        assert splits.find_leaks(placed) == []


def test_class_with_one_distinct_image_cannot_be_split():
    items = [*_items([5, 5, 0]), (Item(Path("c/x"), "c/x", 2, "", "c/x"), "only")]
    with pytest.raises(UserError, match=r"class 'c' has 1 usable image"):
        splits.assign(items, splits.parse_split("80/20"), 0, LABELS)


def test_official_placement_and_empty_checks():
    items = [
        *_items([3, 3, 3], "train"),
        (Item(Path("v"), "v", 0, "val", "a/v.jpg"), "v"),
        (Item(Path("t"), "t", 1, "test", "b/t.jpg"), "t"),
    ]
    placed = splits.assign(items, splits.parse_split("official"), 0, LABELS)
    assert Counter(p.channel for p in placed) == {"train": 9, "validation": 1, "test": 1}
    with pytest.raises(UserError, match="validation channel empty"):
        splits.assign(_items([3, 3, 3], "train"), splits.parse_split("official"), 0, LABELS)
    with pytest.raises(UserError, match=r"class 'c' has no usable training images"):
        splits.assign(
            _items([3, 3, 0], "train") + items[-2:], splits.parse_split("official"), 0, LABELS
        )


def test_leaks_are_counted_as_pairs():
    def placed(rel, channel, digest):
        return splits.Placed(Item(Path(rel), rel, 0, "", rel), digest, channel)

    leaks = splits.find_leaks(
        [
            placed("t1", "train", "x"),
            placed("t2", "train", "x"),
            placed("v1", "validation", "x"),
            placed("e1", "test", "y"),
            placed("t3", "train", "y"),
            placed("t4", "train", "z"),
            placed("t5", "train", "z"),  # duplicates inside train are not leakage
        ]
    )
    assert [leak.sha256 for leak in leaks] == ["x", "y"]
    assert leaks[0].channels == {"train": ["t1", "t2"], "validation": ["v1"]}
    assert splits.leak_pairs(leaks) == {
        "train/validation": 2,
        "train/test": 1,
        "validation/test": 0,
    }
