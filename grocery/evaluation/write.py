"""Writes the report files into the output folder (the pictures first: report.md cites them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from grocery.errors import CommandError
from grocery.evaluation.figures import COARSE, FULL, write_figures
from grocery.evaluation.markdown import markdown
from grocery.evaluation.report import METRICS_FILE, REPORT_FILE, EvaluationReport, metrics_document


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: EvaluationReport, out_dir: Path) -> dict[str, Path]:
    """{"metrics", "report", "confusion_matrix"[, "coarse_confusion_matrix"]} -> the files."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create output folder {out_dir}: {error.strerror}") from None
    if not out_dir.is_dir():
        raise CommandError(f"output {out_dir} is not a folder")
    pictures = write_figures(report.evaluation, report.labels, report.coarse_labels, out_dir)
    paths = {"metrics": out_dir / METRICS_FILE, "report": out_dir / REPORT_FILE}
    _write_atomic(paths["metrics"], json.dumps(metrics_document(report), indent=2) + "\n")
    _write_atomic(paths["report"], markdown(report, pictures))
    paths[FULL] = pictures[FULL].path
    if COARSE in pictures:
        paths[COARSE] = pictures[COARSE].path
    return paths
