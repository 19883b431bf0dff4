"""The confusion-matrix picture, readable for 81 classes.

Rows are the true classes, columns the predicted ones, each row divided by its
support (so a cell is "share of this class's images predicted as that class"
and the diagonal is the per-class recall), on a square-root colour scale so that rare confusions
show. Rows of classes absent from the truth are grey. Matplotlib's Agg canvas is used directly: no display and
no global backend switch are needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

# Cell counts are written into the cells up to this many classes.
ANNOTATE_UP_TO = 25
DPI = 100


def _figure_inches(num_classes: int) -> float:
    """About 0.22 inch per class, at least 7 inches: 81 classes -> 18 x 18 inches (1800 px)."""
    return max(7.0, 0.22 * num_classes + 1.5)


def _tick_font_size(num_classes: int) -> float:
    return 9.0 if num_classes <= 30 else 6.0


def write_confusion_matrix(
    path: Path,
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    *,
    title: str,
) -> Path:
    num_classes = len(labels)
    normalized: list[list[float]] = []
    for row in confusion:
        total = sum(row)
        normalized.append([count / total if total else float("nan") for count in row])

    side = _figure_inches(num_classes)
    figure = Figure(figsize=(side + 1.5, side), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_facecolor("#d9d9d9")  # NaN rows (no support) show as grey
    # A square-root colour scale: a 1-in-30 confusion stays visible next to a 0.9 diagonal.
    image = axes.imshow(
        normalized,
        cmap="Blues",
        norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0),
        interpolation="nearest",
    )
    colorbar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.01)
    colorbar.set_label("share of the true class's images (row-normalized)")

    ticks = list(range(num_classes))
    font = _tick_font_size(num_classes)
    axes.set_xticks(ticks, [f"{label} ({i})" for i, label in enumerate(labels)], rotation=90)
    axes.set_yticks(ticks, [f"{label} ({i})" for i, label in enumerate(labels)])
    axes.tick_params(axis="both", labelsize=font, length=2)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    # Faint grid between cells helps follow a row across 81 columns.
    axes.set_xticks([i - 0.5 for i in range(1, num_classes)], minor=True)
    axes.set_yticks([i - 0.5 for i in range(1, num_classes)], minor=True)
    axes.grid(which="minor", color="#e6e6e6", linewidth=0.3)
    axes.tick_params(which="minor", length=0)

    if num_classes <= ANNOTATE_UP_TO:
        for truth, row in enumerate(confusion):
            for predicted, count in enumerate(row):
                if count:
                    share = normalized[truth][predicted]
                    axes.text(
                        predicted,
                        truth,
                        str(count),
                        ha="center",
                        va="center",
                        fontsize=font,
                        color="white" if share > 0.5 else "black",
                    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
