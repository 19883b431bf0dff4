"""`python -m grocery training report JOB|VERSION --out DIR`: what a training run did.

Train and validation accuracy at each epoch (from the job's CloudWatch log lines, else its
CloudWatch metrics) as a table and a learning curve, with duration, billable seconds, spot
savings and cost; for a tuning job, or a version trained by one, the table of its training
jobs. Prints the report and writes report.md and learning-curve.png to DIR. Read-only.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import boto3

from grocery.arguments import add_prefix_option
from grocery.aws import session as aws_session
from grocery.errors import CommandError
from grocery.training_report import render
from grocery.training_report.collect import Clients, collect

REPORT_FILE = "report.md"
PICTURE_FILE = "learning-curve.png"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "training",
        help="reports on training runs: per-epoch accuracy, learning curve, cost",
        description=__doc__.split("\n\n")[1],
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = actions.add_parser(
        "report",
        help="per-epoch accuracy table, learning curve, duration and cost of a training run",
        description=__doc__.split("\n\n")[1],
    )
    report.add_argument(
        "target",
        metavar="JOB|VERSION",
        help="a training job name, a hyperparameter tuning job name, or a model version "
        "number (see python -m grocery models list)",
    )
    report.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder for report.md and the PNG"
    )
    add_prefix_option(report, help="the app's prefix, for VERSION (default: grocery)")
    report.add_argument(
        "--price-per-hour",
        type=_price,
        metavar="USD",
        help="on-demand $/hour of the training instance (default: docs/costs.md's us-east-1 "
        "price for ml.p3.2xlarge, ml.g5.xlarge, ml.g4dn.xlarge)",
    )
    report.set_defaults(run=run_report)


def _price(value: str) -> float:
    try:
        price = float(value)
    except ValueError:
        price = -1.0
    if not price >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"--price-per-hour must be a number >= 0, not {value!r}")
    return price


def _prepare(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file: name a folder (it is created if missing)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_report(
    args: argparse.Namespace,
    *,
    session: boto3.Session | None = None,
    out: TextIO | None = None,
    now: datetime | None = None,
) -> int:
    out = out or sys.stdout  # looked up per call: tests and callers may replace it
    folder = _prepare(args.out)  # before any AWS call: a bad --out fails fast
    session = session or aws_session()
    clients = Clients(
        sagemaker=session.client("sagemaker"),
        logs=session.client("logs"),
        cloudwatch=session.client("cloudwatch"),
        region=session.region_name or "?",
    )
    report = collect(
        clients,
        args.target,
        prefix=args.prefix,
        price=args.price_per_hour,
        now=now or datetime.now(UTC),
    )
    picture = None
    if report.job and report.job.history.epochs:
        title = f"{report.job.name}: accuracy per epoch"
        render.learning_curve(report.job.history, folder / PICTURE_FILE, title)
        picture = PICTURE_FILE
    (folder / REPORT_FILE).write_text(render.markdown(report, picture), encoding="utf-8")
    print(render.terminal(report), file=out)
    written = [folder / REPORT_FILE] + ([folder / picture] if picture else [])
    print("\nwrote " + ", ".join(str(p) for p in written), file=out)
    if report.job and not report.job.history.epochs:
        print("no learning curve: no per-epoch values (see above)", file=out)
    return 0
