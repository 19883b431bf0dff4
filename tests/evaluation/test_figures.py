"""The confusion-matrix pictures: coarse groups in the full matrix, the page-width coarse view."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from grocery.evaluation.coarse import Group, coarse_confusion, coarse_names, groups
from grocery.evaluation.plot import (
    DPI,
    PAGE_WIDTH_PX,
    coarse_figure,
    confusion_figure,
    write_coarse_matrix,
)
from tests.evaluation.synthetic import confusion, labels_and_coarse

# At 100 dpi, 7 pt is 9.7 px: the smallest type we accept for a class name on a page.
MIN_NAME_PX = 9.5
# 3-digit cell counts get slightly smaller type, still above 7.5 px.
MIN_COUNT_PX = 7.5


def _px(points: float) -> float:
    return points * DPI / 72


def _drawn(figure: Figure) -> Figure:
    figure.canvas.draw()
    return figure


def _boxes(texts: Iterable[Text], figure: Figure) -> list[Bbox]:
    renderer = figure.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts if t.get_text()]


def _no_overlap(boxes: list[Bbox], axis: str) -> bool:
    """Consecutive boxes along x or y do not overlap (a label is never drawn over another)."""
    low, high = ("x0", "x1") if axis == "x" else ("y0", "y1")
    spans = sorted((getattr(b, low), getattr(b, high)) for b in boxes)
    return all(end <= start + 0.5 for (_, end), (start, _) in itertools.pairwise(spans))


def _inside(box: Bbox, figure: Figure) -> bool:
    width, height = figure.canvas.get_width_height()
    return box.x0 >= -0.5 and box.y0 >= -0.5 and box.x1 <= width + 0.5 and box.y1 <= height + 0.5


# --------------------------------------------------------------------------- coarse.py


def test_groups_are_runs_of_equal_coarse_names():
    assert groups(["A", "A", "B", "C", "C", "C", "D"]) == [
        Group("A", 0, 2),
        Group("B", 2, 3),
        Group("C", 3, 6),
        Group("D", 6, 7),
    ]
    assert groups(["A", "B", "A"]) == [Group("A", 0, 1), Group("B", 1, 2), Group("A", 2, 3)]
    assert [g.size for g in groups(["A", "A", "B"])] == [2, 1]


def test_coarse_confusion_sums_the_fine_cells_by_coarse_class():
    fine = [[3, 1, 0], [1, 2, 0], [0, 1, 2]]  # Granny-Smith, Pink-Lady, Oat-Milk
    assert coarse_confusion(fine, ["Apple", "Apple", "Milk"]) == (
        ["Apple", "Milk"],
        [[7, 0], [1, 2]],
    )
    # Coarse classes come in the order of their first fine class, even when not contiguous.
    assert coarse_confusion([[1, 0, 0], [0, 1, 0], [0, 1, 1]], ["B", "A", "B"]) == (
        ["B", "A"],
        [[2, 1], [0, 1]],
    )
    with pytest.raises(ValueError, match="2 coarse names for a 3-class"):
        coarse_confusion(fine, ["Apple", "Milk"])


def test_the_grocery_like_set_has_81_classes_in_43_coarse_classes():
    labels, coarse = labels_and_coarse()
    assert (len(labels), len(coarse_names(coarse))) == (81, 43)
    names, counts = coarse_confusion(confusion(), coarse)
    assert sum(map(sum, counts)) == sum(map(sum, confusion()))
    assert max(counts[i][i] for i in range(len(names))) >= 100  # 3-digit cells are drawn


# --------------------------------------------------------------------------- the full matrix


def test_full_matrix_boxes_the_coarse_groups_of_several_classes():
    labels = ["a1", "a2", "b", "c1", "c2", "c3", "d"]
    coarse = ["A", "A", "B", "C", "C", "C", "D"]
    counts = [[1 if t == p else 0 for p in range(7)] for t in range(7)]
    axes = confusion_figure(counts, labels, title="t", coarse_of=coarse).axes[0]
    # Lines along the edges of the groups A (0-1) and C (3-5); none between the single B and D.
    horizontal = sorted(
        line.get_ydata()[0] for line in axes.lines if line.get_ydata()[0] == line.get_ydata()[1]
    )
    vertical = sorted(
        line.get_xdata()[0] for line in axes.lines if line.get_xdata()[0] == line.get_xdata()[1]
    )
    assert horizontal == vertical == [1.5, 2.5, 5.5]
    boxes = [(p.get_xy(), p.get_width()) for p in axes.patches if isinstance(p, Rectangle)]
    assert boxes == [((-0.5, -0.5), 2), ((2.5, 2.5), 3)]
    (top,) = axes.child_axes
    assert [t.get_text() for t in top.get_xticklabels()] == ["A", "C"]
    assert list(top.get_xticks()) == [0.5, 4.0]


def test_full_matrix_without_coarse_classes_has_no_group_lines():
    counts = [[1, 0], [0, 1]]
    axes = confusion_figure(counts, ["x", "y"], title="t").axes[0]
    assert (len(axes.lines), len(axes.patches), len(axes.child_axes)) == (0, 0, 0)


def test_81_class_matrix_names_every_class_and_group_without_overlap():
    labels, coarse = labels_and_coarse()
    figure = _drawn(confusion_figure(confusion(), labels, title="81", coarse_of=coarse))
    axes = figure.axes[0]
    width, height = figure.canvas.get_width_height()
    assert (width, height) == (2082, 1932)
    names = axes.get_yticklabels()
    assert [t.get_text() for t in names][:2] == ["Apple-Variety-1 (0)", "Apple-Variety-2 (1)"]
    assert _no_overlap(_boxes(names, figure), "y")
    assert _no_overlap(_boxes(axes.get_xticklabels(), figure), "x")
    (top,) = axes.child_axes
    group_names = [t.get_text() for t in top.get_xticklabels()]
    assert group_names[:3] == ["Apple", "Melon", "Pear"]
    assert len(group_names) == 12  # the coarse classes of more than one class
    assert _no_overlap(_boxes(top.get_xticklabels(), figure), "x")
    assert all(_inside(b, figure) for b in _boxes([*names, *top.get_xticklabels()], figure))


# --------------------------------------------------------------------------- the coarse view


@pytest.fixture(scope="module")
def coarse_view() -> Figure:
    _, coarse = labels_and_coarse()
    return _drawn(coarse_figure(confusion(), coarse, title="Coarse classes: 2575 images"))


def test_coarse_view_fits_a_page(coarse_view):
    width, height = coarse_view.canvas.get_width_height()
    assert width <= PAGE_WIDTH_PX
    assert height <= 1000


def test_coarse_view_names_are_legible_and_do_not_overlap(coarse_view):
    axes = coarse_view.axes[0]
    for ticks, axis in ((axes.get_yticklabels(), "y"), (axes.get_xticklabels(), "x")):
        assert [t.get_text() for t in ticks][:3] == ["Apple", "Avocado", "Banana"]
        assert len(ticks) == 43
        assert min(_px(t.get_fontsize()) for t in ticks) >= MIN_NAME_PX
        boxes = _boxes(ticks, coarse_view)
        assert _no_overlap(boxes, axis)
        assert all(_inside(b, coarse_view) for b in boxes)


def test_coarse_view_writes_every_count_inside_its_cell(coarse_view):
    axes = coarse_view.axes[0]
    _, coarse = labels_and_coarse()
    _, counts = coarse_confusion(confusion(), coarse)
    expected = sorted((t, p, c) for t, row in enumerate(counts) for p, c in enumerate(row) if c)
    texts = axes.texts
    assert (
        sorted(
            (round(t.get_position()[1]), round(t.get_position()[0]), int(t.get_text()))
            for t in texts
        )
        == expected
    )
    cell_px = axes.get_window_extent().width / len(counts)
    renderer = coarse_view.canvas.get_renderer()
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.width < cell_px, text.get_text()
        assert _px(text.get_fontsize()) >= MIN_COUNT_PX


def test_write_coarse_matrix_reports_the_png_size(tmp_path: Path):
    _, coarse = labels_and_coarse()
    picture = write_coarse_matrix(tmp_path / "c.png", confusion(), coarse, title="t")
    data = picture.path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (picture.width, picture.height) == (
        int.from_bytes(data[16:20], "big"),
        int.from_bytes(data[20:24], "big"),
    )
    assert picture.width <= PAGE_WIDTH_PX
