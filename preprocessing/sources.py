"""Read a source folder into a list of labelled candidate images.

Two layouts are understood:

* the Grocery Store Dataset (``classes.csv`` + ``train.txt`` / ``val.txt`` / ``test.txt``,
  either in SOURCE or in SOURCE/dataset): class ids come from ``classes.csv`` and the list
  files, never from folder names;
* a generic folder layout ``SOURCE/<class name>/**/*.{jpg,jpeg,png}``: class ids are the
  positions of the class names in sorted order.

Nothing here opens an image: files are only listed. Files that cannot be used for a reason
known at listing time (not listed, unsupported extension, missing, ...) are returned as
:class:`Rejection` rows so that ``rejected.csv`` accounts for every input file.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from preprocessing import walk
from preprocessing.errors import DatasetError, UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
GROCERY_LISTS = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
SPLIT_FOLDER_NAMES = {"train", "training", "val", "valid", "validation", "test", "testing"}

# Reasons known before any image is opened (images.py adds the decoding ones).
NOT_LISTED = "not_listed"
MISSING_FILE = "missing_file"
LISTED_TWICE = "listed_twice"
UNKNOWN_CLASS = "unknown_class"
UNSUPPORTED_EXTENSION = "unsupported_extension"
NOT_IN_CLASS_FOLDER = "not_in_class_folder"
BAD_NAME = "bad_name"


@dataclass(frozen=True, slots=True)  # slots: one per image, kept for the whole run
class Item:
    """One candidate image.

    ``rel`` is the path shown to users (relative to the source root), ``origin`` the official
    list it came from (``train``/``val``/``test``; empty for the folder layout) and
    ``out_name`` its path relative to the output channel, unique across the dataset.
    """

    src: str  # absolute path (a str: far smaller than a Path, and there is one per image)
    rel: str
    label: int
    origin: str
    out_name: str


class Rejection(NamedTuple):
    """A row of rejected.csv: path relative to the source, reason, detail."""

    rel: str
    reason: str
    detail: str = ""


@dataclass
class Source:
    layout: str  # "grocery" or "folders"
    root: Path
    labels: list[str]
    items: list[Item]
    rejected: list[Rejection] = field(default_factory=list)
    coarse_labels: list[str] | None = None
    coarse_label_ids: list[int] | None = None

    @property
    def has_official_splits(self) -> bool:
        return self.layout == "grocery"


def load_source(path: Path) -> Source:
    """Detect the layout of ``path`` and list its images."""
    if not path.exists():
        raise UserError(f"source folder {path} does not exist; pass the folder holding your photos")
    if not path.is_dir():
        raise UserError(f"source {path} is not a folder; pass the folder holding your photos")
    grocery_root = find_grocery_root(path)
    if grocery_root is not None:
        return _check_classes(load_grocery(grocery_root), grocery_root / "classes.csv")
    for parent in list(path.resolve().parents)[:2]:
        if find_grocery_root(parent) is not None:
            raise UserError(
                f"{path} is inside the Grocery Store Dataset at {parent}; pass {parent} "
                "(class ids come from its classes.csv and list files)"
            )
    return _check_classes(load_folders(path), path)


def _check_classes(source: Source, where: Path) -> Source:
    """The algorithm needs num_classes >= 2, and the training pipeline refuses fewer."""
    if len(source.labels) < 2:
        if source.layout == "grocery":
            found, fix = "lists a single class", "restore the dataset's classes.csv"
        else:
            found, fix = "has a single class folder", "add a folder for each other class"
        raise DatasetError(
            f"{where} {found} ({source.labels[0]!r}); the image-classification algorithm "
            f"needs at least 2 classes (num_classes >= 2; training refuses 1): {fix}",
            source.rejected,
        )
    return source


def find_grocery_root(path: Path) -> Path | None:
    for candidate in (path, path / "dataset"):
        if (candidate / "classes.csv").is_file() and (candidate / GROCERY_LISTS["train"]).is_file():
            return candidate
    return None


# --------------------------------------------------------------------------- Grocery layout


def read_grocery_classes(csv_path: Path) -> tuple[list[str], list[str], list[int]]:
    """Return (fine names, coarse names, coarse ids), position = fine class id."""
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if rows and not _is_int(rows[0][1] if len(rows[0]) > 1 else ""):
        rows = rows[1:]  # header
    by_id: dict[int, tuple[str, str, int]] = {}
    for number, row in enumerate(rows, start=2):
        if len(row) < 4 or not _is_int(row[1]) or not _is_int(row[3]):
            raise UserError(
                f"{csv_path} row {number}: expected 'class name, class id, coarse name, coarse id', "
                f"got {','.join(row)!r}; fix or restore the file"
            )
        class_id = int(row[1])
        if class_id in by_id:
            raise UserError(f"{csv_path} row {number}: class id {class_id} appears twice")
        by_id[class_id] = (row[0].strip(), row[2].strip(), int(row[3]))
    if not by_id:
        raise UserError(f"{csv_path} lists no classes; restore the dataset's classes.csv")
    if sorted(by_id) != list(range(len(by_id))):
        raise UserError(
            f"{csv_path}: class ids must be 0..{len(by_id) - 1} without gaps, "
            f"got {sorted(by_id)[:5]}...; fix the file"
        )
    ordered = [by_id[i] for i in range(len(by_id))]
    return [o[0] for o in ordered], [o[1] for o in ordered], [o[2] for o in ordered]


def read_grocery_list(list_path: Path) -> list[tuple[int, str, int]]:
    """Return (line number, path relative to the dataset folder, fine class id)."""
    entries = []
    text = list_path.read_text(encoding="utf-8-sig")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.rsplit(",", 2)]
        if len(parts) != 3 or not _is_int(parts[1]):
            raise UserError(
                f"{list_path} line {number}: expected 'path, class id, coarse id', got {line!r}"
            )
        entries.append((number, parts[0], int(parts[1])))
    return entries


def load_grocery(root: Path) -> Source:
    labels, coarse, coarse_ids = read_grocery_classes(root / "classes.csv")
    items: list[Item] = []
    rejected: list[Rejection] = []
    seen: dict[str, str] = {}
    for origin, list_name in GROCERY_LISTS.items():
        list_path = root / list_name
        if not list_path.is_file():
            continue
        for number, rel, label in read_grocery_list(list_path):
            where = f"{list_name} line {number}"
            if rel in seen:
                rejected.append(Rejection(rel, LISTED_TWICE, f"{where}; already in {seen[rel]}"))
                continue
            seen[rel] = where
            src = root / rel
            if not 0 <= label < len(labels):
                rejected.append(
                    Rejection(rel, UNKNOWN_CLASS, f"{where}: class id {label} not in classes.csv")
                )
            elif (problem := _not_a_file(src)) is not None:
                reason, detail = problem
                rejected.append(Rejection(rel, reason, f"{where}: {detail}"))
            elif _bad_name(rel):
                rejected.append(Rejection(rel, BAD_NAME, "tab or newline in the path"))
            else:
                out_name = f"{labels[label]}/{origin}_{Path(rel).stem}.jpg"
                items.append(Item(str(src), rel, label, origin, out_name))
    rejected.extend(_unlisted(root, seen))
    if not items:
        raise DatasetError(
            f"{root}: the list files name no existing images; check the dataset copy", rejected
        )
    return Source("grocery", root, labels, items, rejected, coarse, coarse_ids)


def _unlisted(root: Path, listed: dict[str, str]) -> list[Rejection]:
    """Every file under train/, val/, test/ that no list mentions: reported, not ignored."""
    rows = []
    lists = ", ".join(GROCERY_LISTS.values())
    for origin in GROCERY_LISTS:
        folder = root / origin
        if folder.is_dir():
            files, skipped = walk.walk(folder, (os.path.realpath(root),))
            for file in sorted(files):
                rel = file.relative_to(root).as_posix()
                if rel not in listed:
                    rows.append(Rejection(rel, NOT_LISTED, f"in none of {lists}"))
            rows.extend(row for row in _rejections(root, skipped) if row.rel not in listed)
    return rows


# --------------------------------------------------------------------------- folder layout


def load_folders(root: Path) -> Source:
    class_dirs, rejected = _top_level(root)
    if not class_dirs:
        raise DatasetError(
            f"{root} has no class folders; expected SOURCE/<class name>/*.jpg|*.jpeg|*.png "
            "or the Grocery Store Dataset (classes.csv + train.txt)",
            rejected,
        )
    labels = [d.name for d in class_dirs]
    if {label.lower() for label in labels} <= SPLIT_FOLDER_NAMES:
        raise UserError(
            f"{root} holds split folders ({', '.join(labels)}), not class folders; merge them "
            "into SOURCE/<class name>/ and let --split 80/20 split them"
        )
    items: list[Item] = []
    empty: list[Path] = []
    walked = (os.path.realpath(root),)
    for label, class_dir in enumerate(class_dirs):
        taken: set[str] = set()
        found = 0
        files, skipped = walk.walk(class_dir, walked)
        rejected.extend(_rejections(root, skipped))
        # A .jpg keeps its name; a same-stem .jpeg/.png gets '_jpeg'/'_png' appended.
        ordered = sorted(
            files, key=lambda f: (f.with_suffix("").as_posix(), f.suffix.lower() != ".jpg", f.name)
        )
        for file in ordered:
            rel = file.relative_to(root).as_posix()
            suffix = file.suffix.lower()
            if suffix not in IMAGE_EXTENSIONS:
                rejected.append(
                    Rejection(rel, UNSUPPORTED_EXTENSION, f"'{file.suffix}' is not .jpg/.jpeg/.png")
                )
                continue
            found += 1
            if _bad_name(rel):
                rejected.append(Rejection(rel, BAD_NAME, "tab or newline in the path"))
                continue
            stem = file.relative_to(class_dir).with_suffix("").as_posix().replace("/", "_")
            name = _unique(f"{stem}.jpg", f"{stem}_{suffix[1:]}.jpg", taken)
            items.append(Item(str(file), rel, label, "", f"{class_dir.name}/{name}"))
        if found == 0:
            empty.append(class_dir)
    if empty:
        others = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise DatasetError(
            f"class folder {empty[0]}{others} has no .jpg/.jpeg/.png images; "
            "add images or remove the folder",
            rejected,
        )
    return Source("folders", root, labels, items, rejected)


def _top_level(root: Path) -> tuple[list[Path], list[Rejection]]:
    """The class folders of SOURCE, and a row for every other entry directly in it."""
    try:
        entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise UserError(f"cannot list the source folder {root}: {exc.strerror}") from None
    class_dirs: list[Path] = []
    skipped: list[walk.Skipped] = []
    for path in entries:
        kind, detail = walk.entry_kind(path)
        if kind == walk.FILE:
            skipped.append(
                walk.Skipped(path, NOT_IN_CLASS_FOLDER, "images must be in SOURCE/<class>/")
            )
        elif kind != walk.FOLDER:
            skipped.append(walk.Skipped(path, kind, detail))
        elif (real := walk.leads_back(path, (os.path.realpath(root),))) is not None:
            skipped.append(walk.Skipped(path, walk.SYMLINK_LOOP, walk.loop_detail(real)))
        else:
            class_dirs.append(path)
    return class_dirs, _rejections(root, skipped)


# --------------------------------------------------------------------------- helpers


def _rejections(root: Path, skipped: list[walk.Skipped]) -> list[Rejection]:
    return [
        Rejection(row.path.relative_to(root).as_posix(), row.reason, row.detail) for row in skipped
    ]


def _not_a_file(path: Path) -> tuple[str, str] | None:
    """None for a regular file (symlinks followed), else (reason, detail) for rejected.csv."""
    kind, detail = walk.entry_kind(path)
    if kind == walk.FILE:
        return None
    if kind == walk.FOLDER:
        return MISSING_FILE, "a folder, not an image file"
    if kind == walk.UNREADABLE and not os.path.lexists(path):
        return MISSING_FILE, "file not found"
    return kind, detail


def _unique(first: str, second: str, taken: set[str]) -> str:
    name = first if first not in taken else second
    counter = 2
    base = name[: -len(".jpg")]
    while name in taken:
        name = f"{base}_{counter}.jpg"
        counter += 1
    taken.add(name)
    return name


def _is_int(text: str) -> bool:
    try:
        int(text.strip())
    except ValueError:
        return False
    return True


def _bad_name(rel: str) -> bool:
    return any(ch in rel for ch in "\t\n\r")
