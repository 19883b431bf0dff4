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
from dataclasses import dataclass, field
from pathlib import Path

from preprocessing.errors import UserError

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


@dataclass(frozen=True, slots=True)
class Rejection:
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
        return load_grocery(grocery_root)
    for parent in list(path.resolve().parents)[:2]:
        if find_grocery_root(parent) is not None:
            raise UserError(
                f"{path} is inside the Grocery Store Dataset at {parent}; pass {parent} "
                "(class ids come from its classes.csv and list files)"
            )
    return load_folders(path)


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
            elif not src.is_file():
                rejected.append(Rejection(rel, MISSING_FILE, f"{where}: file not found"))
            elif _bad_name(rel):
                rejected.append(Rejection(rel, BAD_NAME, "tab or newline in the path"))
            else:
                out_name = f"{labels[label]}/{origin}_{Path(rel).stem}.jpg"
                items.append(Item(str(src), rel, label, origin, out_name))
    rejected.extend(_unlisted(root, seen))
    if not items:
        raise UserError(f"{root}: the list files name no existing images; check the dataset copy")
    return Source("grocery", root, labels, items, rejected, coarse, coarse_ids)


def _unlisted(root: Path, listed: dict[str, str]) -> list[Rejection]:
    """Every file under train/, val/, test/ that no list mentions: reported, not ignored."""
    rows = []
    for origin in GROCERY_LISTS:
        folder = root / origin
        if folder.is_dir():
            for file in sorted(_walk_files(folder)):
                rel = file.relative_to(root).as_posix()
                if rel not in listed:
                    rows.append(
                        Rejection(
                            rel, NOT_LISTED, f"in none of {', '.join(GROCERY_LISTS.values())}"
                        )
                    )
    return rows


# --------------------------------------------------------------------------- folder layout


def load_folders(root: Path) -> Source:
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    rejected: list[Rejection] = []
    for file in sorted(f for f in root.iterdir() if f.is_file() and not f.name.startswith(".")):
        rejected.append(
            Rejection(file.name, NOT_IN_CLASS_FOLDER, "images must be in SOURCE/<class>/")
        )
    if not class_dirs:
        raise UserError(
            f"{root} has no class folders; expected SOURCE/<class name>/*.jpg|*.jpeg|*.png "
            "or the Grocery Store Dataset (classes.csv + train.txt)"
        )
    labels = [d.name for d in class_dirs]
    if {label.lower() for label in labels} <= SPLIT_FOLDER_NAMES:
        raise UserError(
            f"{root} holds split folders ({', '.join(labels)}), not class folders; merge them "
            "into SOURCE/<class name>/ and let --split 80/20 split them"
        )
    items: list[Item] = []
    for label, class_dir in enumerate(class_dirs):
        taken: set[str] = set()
        found = 0
        # A .jpg keeps its name; a same-stem .jpeg/.png gets '_jpeg'/'_png' appended.
        ordered = sorted(
            _walk_files(class_dir),
            key=lambda f: (f.with_suffix("").as_posix(), f.suffix.lower() != ".jpg", f.name),
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
            raise UserError(
                f"class folder {class_dir} has no .jpg/.jpeg/.png images; "
                "add images or remove the folder"
            )
    return Source("folders", root, labels, items, rejected)


# --------------------------------------------------------------------------- helpers


def _walk_files(folder: Path):
    """Files below ``folder``, skipping dotfiles and dot-folders (.DS_Store, ._x, .git)."""
    for path in folder.rglob("*"):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.is_file():
            yield path


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
