"""Reads what `python -m grocery evaluate` compares: predictions, ground truth, labels, manifest.

Every problem with an input file is a `CommandError` naming the file (and the
line, for line-based files) and what to do.

Predictions come in two kinds:

- the batch stack's results, JSON Lines (one `.jsonl` file, or a folder of them):
  one object per image with at least `image` (the source S3 URI), `class_id`,
  `label`, `confidence` and `top_k` (`[{label, class_id, confidence}, ...]`,
  best first), and `status` (`classified`, `skipped` or `failed`, with a
  `reason`). A row without `class_id` (e.g. `{"image": ..., "status": "skipped",
  "reason": "not an image"}`) is an image that was *not classified*: it is
  counted and listed with its status and reason, never dropped silently;
- a folder of raw transform-job outputs: `<input name>.out` files holding
  `{"prediction": [p0, p1, ...]}`, decoded here with the labels.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

from grocery.errors import CommandError
from grocery_common.labels import (
    DEFAULT_TOP_K,
    LabelError,
    decode,
    parse_labels,
    parse_probabilities,
)

OUT_SUFFIX = ".out"
JSONL_SUFFIX = ".jsonl"
# Fields that may carry the image's location in a results row, in order of preference.
IMAGE_FIELDS = ("image", "source", "key")
# Row statuses of the batch stack's results that carry no prediction.
UNCLASSIFIED_STATUSES = ("skipped", "failed")


@dataclasses.dataclass(frozen=True)
class TruthEntry:
    path: str  # relative to the channel prefix, as in the .lst file
    class_id: int
    line: int


@dataclasses.dataclass(frozen=True)
class ResultEntry:
    """One prediction row. `ranking` is empty when the image was not classified."""

    key: str  # the image's location: S3 key (without bucket) or path, see join.py
    location: str  # where the row came from, e.g. "results.jsonl line 4"
    ranking: tuple[int, ...] = ()
    confidence: float | None = None
    reason: str = ""  # why the image was not classified
    model: str | None = None
    batch_id: str | None = None

    @property
    def classified(self) -> bool:
        return bool(self.ranking)


@dataclasses.dataclass(frozen=True)
class Results:
    kind: str  # "jsonl" or "out"
    files: tuple[str, ...]
    entries: tuple[ResultEntry, ...]


def _read_text(path: Path, what: str) -> str:
    if not path.exists():
        raise CommandError(f"{what} {path} does not exist")
    if path.is_dir():
        raise CommandError(f"{what} {path} is a folder; pass a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CommandError(f"{what} {path} is not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise CommandError(f"cannot read {what} {path}: {error.strerror}") from None


# --------------------------------------------------------------------------- labels, manifest


def load_labels(path: Path) -> list[str]:
    try:
        return parse_labels(_read_text(path, "labels file"), source=str(path))
    except LabelError as error:
        raise CommandError(str(error)) from None


def load_coarse_labels(path: Path, labels: list[str]) -> list[str] | None:
    """The manifest's `coarse_labels` (one coarse name per class id), or None when it has none."""
    try:
        manifest = json.loads(_read_text(path, "manifest"))
    except json.JSONDecodeError as error:
        raise CommandError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(manifest, dict):
        raise CommandError(f"{path} must be a JSON object (the dataset's manifest.json)")
    if manifest.get("labels") is not None and manifest["labels"] != labels:
        raise CommandError(
            f"{path}: its 'labels' differ from the labels file; pass the manifest.json and "
            "labels.json of the same prepared dataset"
        )
    coarse = manifest.get("coarse_labels")
    if coarse is None:
        return None
    if (
        not isinstance(coarse, list)
        or len(coarse) != len(labels)
        or not all(isinstance(name, str) and name for name in coarse)
    ):
        raise CommandError(
            f"{path}: 'coarse_labels' must be a list of {len(labels)} names aligned with the "
            "labels (one coarse class per class id)"
        )
    return coarse


# --------------------------------------------------------------------------- truth (.lst)


def load_truth(path: Path, num_classes: int) -> list[TruthEntry]:
    """`index<TAB>class id<TAB>relative/path.jpg` lines (the algorithm's .lst format)."""
    entries: list[TruthEntry] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_read_text(path, "truth file").splitlines(), start=1):
        if not line.strip():
            continue
        columns = line.rstrip("\r").split("\t")
        where = f"{path} line {number}"
        if len(columns) != 3:
            raise CommandError(
                f"{where}: expected 3 tab-separated columns 'index, class id, relative path', "
                f"got {len(columns)} ({line[:80]!r})"
            )
        _, class_text, rel = columns
        try:
            class_id = int(class_text)
        except ValueError:
            raise CommandError(f"{where}: class id {class_text!r} is not a whole number") from None
        if not 0 <= class_id < num_classes:
            raise CommandError(
                f"{where}: class id {class_id} is outside the labels file's {num_classes} classes "
                f"(0..{num_classes - 1}); pass the labels.json of the same dataset"
            )
        rel = normalize_path(rel)
        if not rel:
            raise CommandError(f"{where}: the image path is empty")
        if rel in seen:
            raise CommandError(
                f"{where}: image {rel!r} is listed twice (first on line {seen[rel]})"
            )
        seen[rel] = number
        entries.append(TruthEntry(path=rel, class_id=class_id, line=number))
    if not entries:
        raise CommandError(f"truth file {path} lists no image")
    return entries


