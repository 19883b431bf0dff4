"""The model evaluation report: inputs, join rule, report writer (see docs/evaluation.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grocery.evaluation.inputs import load_coarse_labels, load_labels, load_results, load_truth
from grocery.evaluation.join import join
from grocery.evaluation.report import EvaluationReport, build_report
from grocery.evaluation.write import write_report


def run(
    *, results: Path, truth: Path, labels: Path, manifest: Path | None, out: Path
) -> tuple[EvaluationReport, dict[str, Path]]:
    """Reads every input, scores the matched images and writes the report files into `out`."""
    label_list = load_labels(labels)
    coarse = load_coarse_labels(manifest, label_list) if manifest else None
    truth_entries = load_truth(truth, len(label_list))
    loaded = load_results(results, label_list)
    inputs: dict[str, Any] = {
        "results": str(results),
        "results_kind": loaded.kind,
        "results_files": len(loaded.files),
        "truth": str(truth),
        "labels": str(labels),
        "manifest": str(manifest) if manifest else None,
    }
    report = build_report(
        results=loaded,
        truth=truth_entries,
        joined=join(truth_entries, loaded.entries),
        labels=label_list,
        coarse_labels=coarse,
        inputs=inputs,
    )
    return report, write_report(report, out)


__all__ = ["EvaluationReport", "run"]
