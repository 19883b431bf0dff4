"""`python -m grocery evaluate`: both result kinds, the join rule, the files, the errors."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from grocery.__main__ import main
from grocery.evaluation.inputs import normalize_path
from tests.evaluation.conftest import KNOWN, RESULTS_ONLY, TRUTH_ONLY, UNCLASSIFIED, write_dataset

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _args(dataset, results: Path, out: Path, *extra: str, manifest: bool = True) -> list[str]:
    args = ["evaluate", "--results", str(results), "--truth", str(dataset.truth)]
    args += ["--labels", str(dataset.labels), "--out", str(out), *extra]
    if manifest:
        args += ["--manifest", str(dataset.manifest)]
    return args


class TestJsonlResults:
    @pytest.fixture
    @staticmethod
    def run(dataset, tmp_path, capsys):
        out = tmp_path / "report"
        code = main(_args(dataset, dataset.jsonl, out))
        return code, out, capsys.readouterr()

    def test_exit_code_and_summary_lines(self, run):
        code, out, captured = run
        assert code == 0
        lines = captured.out.splitlines()
        assert lines[0] == "top-1 70.0% (7/10), top-5 90.0%, coarse 90.0%, macro F1 0.707"
        assert lines[1] == (
            "images: 10 evaluated of 12 in the truth | unclassified 1, truth-only 1, "
            "results-only 1, duplicates 1"
        )
        assert str(out / "report.md") in lines[2]

    def test_metrics_json_has_the_known_answers(self, run):
        _, out, _ = run
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["top1_accuracy"] == pytest.approx(KNOWN["top1"])
        assert metrics["top5_accuracy"] == pytest.approx(KNOWN["top5"])
        assert metrics["top1_accuracy_over_truth"] == pytest.approx(7 / 12)
        assert metrics["coverage"] == pytest.approx(10 / 12)
        assert metrics["coarse"]["accuracy"] == pytest.approx(KNOWN["coarse"])
        per_class = metrics["per_class"]
        assert [c["support"] for c in per_class] == KNOWN["support"]
        assert [c["precision"] for c in per_class] == pytest.approx(KNOWN["precision"])
        assert [c["recall"] for c in per_class] == pytest.approx(KNOWN["recall"])
        assert [c["f1"] for c in per_class] == pytest.approx(KNOWN["f1"])
        assert [(p["truth"], p["predicted"], p["count"]) for p in metrics["confused_pairs"]] == [
            ("Granny-Smith", "Pink-Lady", 1),
            ("Pink-Lady", "Granny-Smith", 1),
            ("Oat-Milk", "Pink-Lady", 1),
        ]
        assert metrics["models"] == ["grocery-model-1"]

    def test_mismatched_inputs_are_counted_and_listed(self, run):
        _, out, _ = run
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["counts"] == {
            "truth_images": 12,
            "result_rows": 13,
            "matched": 11,
            "matched_by_file_name": 1,
            "evaluated": 10,
            "unclassified": 1,
            "results_only": 1,
            "truth_only": 1,
            "duplicates": 1,
        }
        assert metrics["truth_only"] == [
            {"path": TRUTH_ONLY[0], "line": 12, "class_id": 2, "label": "Oat-Milk"}
        ]
        assert [r["image"] for r in metrics["results_only"]] == [RESULTS_ONLY]
        (unclassified,) = metrics["unclassified"]
        assert unclassified["image"].endswith(UNCLASSIFIED[0])
        assert unclassified["reason"] == "skipped: not an image"
        assert metrics["unclassified_reasons"] == {"skipped: not an image": 1}
        (duplicate,) = metrics["duplicates"]
        assert duplicate["truth_path"] == "Granny-Smith/gs_1.jpg"
        assert duplicate["at"] == "results.jsonl line 13"

    def test_report_markdown_shows_numbers_and_lists(self, run):
        _, out, _ = run
        report = (out / "report.md").read_text()
        assert "| Top-1 accuracy | 70.0% | 7 / 10 |" in report
        assert "| Coarse accuracy | 90.0% |" in report
        assert "![confusion matrix by coarse class](confusion_matrix_coarse.png)" in report
        assert f"| {TRUTH_ONLY[0]} | Oat-Milk | 12 |" in report
        assert f"| {RESULTS_ONLY} | classified | results.jsonl line 12 |" in report
        assert "| Pink-Lady | 0.571 | 0.500 | 0.667 | 3 |" in report

    def test_confusion_matrix_png_is_written(self, run):
        _, out, _ = run
        png = out / "confusion_matrix.png"
        assert png.stat().st_size > 10_000
        width, height = _png_size(png)
        assert width >= 700
        assert height >= 700


def test_out_folder_gives_the_same_scores(dataset, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(_args(dataset, dataset.out_dir, out, manifest=False)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["inputs"]["results_kind"] == "out"
    assert metrics["top1_accuracy"] == pytest.approx(KNOWN["top1"])
    assert metrics["top5_accuracy"] == 1.0  # all 3 classes are in a decoded top 5
    assert [c["f1"] for c in metrics["per_class"]] == pytest.approx(KNOWN["f1"])
    assert metrics["coarse"] is None
    # The .out folder has no row for the skipped image nor for the missing one.
    assert metrics["counts"]["truth_only"] == 2
    assert metrics["counts"]["matched_by_file_name"] == 0
    assert "coarse" not in capsys.readouterr().out


def test_folder_of_jsonl_files(dataset, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    lines = dataset.jsonl.read_text().splitlines(keepends=True)
    (folder / "a.jsonl").write_text("".join(lines[:5]))
    (folder / "b.jsonl").write_text("".join(lines[5:]))
    out = tmp_path / "report"
    assert main(_args(dataset, folder, out)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["inputs"]["results_files"] == 2
    assert metrics["top1_accuracy"] == pytest.approx(KNOWN["top1"])
    assert metrics["duplicates"][0]["at"] == "b.jsonl line 8"


def test_81_classes_give_a_large_legible_picture(tmp_path):
    from grocery.evaluation.plot import write_confusion_matrix

    labels = [f"Class-{i:02d}" for i in range(81)]
    confusion = [
        [5 if t == p else (1 if p == (t + 1) % 81 else 0) for p in range(81)] for t in range(81)
    ]
    confusion[3] = [0] * 81  # a class absent from the truth (grey row)
    picture = write_confusion_matrix(tmp_path / "m.png", confusion, labels, title="81 classes")
    width, height = _png_size(picture.path)
    assert (width, height) == (picture.width, picture.height)
    assert width >= 1800
    assert height >= 1700


def test_fail_under_exits_1_after_writing(dataset, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(_args(dataset, dataset.jsonl, out, "--fail-under", "0.8")) == 1
    assert (out / "metrics.json").exists()
    assert "below --fail-under 0.8" in capsys.readouterr().out
    assert main(_args(dataset, dataset.jsonl, tmp_path / "r2", "--fail-under", "0.7")) == 0


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("missing", ["results", "truth", "labels", "manifest"])
def test_missing_file_is_named(dataset, tmp_path, capsys, missing):
    args = _args(dataset, dataset.jsonl, tmp_path / "report")
    gone = tmp_path / f"no-such-{missing}"
    args[args.index(f"--{missing}") + 1] = str(gone)
    assert main(args) == 2
    err = _error(capsys)
    assert err.startswith("error: ")
    assert str(gone) in err
    assert "does not exist" in err


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "case",
    [
        (
            "results",
            '{"image": "s3://b/x.jpg", "class_id": 0}\nnot json\n',
            "results.jsonl line 2: not valid JSON",
        ),
        ("results", "[1, 2]\n", "results.jsonl line 1: expected a JSON object per line"),
        ("results", '{"class_id": 0}\n', "results.jsonl line 1: the row has no 'image'"),
        (
            "results",
            '{"image": "a.jpg", "class_id": 7}\n',
            "line 1: class_id 7 is outside the labels file's 3 classes",
        ),
        (
            "results",
            '{"image": "a.jpg", "class_id": 1, "label": "Banana"}\n',
            "class_id 1 is 'Banana' in the results but 'Pink-Lady'",
        ),
        (
            "results",
            '{"image": "a.jpg", "class_id": 1, "confidence": 2}\n',
            "'confidence' 2 is not a probability",
        ),
        ("results", '{"image": "a.jpg", "class_id": 1, "top_k": {}}\n', "'top_k' must be a list"),
        ("truth", "0\t0\n", "test.lst line 1: expected 3 tab-separated columns"),
        ("truth", "0\tx\ta.jpg\n", "test.lst line 1: class id 'x' is not a whole number"),
        ("truth", "0\t0\ta.jpg\n\n1\t5\tb.jpg\n", "test.lst line 3: class id 5 is outside"),
        (
            "truth",
            "0\t0\ta.jpg\n1\t1\t./a.jpg\n",
            "test.lst line 2: image 'a.jpg' is listed twice (first on line 1)",
        ),
        ("truth", "\n", "lists no image"),
        ("labels", "{}", "must be a non-empty JSON array"),
        ("manifest", "[]", "must be a JSON object"),
        ("manifest", '{"coarse_labels": ["Apple"]}', "'coarse_labels' must be a list of 3 names"),
        ("manifest", '{"labels": ["a", "b", "c"]}', "its 'labels' differ from the labels file"),
        ("manifest", "{", "is not valid JSON"),
    ],
)
def test_invalid_file_is_named_with_its_line(dataset, tmp_path, capsys, case):
    kind, text, message = case
    names = {
        "results": "results.jsonl",
        "truth": "test.lst",
        "labels": "labels.json",
        "manifest": "manifest.json",
    }
    bad = _write(tmp_path / names[kind], text)
    args = _args(dataset, dataset.jsonl, tmp_path / "report")
    args[args.index(f"--{kind}") + 1] = str(bad)
    assert main(args) == 2
    err = _error(capsys)
    assert message in err
    assert str(bad) in err


def test_bad_out_file_names_the_file(dataset, tmp_path, capsys):
    bad = dataset.out_dir / "incoming" / "Oat-Milk" / "om_1.jpg.out"
    bad.write_text(json.dumps({"prediction": [0.5, 0.5]}))
    assert main(_args(dataset, dataset.out_dir, tmp_path / "report")) == 2
    err = _error(capsys)
    assert str(bad) in err
    assert "2 probabilities but its label list has 3 labels" in err


def test_results_folder_without_predictions(dataset, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_args(dataset, empty, tmp_path / "report")) == 2
    assert "holds no .out or .jsonl file" in _error(capsys)
    (empty / "a.out").write_text("{}")
    (empty / "b.jsonl").write_text("{}")
    assert main(_args(dataset, empty, tmp_path / "report")) == 2
    assert "both .out and .jsonl" in _error(capsys)


def test_nothing_matches(dataset, tmp_path, capsys):
    results = _write(tmp_path / "r.jsonl", '{"image": "s3://b/elsewhere/zzz.jpg", "class_id": 0}\n')
    assert main(_args(dataset, results, tmp_path / "report")) == 2
    err = _error(capsys)
    assert "no result matches a truth line" in err
    assert "'elsewhere/zzz.jpg'" in err


def test_only_unclassified_matches(dataset, tmp_path, capsys):
    row = {"image": "s3://b/incoming/Pink-Lady/pl_1.jpg", "status": "failed", "reason": "no output"}
    results = _write(tmp_path / "r.jsonl", json.dumps(row) + "\n")
    assert main(_args(dataset, results, tmp_path / "report")) == 2
    assert "all 1 matched images are unclassified" in _error(capsys)


def test_fail_under_must_be_a_fraction(dataset, tmp_path, capsys):
    assert main(_args(dataset, dataset.jsonl, tmp_path / "r", "--fail-under", "80")) == 2
    assert "--fail-under 80.0 must be a fraction" in _error(capsys)


def test_out_must_be_a_folder(dataset, tmp_path, capsys):
    file = _write(tmp_path / "file", "x")
    assert main(_args(dataset, dataset.jsonl, file)) == 2
    assert str(file) in _error(capsys)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("s3://bucket/incoming/a/b.jpg", "incoming/a/b.jpg"),
        ("./Apple//x.jpg", "Apple/x.jpg"),
        ("/abs/x.jpg", "abs/x.jpg"),
        ("dir\\x.jpg", "dir/x.jpg"),
    ],
)
def test_normalize_path(raw, key):
    assert normalize_path(raw) == key


def test_label_without_class_id_is_used_and_skipped_rows_are_not(dataset, tmp_path):
    rows = [
        {"image": "s3://b/x/Granny-Smith/gs_1.jpg", "label": "Granny-Smith"},
        {"image": "s3://b/x/Granny-Smith/gs_2.jpg", "label": "Granny-Smith", "skipped": True},
        {"image": "s3://b/x/Granny-Smith/gs_3.jpg", "error": "model timeout"},
    ]
    results = _write(tmp_path / "r.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    assert main(_args(dataset, results, out)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["evaluated"] == 1
    assert metrics["unclassified_reasons"] == {"skipped": 1, "model timeout": 1}


def test_rows_written_by_the_batch_decode_step(dataset, tmp_path):
    """Rows shaped by lambdas/batch_decode (every field present, status and reason)."""
    from batch_decode.decoding import FIELDS, Status

    def row(image: str, status: str, **fields) -> dict:
        return {**dict.fromkeys(FIELDS), "image": image, "status": status, "top_k": [], **fields}

    guess = {"label": "Pink-Lady", "class_id": 1, "confidence": 0.9}
    rows = [
        row("s3://b/incoming/Pink-Lady/pl_1.jpg", Status.CLASSIFIED, **guess, top_k=[guess]),
        row("s3://b/incoming/Pink-Lady/pl_2.jpg", Status.FAILED, reason="no prediction"),
        row("s3://b/incoming/Pink-Lady/pl_3.jpg", Status.SKIPPED, reason="not an image"),
    ]
    assert set(rows[0]) == set(FIELDS)
    results = _write(tmp_path / "r.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    assert main(_args(dataset, results, out)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["evaluated"] == 1
    assert metrics["top1_accuracy"] == 1.0
    assert metrics["unclassified_reasons"] == {
        "failed: no prediction": 1,
        "skipped: not an image": 1,
    }


def test_module_entry_point_runs_outside_pytest(dataset, tmp_path):
    """`python -m grocery evaluate` finds grocery_common without pytest's pythonpath."""
    out = tmp_path / "report"
    completed = subprocess.run(
        [sys.executable, "-m", "grocery", *_args(dataset, dataset.jsonl, out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "MPLCONFIGDIR": str(tmp_path / "mpl")},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("top-1 70.0%")
    assert (out / "confusion_matrix.png").read_bytes()[:8] == PNG_MAGIC


def test_write_dataset_is_deterministic(tmp_path):
    a, b = write_dataset(tmp_path / "a"), write_dataset(tmp_path / "b")
    assert a.jsonl.read_text() == b.jsonl.read_text()


def test_truth_that_is_a_folder_or_not_text(dataset, tmp_path, capsys):
    args = _args(dataset, dataset.jsonl, tmp_path / "report")
    args[args.index("--truth") + 1] = str(tmp_path)
    assert main(args) == 2
    assert f"truth file {tmp_path} is a folder" in _error(capsys)
    binary = tmp_path / "test.lst"
    binary.write_bytes(b"\xff\xfe\x00bad")
    args[args.index("--truth") + 1] = str(binary)
    assert main(args) == 2
    assert "is not UTF-8 text" in _error(capsys)
