"""Which pictures the report gets: file names, titles, and when the coarse view exists.

- `confusion_matrix.png`: every class, coarse groups boxed (legible at 100%);
- `confusion_matrix_coarse.png`: the page-width view, summed by coarse class;
  written when the manifest gives coarse classes and they are fewer than the
  classes (otherwise it would repeat the full matrix).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grocery.errors import CommandError
from grocery.evaluation.coarse import coarse_names
from grocery.evaluation.plot import Picture, write_coarse_matrix, write_confusion_matrix
from grocery_common.evaluation import Evaluation

MATRIX_FILE = "confusion_matrix.png"
COARSE_MATRIX_FILE = "confusion_matrix_coarse.png"
FULL = "confusion_matrix"
COARSE = "coarse_confusion_matrix"


def has_coarse_view(labels: Sequence[str], coarse_labels: Sequence[str] | None) -> bool:
    return coarse_labels is not None and len(coarse_names(coarse_labels)) < len(labels)


def write_figures(
    evaluation: Evaluation,
    labels: Sequence[str],
    coarse_labels: Sequence[str] | None,
    out_dir: Path,
) -> dict[str, Picture]:
    """Writes the pictures into `out_dir`; {FULL: ..., COARSE: ... (when there is one)}."""
    ev = evaluation
    pictures = {
        FULL: write_confusion_matrix(
            out_dir / MATRIX_FILE,
            ev.confusion,
            labels,
            title=f"Confusion matrix: {ev.samples} images, top-1 {ev.top1_accuracy:.1%}, "
            f"top-5 {ev.top5_accuracy:.1%}",
            coarse_of=coarse_labels,
        )
    }
    coarse_path = out_dir / COARSE_MATRIX_FILE
    if coarse_labels is not None and has_coarse_view(labels, coarse_labels):
        pictures[COARSE] = write_coarse_matrix(
            coarse_path,
            ev.confusion,
            coarse_labels,
            title=f"Coarse classes: {ev.samples} images, coarse accuracy {ev.coarse_accuracy:.1%}",
        )
    else:
        # A coarse picture left by an earlier run in this folder would not match this report.
        try:
            coarse_path.unlink(missing_ok=True)
        except OSError as error:
            raise CommandError(f"cannot remove the stale {coarse_path}: {error.strerror}") from None
    return pictures
