"""report.md: the readable report (summary, coverage, pictures, tables, mismatch lists)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from grocery.evaluation.figures import COARSE, FULL
from grocery.evaluation.plot import Picture
from grocery.evaluation.report import METRICS_FILE, EvaluationReport
from grocery_common.evaluation import ConfusedPair

# report.md lists at most this many rows per mismatch list; metrics.json lists them all.
LIST_LIMIT = 50
WEAKEST_CLASSES = 10


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


def _capped(
    items: list[Any], render: Callable[[Any], list[Any]], header: list[str], what: str
) -> list[str]:
    if not items:
        return [f"None: no {what}.", ""]
    lines = _table(header, [render(item) for item in items[:LIST_LIMIT]])
    if len(items) > LIST_LIMIT:
        lines += [f"... and {len(items) - LIST_LIMIT} more: see `{METRICS_FILE}`.", ""]
    return lines


def _coarse_pair(pair: ConfusedPair, coarse_of: list[str]) -> str:
    truth, predicted = coarse_of[pair.truth_id], coarse_of[pair.predicted_id]
    return f"within {truth}" if truth == predicted else f"{truth} -> {predicted}"


def _size(picture: Picture) -> str:
    return f"{picture.width} x {picture.height} px"


def _confusion_section(report: EvaluationReport, pictures: Mapping[str, Picture]) -> list[str]:
    """The page-width view first (by coarse class, when known), then the link to the full one."""
    ev = report.evaluation
    full = pictures[FULL]
    classes = len(report.labels)
    normalized = (
        "each row divided by its support (the diagonal is the recall); "
        "grey rows are classes absent from the truth."
    )
    out = ["## Confusion matrix", ""]
    coarse = pictures.get(COARSE)
    if coarse is None:
        out += [
            f"![confusion matrix]({full.path.name})",
            "",
            f"Rows are true classes, columns predicted classes, {normalized}",
            "",
        ]
        if classes > 30:
            out += [
                f"At page width the {classes} class names are too small to read: open "
                f"[{full.path.name}]({full.path.name}) ({_size(full)}) at 100%, or pass "
                "`--manifest` with `coarse_labels` for a page-width view by coarse class.",
                "",
            ]
        return out
    out += [
        f"![confusion matrix by coarse class]({coarse.path.name})",
        "",
        f"The {classes} classes summed into their {ev.coarse_classes} coarse classes "
        f"(rows true, columns predicted, image counts in the cells), {normalized} "
        f"The diagonal holds the {ev.errors_within_coarse_class} fine errors that stay inside "
        "their coarse class; the table below names the most frequent fine confusions.",
        "",
        f"The full {classes}-class matrix, every class named and coarse groups boxed: "
        f"[{full.path.name}]({full.path.name}) ({_size(full)}, legible at 100%).",
        "",
    ]
    return out


def markdown(report: EvaluationReport, pictures: Mapping[str, Picture]) -> str:
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

    out += _confusion_section(report, pictures)
    out += ["## Most confused pairs", ""]
    coarse_of = report.coarse_labels
    header = ["true class", "predicted as", "images", "share of the true class"]
    out += _capped(
        list(ev.confused_pairs),
        lambda p: (
            [p.truth, p.predicted, p.count, _pct(p.share)]
            + ([_coarse_pair(p, coarse_of)] if coarse_of else [])
        ),
        header + (["coarse class"] if coarse_of else []),
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
