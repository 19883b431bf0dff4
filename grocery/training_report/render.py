"""The training report as a terminal text, as report.md and as a learning-curve PNG.

Matplotlib's Agg canvas is used directly (as grocery/evaluation/plot.py does): no display and
no global backend switch; matplotlib is imported only when a picture is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grocery.training_report.collect import JobReport, Report, TuningReport
from grocery.training_report.cost import dollars, duration, percent
from grocery.training_report.epochs import History

EPOCH_HEADER = ("epoch", "train accuracy", "validation accuracy", "")
TRIAL_HEADER = ("training job", "status", "objective", "hyperparameters", "billable", "cost", "")
BEST = "best"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def epoch_rows(history: History) -> list[tuple[str, ...]]:
    best = history.best
    return [
        (str(e.number), _score(e.train), _score(e.validation), BEST if e == best else "")
        for e in history.epochs
    ]


def trial_rows(tuning: TuningReport) -> list[tuple[str, ...]]:
    rows = []
    for t in sorted(tuning.trials, key=lambda t: t.name):
        bill = t.billing
        rows.append(
            (
                t.name,
                t.status,
                _score(t.objective),
                " ".join(f"{k}={v}" for k, v in sorted(t.hyperparameters.items())) or "-",
                f"{bill.billed_instance_seconds} s"
                if bill and bill.billed_instance_seconds is not None
                else "-",
                dollars(bill.cost) if bill else "-",
                BEST if t.name == tuning.best_job else "",
            )
        )
    return rows


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def summary(job: JobReport) -> list[tuple[str, str]]:
    b = job.billing
    instances = f"{b.instance_type or '?'} x {b.instance_count}"
    fields = [
        ("status", job.status + (f" ({job.failure})" if job.failure else "")),
        ("instances", instances + (", managed spot" if b.spot else ", on demand")),
        ("created", job.created.isoformat() if job.created else "-"),
        ("duration", f"{duration(b.wall_seconds)} (TrainingStartTime to TrainingEndTime)"),
        ("training time", f"{b.training_seconds} s" if b.training_seconds is not None else "-"),
        ("billable time", f"{b.billable_seconds} s" if b.billable_seconds is not None else "-"),
        ("spot savings", percent(b.spot_savings) if b.spot else "- (on demand)"),
        ("cost", f"{dollars(b.cost)} ({b.price_source})"),
    ]
    for name, value in sorted(job.final_metrics.items()):
        fields.append((f"final {name}", f"{value:.3f}"))
    best = job.history.best
    if best:
        fields.append(("best epoch", f"{best.number} (validation {_score(best.validation)})"))
    fields.append(("per-epoch values", job.history.note))
    return fields


def _tuning_fields(tuning: TuningReport) -> list[tuple[str, str]]:
    return [
        ("status", tuning.status),
        ("strategy", tuning.strategy),
        ("objective", tuning.objective),
        ("best training job", tuning.best_job or "- (none completed)"),
        ("training jobs", str(len(tuning.trials))),
        ("billable time, all jobs", f"{tuning.billed_instance_seconds} s"),
        ("cost, all jobs", dollars(tuning.cost)),
    ]


def _fields_text(fields: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in fields)


def terminal(report: Report) -> str:
    parts = [report.subject]
    if report.job:
        job = report.job
        if report.subject != f"training job {job.name}":
            parts.append(f"\ntraining job {job.name}")
        if job.history.epochs:
            parts.append(text_table(EPOCH_HEADER, epoch_rows(job.history)))
        else:
            parts.append(f"no per-epoch values: {job.history.note}")
        parts.append(_fields_text(summary(job)))
    if report.tuning:
        parts.append(f"\nhyperparameter tuning job {report.tuning.name}")
        parts.append(_fields_text(_tuning_fields(report.tuning)))
        parts.append(text_table(TRIAL_HEADER, trial_rows(report.tuning)))
    return "\n".join(parts)


def markdown(report: Report, picture: str | None) -> str:
    parts = [f"# Training report: {report.subject}"]
    if report.job:
        job = report.job
        parts.append(f"## Training job `{job.name}`")
        if job.history.epochs:
            parts.append("Accuracy at the end of each epoch:")
            parts.append(markdown_table(EPOCH_HEADER, epoch_rows(job.history)))
        else:
            parts.append(f"No per-epoch values: {job.history.note}.")
        if picture:
            parts.append(f"![learning curve]({picture})")
        parts.append(markdown_table(("", "value"), summary(job)))
        if job.hyperparameters:
            hyper = sorted(job.hyperparameters.items())
            parts.append("Hyperparameters:")
            parts.append(markdown_table(("hyperparameter", "value"), hyper))
    if report.tuning:
        parts.append(f"## Hyperparameter tuning job `{report.tuning.name}`")
        parts.append(markdown_table(("", "value"), _tuning_fields(report.tuning)))
        parts.append(markdown_table(TRIAL_HEADER, trial_rows(report.tuning)))
    return "\n\n".join(parts) + "\n"


def learning_curve(history: History, path: Path, title: str) -> Path:
    """Train and validation accuracy per epoch, the best epoch marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, values in (
        ("train", [(e.number, e.train) for e in history.epochs if e.train is not None]),
        (
            "validation",
            [(e.number, e.validation) for e in history.epochs if e.validation is not None],
        ),
    ):
        if values:
            xs, ys = zip(*values, strict=True)
            axes.plot(xs, ys, marker="o", markersize=3, label=label)
    best = history.best
    if best and best.validation is not None:
        axes.scatter(
            [best.number],
            [best.validation],
            s=90,
            facecolors="none",
            edgecolors="black",
            zorder=3,
            label=f"best: epoch {best.number}",
        )
    axes.set_xlabel("epoch")
    axes.set_ylabel("accuracy")
    axes.set_ylim(0.0, 1.0)
    axes.grid(color="#e6e6e6", linewidth=0.6)
    axes.legend(loc="lower right")
    axes.set_title(title, fontsize=10)
    figure.savefig(path)
    return path
