"""`python -m grocery train --tune`: a hyperparameter tuning run instead of one training job.

Before anything starts it prints the worst case: every training job of the run (max_jobs)
runs to MaxRuntimeInSeconds on every instance, at the instance's on-demand price, and at
the spot price docs/costs.md assumes (70 % off). It asks for confirmation unless --yes; with
no terminal to ask on, it refuses (exit 2) and says to pass --yes. The deployed limits
(config tuning_max_jobs, training_max_runtime_seconds, the instance type and count) are
read from the state machine's definition, so the figure is that of the deployed stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from grocery.errors import FAILED, CommandError
from grocery.training_report.prices import REGION, hourly_price

# docs/costs.md "Training": the managed-spot discount its tables assume (AWS advertises
# "up to 90 %"; the real one varies), and the most one run may have.
SPOT_DISCOUNT_ASSUMED = 0.70
MAX_JOBS, MAX_PARALLEL_JOBS = 100, 10  # stacks/training/training_config.py


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tune",
        action="store_true",
        help="run a hyperparameter tuning job (Bayesian, validation:accuracy) instead of one "
        "training job; its best job is gated and registered",
    )
    parser.add_argument(
        "--max-jobs", type=int, metavar="N", help="training jobs of the tuning run (1-100)"
    )
    parser.add_argument(
        "--max-parallel-jobs", type=int, metavar="N", help="how many run at once (1-10)"
    )
    parser.add_argument(
        "--warm-start-from", metavar="TUNING_JOB", help="an earlier tuning job to start from"
    )
    parser.add_argument(
        "--yes", action="store_true", help="start the tuning run without asking about its cost"
    )


def tuning_input(args: argparse.Namespace) -> dict[str, Any] | None:
    """The execution's `tuning` (only what was given: the state machine adds its defaults)."""
    given = {
        "--max-jobs": args.max_jobs,
        "--max-parallel-jobs": args.max_parallel_jobs,
        "--warm-start-from": args.warm_start_from,
    }
    if not args.tune:
        named = [flag for flag, value in given.items() if value is not None]
        if named:
            raise CommandError(f"{named[0]} needs --tune")
        return None
    for flag, value, top in (
        ("--max-jobs", args.max_jobs, MAX_JOBS),
        ("--max-parallel-jobs", args.max_parallel_jobs, MAX_PARALLEL_JOBS),
    ):
        if value is not None and not 1 <= value <= top:
            raise CommandError(f"{flag} {value}: use 1-{top}")
    if args.max_jobs and args.max_parallel_jobs and args.max_parallel_jobs > args.max_jobs:
        raise CommandError(
            f"--max-parallel-jobs {args.max_parallel_jobs}: at most --max-jobs ({args.max_jobs})"
        )
    tuning: dict[str, Any] = {}
    if args.max_jobs is not None:
        tuning["max_jobs"] = args.max_jobs
    if args.max_parallel_jobs is not None:
        tuning["max_parallel_jobs"] = args.max_parallel_jobs
    if args.warm_start_from:
        tuning["warm_start_from"] = args.warm_start_from
    return tuning


@dataclass(frozen=True)
class Deployed:
    """What the deployed definition says about a tuning run's size."""

    max_jobs: int
    max_parallel_jobs: int
    max_runtime_seconds: int
    instance_type: str
    instance_count: int
    spot: bool


def deployed(sfn, state_machine_arn: str) -> Deployed:
    try:
        definition = sfn.describe_state_machine(stateMachineArn=state_machine_arn)["definition"]
    except (ClientError, BotoCoreError) as error:
        raise CommandError(f"cannot read the training state machine: {error}") from None
    states = json.loads(definition)["States"]
    try:
        limits = states["Tuning limits"]["Parameters"]["defaults"]
        job = states["Tune"]["Parameters"]["TrainingJobDefinition"]
        resources = states["Use encrypted instance storage"]["Parameters"]
        return Deployed(
            max_jobs=int(limits["max_jobs"]),
            max_parallel_jobs=int(limits["max_parallel_jobs"]),
            max_runtime_seconds=int(job["StoppingCondition"]["MaxRuntimeInSeconds"]),
            instance_type=states["Read input"]["Parameters"]["defaults"]["instance_type"],
            instance_count=int(resources["InstanceCount"]),
            spot=bool(job.get("EnableManagedSpotTraining")),
        )
    except (KeyError, TypeError, ValueError):
        raise CommandError(
            "the deployed training stack cannot tune: redeploy it (npx cdk deploy "
            "Grocery-Training) with this version of the project"
        ) from None


def worst_case(settings: Deployed, tuning: dict[str, Any], instance_type: str | None) -> str:
    """The worst-case cost lines: every job runs to MaxRuntimeInSeconds on every instance."""
    jobs = tuning.get("max_jobs", settings.max_jobs)
    parallel = tuning.get("max_parallel_jobs", settings.max_parallel_jobs)
    instance = instance_type or settings.instance_type
    hours = settings.max_runtime_seconds / 3600
    instance_hours = jobs * hours * settings.instance_count
    lines = [
        f"tuning run: up to {jobs} training jobs, {parallel} at a time, each on "
        f"{settings.instance_count} x {instance} for at most {hours:g} h (MaxRuntimeInSeconds "
        f"{settings.max_runtime_seconds})",
    ]
    price = hourly_price(instance)
    if price is None:
        lines.append(
            f"worst case: {instance_hours:g} instance-hours of {instance} (no price known for "
            "it: see https://aws.amazon.com/sagemaker/pricing/)"
        )
        return "\n".join(lines)
    on_demand = instance_hours * price
    spot = on_demand * (1 - SPOT_DISCOUNT_ASSUMED)
    lines.append(
        f"worst case: {jobs} x {hours:g} h x {settings.instance_count} x ${price}/h = "
        f"${on_demand:,.2f} on demand, about ${spot:,.2f} with managed spot "
        f"({SPOT_DISCOUNT_ASSUMED:.0%} off assumed; {REGION} prices, docs/costs.md)"
        + ("" if settings.spot else "; this deployment trains on demand")
    )
    lines.append(
        "(early stopping and jobs that end sooner make the real cost lower; see "
        "python -m grocery training report <tuning job> afterwards)"
    )
    return "\n".join(lines)


def confirm(
    text: str,
    *,
    yes: bool,
    out: TextIO,
    stdin: TextIO | None = None,
    ask: Callable[[str], str] = input,
) -> None:
    """Prints the cost; returns when the run may start, else raises CommandError."""
    print(text, file=out, flush=True)
    if yes:
        return
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        raise CommandError(
            "--tune: no terminal to confirm the cost on; pass --yes to start the tuning run"
        )
    try:
        answer = ask("start the tuning run? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError("tuning run not started", exit_code=FAILED)
