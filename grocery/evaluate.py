"""`python -m grocery evaluate`: score batch predictions against a ground-truth .lst."""

from __future__ import annotations

import argparse
from pathlib import Path

from grocery.errors import CommandError

# Exit code when --fail-under is given and top-1 accuracy is below it (input errors exit 2).
BELOW_THRESHOLD = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score batch predictions against ground truth; write metrics.json, report.md and "
        "the confusion-matrix pictures",
        description="Score predictions (the batch stack's results .jsonl, or a folder of a "
        "transform job's raw .out files) against ground truth (a .lst from preprocessing). "
        "Writes metrics.json, report.md and confusion_matrix.png into --out, plus "
        "confusion_matrix_coarse.png (by coarse class, page width) when --manifest has "
        "coarse_labels.",
    )
    parser.add_argument(
        "--results",
        required=True,
        type=Path,
        help="a results .jsonl file, a folder of .jsonl files, or a folder of .out files",
    )
    parser.add_argument(
        "--truth", required=True, type=Path, help="ground truth, e.g. test_lst/test.lst"
    )
    parser.add_argument(
        "--labels", required=True, type=Path, help="labels.json the model was trained with"
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        help="the dataset's manifest.json: adds coarse-class accuracy when it has coarse_labels",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for the report files")
    parser.add_argument(
        "--fail-under",
        type=float,
        metavar="ACCURACY",
        help=f"exit {BELOW_THRESHOLD} when top-1 accuracy is below this fraction (e.g. 0.8), "
        "after writing the report",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grocery import evaluation  # matplotlib is imported only when the command runs

    if args.fail_under is not None and not 0.0 <= args.fail_under <= 1.0:
        raise CommandError(f"--fail-under {args.fail_under} must be a fraction in [0, 1], e.g. 0.8")
    report, paths = evaluation.run(
        results=args.results,
        truth=args.truth,
        labels=args.labels,
        manifest=args.manifest,
        out=args.out,
    )
    ev = report.evaluation
    counts = report.counts
    coarse = f", coarse {ev.coarse_accuracy:.1%}" if ev.coarse_accuracy is not None else ""
    print(
        f"top-1 {ev.top1_accuracy:.1%} ({ev.top1_correct}/{ev.samples}), "
        f"top-5 {ev.top5_accuracy:.1%}{coarse}, macro F1 {ev.macro_f1:.3f}"
    )
    print(
        f"images: {counts['evaluated']} evaluated of {counts['truth_images']} in the truth | "
        f"unclassified {counts['unclassified']}, truth-only {counts['truth_only']}, "
        f"results-only {counts['results_only']}, duplicates {counts['duplicates']}"
    )
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    if args.fail_under is not None and ev.top1_accuracy < args.fail_under:
        print(f"top-1 accuracy {ev.top1_accuracy:.4f} is below --fail-under {args.fail_under}")
        return BELOW_THRESHOLD
    return 0
