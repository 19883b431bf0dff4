"""report.md's confusion section: the page-width coarse view first, the full matrix linked."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from grocery.__main__ import main
from grocery.evaluation.plot import PAGE_WIDTH_PX
from tests.evaluation.synthetic import write_files

COARSE_PNG = "confusion_matrix_coarse.png"
FULL_PNG = "confusion_matrix.png"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _evaluate(truth: Path, labels: Path, results: Path, out: Path, manifest: Path | None) -> int:
    args = ["evaluate", "--results", str(results), "--truth", str(truth)]
    args += ["--labels", str(labels), "--out", str(out)]
    return main(args + (["--manifest", str(manifest)] if manifest else []))


def _section(report: str, title: str) -> str:
    start = report.index(f"## {title}\n")
    end = report.find("\n## ", start + 1)
    return report[start:end]


def test_coarse_view_comes_first_and_the_full_matrix_is_linked(dataset, tmp_path, capsys):
    out = tmp_path / "report"
    assert _evaluate(dataset.truth, dataset.labels, dataset.jsonl, out, dataset.manifest) == 0
    assert str(out / COARSE_PNG) in capsys.readouterr().out.splitlines()[2]
    section = _section((out / "report.md").read_text(), "Confusion matrix")
    lines = [line for line in section.splitlines() if line]
    assert lines[1] == f"![confusion matrix by coarse class]({COARSE_PNG})"
    assert "The 3 classes summed into their 2 coarse classes" in section
    assert "2 fine errors that stay inside their coarse class" in section
    width, height = _png_size(out / FULL_PNG)
    assert f"[{FULL_PNG}]({FULL_PNG}) ({width} x {height} px, legible at 100%)" in section
    assert f"![confusion matrix]({FULL_PNG})" not in section  # linked, not embedded
    assert _png_size(out / COARSE_PNG)[0] <= PAGE_WIDTH_PX


def test_confused_pairs_say_whether_they_stay_in_their_coarse_class(dataset, tmp_path):
    out = tmp_path / "report"
    assert _evaluate(dataset.truth, dataset.labels, dataset.jsonl, out, dataset.manifest) == 0
    section = _section((out / "report.md").read_text(), "Most confused pairs")
    assert "| true class | predicted as | images | share of the true class | coarse class |" in (
        section
    )
    assert "| Granny-Smith | Pink-Lady | 1 | 25.0% | within Apple |" in section
    assert "| Oat-Milk | Pink-Lady | 1 | 33.3% | Milk -> Apple |" in section


def test_metrics_json_has_the_coarse_confusion_matrix(dataset, tmp_path):
    out = tmp_path / "report"
    assert _evaluate(dataset.truth, dataset.labels, dataset.jsonl, out, dataset.manifest) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # Fine [[3, 1, 0], [1, 2, 0], [0, 1, 2]] summed: Apple = Granny-Smith + Pink-Lady.
    assert metrics["coarse_confusion_matrix"] == {
        "labels": ["Apple", "Milk"],
        "rows": "true coarse class",
        "columns": "predicted coarse class",
        "counts": [[7, 0], [1, 2]],
    }


def test_without_coarse_classes_the_full_matrix_is_embedded(dataset, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / COARSE_PNG).write_bytes(b"left by an earlier run")
    assert _evaluate(dataset.truth, dataset.labels, dataset.jsonl, out, None) == 0
    assert not (out / COARSE_PNG).exists()
    report = (out / "report.md").read_text()
    section = _section(report, "Confusion matrix")
    assert f"![confusion matrix]({FULL_PNG})" in section
    assert COARSE_PNG not in report
    assert "too small to read" not in section  # 3 classes are legible at page width
    assert "| true class | predicted as | images | share of the true class |\n" in report
    assert json.loads((out / "metrics.json").read_text())["coarse_confusion_matrix"] is None


def test_one_coarse_class_per_class_adds_no_coarse_view(dataset, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"coarse_labels": ["A", "B", "C"]}))
    out = tmp_path / "report"
    assert _evaluate(dataset.truth, dataset.labels, dataset.jsonl, out, manifest) == 0
    assert not (out / COARSE_PNG).exists()
    assert f"![confusion matrix]({FULL_PNG})" in (out / "report.md").read_text()


@pytest.fixture(scope="module")
def grocery_like(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("grocery-like"))


def test_81_classes_get_a_page_width_view_of_43_coarse_classes(grocery_like, tmp_path):
    files, out = grocery_like, tmp_path / "report"
    assert _evaluate(files.truth, files.labels, files.results, out, files.manifest) == 0
    assert _png_size(out / FULL_PNG) == (2082, 1932)
    width, height = _png_size(out / COARSE_PNG)
    assert width <= PAGE_WIDTH_PX
    assert height <= 1000
    section = _section((out / "report.md").read_text(), "Confusion matrix")
    assert "The 81 classes summed into their 43 coarse classes" in section
    assert f"({FULL_PNG}) (2082 x 1932 px, legible at 100%)" in section
    counts = json.loads((out / "metrics.json").read_text())["coarse_confusion_matrix"]["counts"]
    assert (len(counts), len(counts[0])) == (43, 43)


def test_81_classes_without_manifest_say_how_to_get_the_page_width_view(grocery_like, tmp_path):
    files, out = grocery_like, tmp_path / "report"
    assert _evaluate(files.truth, files.labels, files.results, out, None) == 0
    section = _section((out / "report.md").read_text(), "Confusion matrix")
    assert f"![confusion matrix]({FULL_PNG})" in section
    assert "At page width the 81 class names are too small to read" in section
    assert "pass `--manifest` with `coarse_labels`" in section
