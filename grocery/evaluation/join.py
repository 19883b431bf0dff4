"""Pairs prediction rows with ground-truth lines.

The rule (documented in docs/evaluation.md):

1. **Path suffix.** A result's key (the S3 key without `s3://bucket/`, or the
   `.out` file's path below the results folder without `.out`) matches the truth
   line whose relative path equals the key or ends it after a `/`. So
   `incoming/2026-11-25/Banana/test_Banana_001.jpg` matches the truth path
   `Banana/test_Banana_001.jpg`, whatever prefix (channel, upload folder) the
   image was stored under. When several truth paths end the key, the longest wins.
2. **File name.** Otherwise, the key's file name matches a truth line with the
   same file name, when exactly one truth line has it.
3. Otherwise the result is *results-only*.

A truth line takes at most one result: a further result that lands on the same
line is a *duplicate* (reported, not evaluated; the first in input order counts).
Truth lines that no result reaches are *truth-only* (missing predictions).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from grocery.evaluation.inputs import ResultEntry, TruthEntry

BY_PATH = "path"
BY_FILE_NAME = "file_name"


@dataclasses.dataclass(frozen=True)
class Match:
    truth: TruthEntry
    result: ResultEntry
    rule: str  # BY_PATH or BY_FILE_NAME


@dataclasses.dataclass(frozen=True)
class Joined:
    matches: tuple[Match, ...]
    results_only: tuple[ResultEntry, ...]
    truth_only: tuple[TruthEntry, ...]
    duplicates: tuple[Match, ...]

    @property
    def evaluated(self) -> tuple[Match, ...]:
        """Matched and classified: what the metrics are computed on."""
        return tuple(m for m in self.matches if m.result.classified)

    @property
    def unclassified(self) -> tuple[Match, ...]:
        """Matched, but the prediction row says the image was not classified."""
        return tuple(m for m in self.matches if not m.result.classified)


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def join(truth: list[TruthEntry], results: list[ResultEntry] | tuple[ResultEntry, ...]) -> Joined:
    by_path = {entry.path: entry for entry in truth}
    by_name: dict[str, list[TruthEntry]] = defaultdict(list)
    for entry in truth:
        by_name[_file_name(entry.path)].append(entry)

    taken: dict[str, Match] = {}
    matches: list[Match] = []
    duplicates: list[Match] = []
    results_only: list[ResultEntry] = []
    for result in results:
        match = _find(result, by_path, by_name)
        if match is None:
            results_only.append(result)
        elif match.truth.path in taken:
            duplicates.append(match)
        else:
            taken[match.truth.path] = match
            matches.append(match)
    truth_only = tuple(entry for entry in truth if entry.path not in taken)
    return Joined(tuple(matches), tuple(results_only), truth_only, tuple(duplicates))


def _find(
    result: ResultEntry, by_path: dict[str, TruthEntry], by_name: dict[str, list[TruthEntry]]
) -> Match | None:
    parts = result.key.split("/")
    # Longest suffix first: the whole key, then without its first folder, ...
    for start in range(len(parts)):
        entry = by_path.get("/".join(parts[start:]))
        if entry is not None:
            return Match(entry, result, BY_PATH)
    candidates = by_name.get(parts[-1], [])
    if len(candidates) == 1:
        return Match(candidates[0], result, BY_FILE_NAME)
    return None