def normalize_path(text: str) -> str:
    """`./a//b.jpg` -> `a/b.jpg`; `s3://bucket/a/b.jpg` -> `a/b.jpg` (the key without the bucket)."""
    text = text.strip().replace("\\", "/")
    if text.startswith("s3://"):
        text = text[len("s3://") :].partition("/")[2]
    parts = [part for part in PurePosixPath(text).parts if part not in ("/", ".")]
    return "/".join(parts)


# --------------------------------------------------------------------------- results


def load_results(path: Path, labels: list[str]) -> Results:
    """A `.jsonl` file, a folder of `.jsonl` files, or a folder of `.out` files."""
    if not path.exists():
        raise CommandError(
            f"results {path} does not exist; pass a .jsonl file or a folder of .out files"
        )
    if path.is_file():
        entries = _load_jsonl(path, path.name, labels)
        return Results("jsonl", (str(path),), tuple(entries))
    outs = sorted(p for p in path.rglob(f"*{OUT_SUFFIX}") if p.is_file())
    jsonls = sorted(p for p in path.rglob(f"*{JSONL_SUFFIX}") if p.is_file())
    if outs and jsonls:
        raise CommandError(
            f"results folder {path} holds both .out and .jsonl files; pass one .jsonl file or a "
            "folder of one kind"
        )
    if outs:
        entries = [_load_out(file, path, labels) for file in outs]
        return Results("out", tuple(str(p) for p in outs), tuple(entries))
    if jsonls:
        entries = []
        for file in jsonls:
            entries.extend(_load_jsonl(file, str(file.relative_to(path)), labels))
        return Results("jsonl", tuple(str(p) for p in jsonls), tuple(entries))
    raise CommandError(
        f"results folder {path} holds no .out or .jsonl file; pass the batch results (.jsonl) "
        "or the transform job's output folder"
    )


def _load_out(file: Path, root: Path, labels: list[str]) -> ResultEntry:
    rel = file.relative_to(root).as_posix()
    key = normalize_path(rel[: -len(OUT_SUFFIX)])
    try:
        probabilities = parse_probabilities(file.read_bytes())
        prediction = decode(probabilities, labels, k=DEFAULT_TOP_K)
    except LabelError as error:
        raise CommandError(f"{file}: {error}") from None
    return ResultEntry(
        key=key,
        location=rel,
        ranking=tuple(guess.class_id for guess in prediction.top_k),
        confidence=prediction.confidence,
    )


def _load_jsonl(file: Path, name: str, labels: list[str]) -> list[ResultEntry]:
    entries = []
    for number, line in enumerate(_read_text(file, "results file").splitlines(), start=1):
        if line.strip():
            entries.append(_parse_row(line, f"{name} line {number}", file, number, labels))
    return entries


def _parse_row(line: str, location: str, file: Path, number: int, labels: list[str]) -> ResultEntry:
    where = f"{file} line {number}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise CommandError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(row, dict):
        raise CommandError(f"{where}: expected a JSON object per line, got {type(row).__name__}")
    image = next((row[f] for f in IMAGE_FIELDS if isinstance(row.get(f), str) and row[f]), None)
    if image is None:
        raise CommandError(f"{where}: the row has no 'image' (the source S3 URI of the photo)")
    common = {
        "key": normalize_path(image),
        "location": location,
        "model": _optional_str(row.get("model")),
        "batch_id": _optional_str(row.get("batch_id")),
    }
    class_id = _class_id(row, where, labels)
    if class_id is None:
        # The batch stack writes status "skipped" or "failed" with a reason.
        status = row.get("status") or ("skipped" if row.get("skipped") else "")
        detail = row.get("reason") or row.get("error") or ""
        reason = ": ".join(str(part) for part in (status, detail) if part)
        return ResultEntry(**common, reason=reason or "no class_id in the row")
    ranking = [class_id]
    top_k = row.get("top_k")
    top_k = [] if top_k is None else top_k
    if not isinstance(top_k, list):
        raise CommandError(f"{where}: 'top_k' must be a list of {{label, class_id, confidence}}")
    for guess in top_k:
        if not isinstance(guess, dict):
            raise CommandError(f"{where}: 'top_k' entries must be objects with a class_id")
        guess_id = _class_id(guess, where, labels)
        if guess_id is not None and guess_id not in ranking:
            ranking.append(guess_id)
    confidence = row.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool)
        or not isinstance(confidence, (int, float))
        or not math.isfinite(confidence)
        or not 0.0 <= confidence <= 1.0
    ):
        raise CommandError(f"{where}: 'confidence' {confidence!r} is not a probability in [0, 1]")
    return ResultEntry(
        **common,
        ranking=tuple(ranking),
        confidence=None if confidence is None else float(confidence),
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _class_id(row: dict[str, Any], where: str, labels: list[str]) -> int | None:
    """The row's class id, checked against labels.json (id in range, same name)."""
    class_id = row.get("class_id")
    label = row.get("label")
    if class_id is None:
        unclassified = row.get("skipped") or row.get("status") in UNCLASSIFIED_STATUSES
        if isinstance(label, str) and label in labels and not unclassified:
            return labels.index(label)
        return None
    if isinstance(class_id, bool) or not isinstance(class_id, int):
        raise CommandError(f"{where}: class_id {class_id!r} is not a whole number")
    if not 0 <= class_id < len(labels):
        raise CommandError(
            f"{where}: class_id {class_id} is outside the labels file's {len(labels)} classes "
            f"(0..{len(labels) - 1}); pass the labels.json the model was trained with"
        )
    if isinstance(label, str) and label != labels[class_id]:
        raise CommandError(
            f"{where}: class_id {class_id} is {label!r} in the results but "
            f"{labels[class_id]!r} in the labels file; pass the labels.json the model was trained with"
        )
    return class_id
