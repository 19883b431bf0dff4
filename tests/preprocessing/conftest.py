"""Builders for small fake datasets: every image is generated here with Pillow."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

DATA = Path(__file__).parent / "data"  # two real Grocery Store Dataset images (MIT)
_colors = itertools.count(1)

# (class name, class id, coarse name, coarse id, train/val folder, test folder)
GROCERY_CLASSES = [
    ("Golden-Delicious", 0, "Apple", 0, "Fruit/Apple/Golden-Delicious", None),
    ("Avocado", 1, "Avocado", 1, "Fruit/Avocado", None),
    (
        "Brown-Cap-Mushroom",
        2,
        "Mushroom",
        2,
        "Vegetables/Brown-Cap-Mushroom",
        "Vegetables/Mushroom/Brown-Cap-Mushroom",  # the dataset's test-path quirk
    ),
]
GROCERY_COUNTS = {"train": [4, 4, 4], "val": [2, 2, 0], "test": [3, 3, 3]}


def unique_image(size=(348, 348), mode="RGB") -> Image.Image:
    """An image whose pixels differ from every other one made in this session."""
    n = next(_colors)
    image = Image.new("RGB", size, ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256))
    draw = ImageDraw.Draw(image)
    draw.rectangle((n % 50, n % 40, n % 50 + 60, n % 40 + 60), fill=(255 - n % 256, 0, n % 256))
    return image.convert(mode) if mode != "RGB" else image


def write_jpeg(path: Path, size=(348, 348), **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    unique_image(size).save(path, "JPEG", quality=save.pop("quality", 90), **save)
    return path


def make_grocery(root: Path, counts=None) -> Path:
    """A Grocery-Store-layout dataset under root/dataset; returns root."""
    counts = counts or GROCERY_COUNTS
    dataset = root / "dataset"
    dataset.mkdir(parents=True)
    header = "Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),Iconic Image Path (str),Product Description Path (str)"
    rows = [header] + [
        f"{name},{cid},{coarse},{coarse_id},/iconic/{name}.jpg,/iconic/{name}.txt"
        for name, cid, coarse, coarse_id, _, _ in GROCERY_CLASSES
    ]
    (dataset / "classes.csv").write_bytes("\r\n".join(rows).encode())  # CRLF, no final newline
    for split, per_class in counts.items():
        lines = []
        for (name, cid, _, coarse_id, folder, test_folder), n in zip(
            GROCERY_CLASSES, per_class, strict=True
        ):
            where = test_folder if split == "test" and test_folder else folder
            for i in range(1, n + 1):
                rel = f"{split}/{where}/{name}_{i:03d}.jpg"
                write_jpeg(dataset / rel)
                lines.append(f"{rel}, {cid}, {coarse_id}\n")
        (dataset / f"{split}.txt").write_text("".join(lines))
    return root


def make_folders(root: Path, counts: dict[str, int]) -> Path:
    """A generic SOURCE/<class>/*.jpg layout."""
    for name, n in counts.items():
        for i in range(n):
            write_jpeg(root / name / f"img_{i:03d}.jpg")
    return root


@pytest.fixture
def grocery(tmp_path: Path) -> Path:
    return make_grocery(tmp_path / "grocery")


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    return make_folders(tmp_path / "photos", {"cat": 10, "ant": 5, "bee": 7})
