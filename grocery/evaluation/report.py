"""Builds and writes the evaluation report: metrics.json, report.md, confusion_matrix.png."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grocery.errors import CommandError
from grocery.evaluation.inputs import Results, TruthEntry
from grocery.evaluation.join import BY_FILE_NAME, Joined
from grocery.evaluation.plot import write_confusion_matrix
from grocery_common.evaluation import Evaluation, EvaluationError, Sample, evaluate

FORMAT_VERSION = 1
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
MATRIX_FILE = "confusion_matrix.png"
# report.md lists at most this many rows per mismatch list; metrics.json lists them all.
LIST_LIMIT = 50
WEAKEST_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    evaluation: Evaluation
    joined: Joined
    labels: list[str]
    coarse_labels: list[str] | None
    inputs: dict[str, Any]
    models: tuple[str, ...]
    batch_ids: tuple[str, ...]
    truth_images: int
    result_rows: int
    generated_at: str

    @property
    def counts(self) -> dict[str, int]:
        joined = self.joined
        return {
            "truth_images": self.truth_images,
            "result_rows": self.result_rows,
            "matched": len(joined.matches),
            "matched_by_file_name": sum(1 for m in joined.matches if m.rule == BY_FILE_NAME),
            "evaluated": len(joined.evaluated),
            "unclassified": len(joined.unclassified),
            "results_only": len(joined.results_only),
            "truth_only": len(joined.truth_only),
            "duplicates": len(joined.duplicates),
        }

    @property
    def top1_accuracy_over_truth(self) -> float:
        """Strict: every truth image without a usable prediction counts as wrong."""
        return self.evaluation.top1_correct / self.truth_images

    @property
    def coverage(self) -> float:
        return len(self.joined.evaluated) / self.truth_images


def build_report(
    *,
    results: Results,
    truth: list[TruthEntry],
    joined: Joined,
    labels: list[str],
    coarse_labels: list[str] | None,
    inputs: dict[str, Any],
) -> EvaluationReport:
    if not joined.matches:
        example = (
            f" (e.g. result {results.entries[0].key!r} vs truth {truth[0].path!r})"
            if results.entries
            else ""
        )
        raise CommandError(
            "no result matches a truth line by path or file name"
            f"{example}: pass the results and the .lst of the same images (see docs/evaluation.md)"
        )
    if not joined.evaluated:
        raise CommandError(
            f"all {len(joined.matches)} matched images are unclassified in the results "
            "(skipped or without class_id): there is nothing to score"
        )
    samples = [
        Sample(truth=m.truth.class_id, ranking=m.result.ranking, confidence=m.result.confidence)
        for m in joined.evaluated
    ]
    try:
        evaluation = evaluate(samples, labels, coarse_labels=coarse_labels)
    except EvaluationError as error:
        raise CommandError(str(error)) from None
    entries = results.entries
    return EvaluationReport(
        evaluation=evaluation,
        joined=joined,
        labels=labels,
        coarse_labels=coarse_labels,
        inputs=inputs,
        models=tuple(sorted({e.model for e in entries if e.model})),
        batch_ids=tuple(sorted({e.batch_id for e in entries if e.batch_id})),
        truth_images=len(truth),
        result_rows=len(entries),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


# --------------------------------------------------------------------------- metrics.json


def metrics_document(report: EvaluationReport) -> dict[str, Any]:
    joined = report.joined
    labels = report.labels
    return {
        "format_version": FORMAT_VERSION,
        "generated_at": report.generated_at,
        "inputs": report.inputs,
        "models": list(report.models),
        "batch_ids": list(report.batch_ids),
        "counts": report.counts,
        "coverage": report.coverage,
        "top1_accuracy_over_truth": report.top1_accuracy_over_truth,
        **report.evaluation.to_dict(),
        "unclassified": [
            {
                "image": m.result.key,
                "reason": m.result.reason,
                "at": m.result.location,
                "truth": labels[m.truth.class_id],
            }
            for m in joined.unclassified
        ],
        "unclassified_reasons": dict(Counter(m.result.reason for m in joined.unclassified)),
        "results_only": [
            {"image": r.key, "at": r.location, **({"reason": r.reason} if r.reason else {})}
            for r in joined.results_only
        ],
        "truth_only": [
            {"path": t.path, "line": t.line, "class_id": t.class_id, "label": labels[t.class_id]}
            for t in joined.truth_only
        ],
        "duplicates": [
            {"image": m.result.key, "at": m.result.location, "truth_path": m.truth.path}
            for m in joined.duplicates
        ],
    }


# --------------------------------------------------------------------------- report.md


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows
    ]
    return [*lines, ""]


def _capped(items: list[Any], render, header: list[str], what: str) -> list[str]:
    if not items:
        return [f"None: no {what}.", ""]
    lines = _table(header, [render(item) for item in items[:LIST_LIMIT]])
    if len(items) > LIST_LIMIT:
        lines += [f"... and {len(items) - LIST_LIMIT} more: see `{METRICS_FILE}`.", ""]
    return lines


def markdown(report: EvaluationReport) -> str:
    ev = report.evaluation
    counts = report.counts
    joined = report.joined
    labels = report.labels
    inputs = report.inputs
    out: list[str] = ["# Model evaluation report", ""]
    out += [
        f"Generated {report.generated_at} by `python -m grocery evaluate`.",
        "",
        f"- Results: `{inputs['results']}` ({inputs['results_kind']}, "
        f"{inputs['results_files']} file(s), {report.result_rows} rows)",
        f"- Truth: `{inputs['truth']}` ({report.truth_images} images)",
        f"- Labels: `{inputs['labels']}` ({len(labels)} classes)",
        f"- Manifest: `{inputs['manifest']}`"
        if inputs.get("manifest")
        else "- Manifest: not given",
        f"- Model(s): {', '.join(f'`{m}`' for m in report.models) or 'not recorded in the results'}",
    ]
    if len(report.models) > 1:
        out.append(
            "- **Warning: the results come from more than one model**; the numbers mix them."
        )
    out.append("")

    out += ["## Summary", ""]
    rows = [
        ["Top-1 accuracy", _pct(ev.top1_accuracy), f"{ev.top1_correct} / {ev.samples}"],
        ["Top-5 accuracy", _pct(ev.top5_accuracy), f"{ev.top5_correct} / {ev.samples}"],
        [
            "Top-1 accuracy over all truth images",
            _pct(report.top1_accuracy_over_truth),
            f"{ev.top1_correct} / {report.truth_images} (missing or unclassified count as wrong)",
        ],
        ["Macro F1", _num(ev.macro_f1), f"over the {ev.classes_in_truth} classes in the truth"],
        ["Weighted F1", _num(ev.weighted_f1), "classes weighted by support"],
        ["Balanced accuracy (macro recall)", _pct(ev.macro_recall), ""],
        ["Macro precision", _pct(ev.macro_precision), ""],
    ]
    if ev.coarse_accuracy is not None:
        rows.append(
            [
                "Coarse accuracy",
                _pct(ev.coarse_accuracy),
                f"{ev.coarse_classes} coarse classes; "
                f"{ev.errors_within_coarse_class} fine errors stay within the right coarse class",
            ]
        )
    if ev.expected_calibration_error is not None:
        rows.append(
            [
                "Expected calibration error",
                _num(ev.expected_calibration_error),
                f"mean confidence {_pct(ev.mean_confidence_correct)} when right, "
                f"{_pct(ev.mean_confidence_wrong)} when wrong",
            ]
        )
    out += _table(["metric", "value", "detail"], rows)

    out += ["## Coverage: which images were scored", ""]
    out += _table(
        ["count", "images", "meaning"],
        [
            ["truth images", counts["truth_images"], "lines of the truth .lst"],
            ["result rows", counts["result_rows"], "prediction rows read"],
            ["evaluated", counts["evaluated"], "in both, and classified: the metrics above"],
            [
                "matched by file name",
                counts["matched_by_file_name"],
                "paired by file name only (no path suffix matched)",
            ],
            ["unclassified", counts["unclassified"], "in the truth, but the row has no class"],
            ["truth-only", counts["truth_only"], "in the truth, no prediction row"],
            ["results-only", counts["results_only"], "prediction rows matching no truth line"],
            ["duplicates", counts["duplicates"], "further rows for an already matched image"],
        ],
    )

    out += [
        "## Confusion matrix",
        "",
        f"![confusion matrix]({MATRIX_FILE})",
        "",
        "Rows are true classes, columns predicted classes, each row divided by its support: "
        "the diagonal is each class's recall; grey rows are classes absent from the truth.",
        "",
    ]

    out += ["## Most confused pairs", ""]
    out += _capped(
        list(ev.confused_pairs),
        lambda p: [p.truth, p.predicted, p.count, _pct(p.share)],
        ["true class", "predicted as", "images", "share of the true class"],
        "confusion: every evaluated image was classified correctly",
    )

    present = [c for c in ev.classes if c.support]
    weakest = sorted(present, key=lambda c: (c.f1, c.class_id))[:WEAKEST_CLASSES]
    out += [f"## Weakest {len(weakest)} classes (by F1)", ""]
    out += _table(
        ["class", "F1", "precision", "recall", "support"],
        [[c.label, _num(c.f1), _num(c.precision), _num(c.recall), c.support] for c in weakest],
    )

    if ev.calibration:
        out += ["## Calibration (top-1 confidence vs accuracy)", ""]
        out += _table(
            ["confidence", "images", "accuracy", "mean confidence"],
            [
                [f"{b.lower:.1f}-{b.upper:.1f}", b.count, _pct(b.accuracy), _pct(b.mean_confidence)]
                for b in ev.calibration
                if b.count
            ],
        )

    out += ["## Per-class metrics", ""]
    out += _table(
        ["id", "class", "support", "predicted", "correct", "precision", "recall", "F1"],
        [
            [
                c.class_id,
                c.label,
                c.support,
                c.predicted,
                c.true_positives,
                _num(c.precision),
                _num(c.recall),
                _num(c.f1),
            ]
            for c in ev.classes
            if c.support or c.predicted
        ],
    )
    absent = [c.label for c in ev.classes if not c.support and not c.predicted]
    if absent:
        out += [
            f"{len(absent)} classes are neither in the truth nor predicted: {', '.join(absent)}.",
            "",
        ]

    out += ["## Images on one side only", "", "### Unclassified (in the truth)", ""]
    out += _capped(
        list(joined.unclassified),
        lambda m: [m.result.key, labels[m.truth.class_id], m.result.reason, m.result.location],
        ["image", "true class", "reason", "row"],
        "unclassified image",
    )
    out += ["### Truth-only (no prediction)", ""]
    out += _capped(
        list(joined.truth_only),
        lambda t: [t.path, labels[t.class_id], t.line],
        ["truth path", "true class", ".lst line"],
        "truth image without a prediction",
    )
    out += ["### Results-only (no truth line)", ""]
    out += _capped(
        list(joined.results_only),
        lambda r: [r.key, r.reason or "classified", r.location],
        ["image", "status", "row"],
        "prediction without a truth line",
    )
    if joined.duplicates:
        out += ["### Duplicates (not evaluated)", ""]
        out += _capped(
            list(joined.duplicates),
            lambda m: [m.result.key, m.truth.path, m.result.location],
            ["image", "truth path", "row"],
            "duplicate",
        )
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------- files


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: EvaluationReport, out_dir: Path) -> dict[str, Path]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot create output folder {out_dir}: {error.strerror}") from None
    if not out_dir.is_dir():
        raise CommandError(f"output {out_dir} is not a folder")
    ev = report.evaluation
    paths = {
        "metrics": out_dir / METRICS_FILE,
        "report": out_dir / REPORT_FILE,
        "confusion_matrix": out_dir / MATRIX_FILE,
    }
    title = (
        f"Confusion matrix: {ev.samples} images, top-1 {ev.top1_accuracy:.1%}, "
        f"top-5 {ev.top5_accuracy:.1%}"
    )
    write_confusion_matrix(paths["confusion_matrix"], ev.confusion, report.labels, title=title)
    _write_atomic(paths["metrics"], json.dumps(metrics_document(report), indent=2) + "\n")
    _write_atomic(paths["report"], markdown(report))
    return paths
