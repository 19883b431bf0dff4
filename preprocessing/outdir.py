"""The OUT folder of ``prepare``: what may be replaced, clearing it, and the failure report.

OUT must be new or empty, or hold a previous ``prepare`` output (replaced with
``--overwrite``), or only the rejected.csv a failed run left there (replaced without
``--overwrite``: it is what the user reads before fixing the dataset and running again).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from preprocessing import manifest, splits
from preprocessing.errors import DatasetError, UserError

STAGING = ".staging"
OUTPUT_ENTRIES = (
    *splits.CHANNELS,
    *(f"{channel}_lst" for channel in splits.CHANNELS),
    manifest.LABELS,
    manifest.MANIFEST,
    manifest.REJECTED,
    "sources.csv",  # with --additions: where each image came from (preprocessing/additions.py)
    STAGING,
)


def check(out_arg: Path, source_arg: Path, overwrite: bool) -> Path:
    """Refuse an OUT that prepare must not write to; write nothing. Returns OUT resolved."""
    out = out_arg.resolve()
    source = source_arg.resolve()
    if out == source or source in out.parents or out in source.parents:
        raise UserError(
            f"output folder {out_arg} must not be inside the source {source_arg} (or contain "
            "it); choose a folder elsewhere, e.g. /tmp/grocery-prepared"
        )
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out_arg} exists and is not a folder; choose another path")
    if out.exists():
        entries = sorted(p.name for p in out.iterdir())
        left_by_failed_run = entries == [manifest.REJECTED]
        if entries and not overwrite and not left_by_failed_run:
            raise UserError(
                f"output folder {out_arg} is not empty; pass --overwrite to replace a previous "
                "prepare output there, or choose an empty folder"
            )
        foreign = [name for name in entries if name not in OUTPUT_ENTRIES]
        if foreign:
            raise UserError(
                f"output folder {out_arg} holds files prepare did not write ({foreign[0]!r}); "
                "--overwrite only replaces a previous prepare output: choose another folder"
            )
    return out


def reset(out: Path, out_arg: Path) -> None:
    """Empty OUT of a previous prepare output (check() allowed it) and create it."""
    if out.is_dir():
        clear(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out_arg}: {exc.strerror}") from None


def clear(out: Path) -> None:
    """Remove what prepare writes in OUT, and nothing else."""
    for name in OUTPUT_ENTRIES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def failed(error: UserError, out: Path, rejected: Sequence[tuple[str, str, str]]) -> UserError:
    """The error of a run that failed as a whole, after writing OUT/rejected.csv.

    OUT holds nothing else (no half-written dataset); without rejected rows nothing is
    written and the error is returned unchanged.
    """
    rows = [*rejected, *(error.rejected if isinstance(error, DatasetError) else ())]
    if not rows:
        return error
    target = out / manifest.REJECTED
    try:
        if out.is_dir():
            clear(out)
        out.mkdir(parents=True, exist_ok=True)
        manifest.write_rejected(target, rows)
    except OSError as exc:
        return UserError(
            f"{error}; {len(rows)} input file(s) were not used, but {target} "
            f"could not be written: {exc.strerror or exc}"
        )
    reasons = ", ".join(f"{reason} {n}" for reason, n in manifest.reason_counts(rows).items())
    return UserError(
        f"{error}; {len(rows)} input file(s) were not used ({reasons}): "
        f"{target} lists each with its reason"
    )
