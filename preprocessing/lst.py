"""The algorithm's ``.lst`` index: ``index<TAB>class id<TAB>path relative to the channel``."""

from __future__ import annotations

import hashlib
from pathlib import Path


def format_lst(entries: list[tuple[int, str]]) -> str:
    """Lines for (class id, relative path) pairs, sorted by class id then path, indexed from 0."""
    ordered = sorted(entries)
    return "".join(f"{index}\t{label}\t{path}\n" for index, (label, path) in enumerate(ordered))


def write_lst(path: Path, entries: list[tuple[int, str]]) -> str:
    """Write the list file and return its sha256."""
    data = format_lst(entries).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_lst(path: Path) -> list[tuple[int, int, str]]:
    """Parse a list file into (index, class id, relative path) rows."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        index, label, rel = line.split("\t")
        rows.append((int(index), int(label), rel))
    return rows
