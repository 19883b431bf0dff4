"""The confusion-matrix pictures: the full fine matrix and a page-width coarse one.

Rows are the true classes, columns the predicted ones, each row divided by its
support (so a cell is "share of this class's images predicted as that class"
and the diagonal is the per-class recall), on a square-root colour scale so that
rare confusions show. Rows of classes absent from the truth are grey.

- The fine matrix names every class; with coarse names it draws a line between
  coarse groups (Apple, Juice, Milk, ...) and names the groups of several classes
  along the top. 81 classes give about 2100 x 2000 px: legible at 100%.
- The coarse matrix (43 classes for the Grocery Store Dataset) is sized for a
  page (at most `PAGE_WIDTH_PX` wide) and writes the image count into every
  non-empty cell.

Matplotlib's Agg canvas is used directly: no display and no global backend
switch are needed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from grocery.evaluation.coarse import coarse_confusion, groups

# Cell counts are written into the cells up to this many classes (fine matrix, coarse matrix).
ANNOTATE_FINE_UP_TO = 25
ANNOTATE_COARSE_UP_TO = 45
DPI = 100
# The coarse picture fits a report page (GitHub's and most Markdown viewers' ~880 px column).
PAGE_WIDTH_PX = 880
SEPARATOR_COLOR = "#8c8c8c"  # lines along the boundaries of coarse groups
BLOCK_COLOR = "#262626"  # box around a group's diagonal block (its within-group confusions)


@dataclasses.dataclass(frozen=True)
class Picture:
    path: Path
    width: int  # pixels
    height: int


def _figure_inches(num_classes: int) -> float:
    """About 0.22 inch per class, at least 7 inches: 81 classes -> 18 x 18 inches (1800 px)."""
    return max(7.0, 0.22 * num_classes + 1.5)


def _tick_font_size(num_classes: int) -> float:
    return 9.0 if num_classes <= 30 else 6.0


def _row_normalized(confusion: Sequence[Sequence[int]]) -> list[list[float]]:
    normalized: list[list[float]] = []
    for row in confusion:
        total = sum(row)
        normalized.append([count / total if total else math.nan for count in row])
    return normalized


def _count_font(count: int, font: float) -> float:
    """Smaller type for 3- and 4-digit counts, so that they stay inside their cell."""
    digits = len(str(count))
    return font if digits <= 2 else font - 1.5 if digits == 3 else font - 2.5


def _new_figure(width_inches: float, height_inches: float) -> Figure:
    figure = Figure(figsize=(width_inches, height_inches), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _draw(
    figure: Figure,
    confusion: Sequence[Sequence[int]],
    tick_labels: Sequence[str],
    *,
    font: float,
    annotate: bool,
    title: str,
    colorbar_below: bool = False,
) -> Axes:
    """The row-normalized matrix with its colour bar, ticks, cell grid and (optionally) counts."""
    num_classes = len(tick_labels)
    normalized = _row_normalized(confusion)
    axes = figure.add_subplot()
    axes.set_facecolor("#d9d9d9")  # NaN rows (no support) show as grey
    # A square-root colour scale: a 1-in-30 confusion stays visible next to a 0.9 diagonal.
    image = axes.imshow(
        normalized,
        cmap="Blues",
        norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0),
        interpolation="nearest",
    )
    if colorbar_below:  # a page is narrow: the matrix takes the whole width
        colorbar = figure.colorbar(image, ax=axes, location="bottom", shrink=0.5, aspect=40)
    else:
        colorbar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.01)
    colorbar.set_label("share of the true class's images (row-normalized)", fontsize=font + 1)
    colorbar.ax.tick_params(labelsize=font)

    ticks = list(range(num_classes))
    axes.set_xticks(ticks, tick_labels, rotation=90)
    axes.set_yticks(ticks, tick_labels)
    axes.tick_params(axis="both", labelsize=font, length=2)
    axes.set_xlabel("predicted class", fontsize=font + 2)
    axes.set_ylabel("true class", fontsize=font + 2)
    axes.set_title(title, fontsize=font + 3)
    # Faint grid between cells helps follow a row across 81 columns.
    axes.set_xticks([i - 0.5 for i in range(1, num_classes)], minor=True)
    axes.set_yticks([i - 0.5 for i in range(1, num_classes)], minor=True)
    axes.grid(which="minor", color="#e6e6e6", linewidth=0.3)
    axes.tick_params(which="minor", length=0)

    if annotate:
        for truth, row in enumerate(confusion):
            for predicted, count in enumerate(row):
                if count:
                    axes.text(
                        predicted,
                        truth,
                        str(count),
                        ha="center",
                        va="center",
                        fontsize=_count_font(count, font),
                        color="white" if normalized[truth][predicted] > 0.5 else "black",
                    )
    return axes


def _draw_groups(axes: Axes, coarse_of: Sequence[str], font: float) -> None:
    """A line between coarse groups; the names of groups of several classes along the top."""
    named = [run for run in groups(coarse_of) if run.size > 1]
    # Single-class groups need no line: every cell edge already separates them.
    edges = sorted({edge for run in named for edge in (run.start, run.stop)} - {0, len(coarse_of)})
    for edge in edges:
        axes.axhline(edge - 0.5, color=SEPARATOR_COLOR, linewidth=0.6)
        axes.axvline(edge - 0.5, color=SEPARATOR_COLOR, linewidth=0.6)
    for run in named:
        axes.add_patch(
            Rectangle(
                (run.start - 0.5, run.start - 0.5),
                run.size,
                run.size,
                fill=False,
                edgecolor=BLOCK_COLOR,
                linewidth=1.2,
            )
        )
    top = axes.secondary_xaxis("top")
    top.set_xticks(
        [(run.start + run.stop - 1) / 2 for run in named],
        [run.name for run in named],
        rotation=90,
        fontsize=font + 1,
        fontweight="bold",
    )
    top.tick_params(length=0)


def _save(figure: Figure, path: Path) -> Picture:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    width, height = figure.canvas.get_width_height()
    return Picture(path, width, height)


def confusion_figure(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    *,
    title: str,
    coarse_of: Sequence[str] | None = None,
) -> Figure:
    """The full matrix, every class named `label (id)`; coarse groups boxed when known."""
    num_classes = len(labels)
    side = _figure_inches(num_classes)
    figure = _new_figure(side + 1.5, side)
    font = _tick_font_size(num_classes)
    axes = _draw(
        figure,
        confusion,
        [f"{label} ({i})" for i, label in enumerate(labels)],
        font=font,
        annotate=num_classes <= ANNOTATE_FINE_UP_TO,
        title=title,
    )
    if coarse_of is not None:
        _draw_groups(axes, coarse_of, font)
    return figure


def coarse_figure(
    confusion: Sequence[Sequence[int]], coarse_of: Sequence[str], *, title: str
) -> Figure:
    """The fine matrix summed by coarse class, at page width, with the counts in the cells."""
    names, counts = coarse_confusion(confusion, coarse_of)
    num_classes = len(names)
    width = PAGE_WIDTH_PX / DPI
    figure = _new_figure(width, width * 1.06)
    _draw(
        figure,
        counts,
        names,
        font=7.0 if num_classes > 30 else 9.0,
        annotate=num_classes <= ANNOTATE_COARSE_UP_TO,
        title=title,
        colorbar_below=True,
    )
    return figure


def write_confusion_matrix(
    path: Path,
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    *,
    title: str,
    coarse_of: Sequence[str] | None = None,
) -> Picture:
    return _save(confusion_figure(confusion, labels, title=title, coarse_of=coarse_of), path)


def write_coarse_matrix(
    path: Path, confusion: Sequence[Sequence[int]], coarse_of: Sequence[str], *, title: str
) -> Picture:
    return _save(coarse_figure(confusion, coarse_of, title=title), path)
