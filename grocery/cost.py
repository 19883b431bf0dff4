"""`python -m grocery cost [--images-per-month N]`: the monthly serving cost of this config.

Reads the configuration as `cdk synth` does (cdk.json's context, then `-c key=value`
overrides, validated by stacks/config.py) and prints what serving N images a month costs
in its serving_mode, beside the other two modes. The prices and assumptions are the ones
of docs/costs.md ("Serving modes"), which is tested to show this module's figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from grocery.errors import CommandError

REGION = "us-east-1"
LOOKED_UP = "2026-12-01"
# The one price table (us-east-1; see docs/costs.md "Sources" for where each comes from).
PRICES = {
    "instance_per_hour": {"ml.m4.xlarge": 0.28, "ml.m5.xlarge": 0.23, "ml.c5.xlarge": 0.204},
    "serverless_per_gb_second": 0.00002,
    "serverless_data_per_gb": 0.016,
    "api_per_million": 3.50,
    "lambda_per_million": 0.88,
}
HOURS_PER_MONTH = 730
# Assumptions (docs/costs.md says why; replace them with your measurements).
ASSUMED = {
    "image_mb": 0.1,  # a 348 x 348 JPEG as prepared, or a phone photo downscaled
    "serverless_seconds_per_image": 0.5,  # ResNet-50 on the serverless CPU share
    "instance_seconds_per_image": 0.25,  # ResNet-50 on 4 vCPUs
    "images_per_burst": 50,  # async: images arrive in bursts (a shelf at a time)
    "async_hours_per_burst": 0.5,  # start from zero + the idle time before scale-in
}
TRAFFIC = (0, 1_000, 100_000, 1_000_000)
MODES = ("realtime", "serverless", "async")


@dataclasses.dataclass(frozen=True)
class Estimate:
    mode: str
    images: int
    endpoint: float
    api: float

    @property
    def total(self) -> float:
        return self.endpoint + self.api


def _hourly(instance_type: str) -> float:
    try:
        return PRICES["instance_per_hour"][instance_type]
    except KeyError:
        known = ", ".join(PRICES["instance_per_hour"])
        raise CommandError(
            f"no price for endpoint_instance_type {instance_type} in grocery/cost.py (known: "
            f"{known}); see docs/costs.md for how to estimate it"
        ) from None


def estimate(config: Any, images: int, mode: str | None = None) -> Estimate:
    """The monthly cost of serving `images` images in `mode` (default: the config's)."""
    mode = mode or config.serving_mode
    api = images / 1e6 * (PRICES["api_per_million"] + PRICES["lambda_per_million"])
    if mode == "serverless":
        gb = config.serverless_memory_mb / 1024
        compute = images * ASSUMED["serverless_seconds_per_image"] * gb
        data_gb = images * ASSUMED["image_mb"] / 1024
        endpoint = (
            compute * PRICES["serverless_per_gb_second"]
            + data_gb * PRICES["serverless_data_per_gb"]
        )
        return Estimate(mode, images, endpoint, api)
    hourly = _hourly(config.endpoint_instance_type)
    busy_hours = images * ASSUMED["instance_seconds_per_image"] / 3600
    if mode == "async":
        bursts = images / ASSUMED["images_per_burst"]
        hours = min(HOURS_PER_MONTH, bursts * ASSUMED["async_hours_per_burst"] + busy_hours)
        return Estimate(mode, images, hours * hourly, api)
    instances = max(config.endpoint_min_instances, -(-busy_hours // HOURS_PER_MONTH))
    return Estimate(mode, images, instances * HOURS_PER_MONTH * hourly, api)


def markdown_table(config: Any) -> str:
    """The docs/costs.md table: every mode at every traffic level (USD a month)."""
    header = "| images a month | " + " | ".join(MODES) + " |"
    lines = [header, "|---|" + "---:|" * len(MODES)]
    for images in TRAFFIC:
        cells = [f"${estimate(config, images, mode).total:,.2f}" for mode in MODES]
        lines.append(f"| {images:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cost",
        help="the monthly serving cost of the current config",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "--images-per-month",
        type=int,
        default=None,
        metavar="N",
        help="traffic to price (default: 0, 1,000, 100,000 and 1,000,000)",
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override, as with npx cdk synth -c (repeatable)",
    )
    parser.add_argument(
        "--cdk-json", type=Path, default=Path("cdk.json"), help="default: ./cdk.json"
    )
    parser.set_defaults(run=run)


def load_config(cdk_json: Path, overrides: list[str]):
    from stacks.config import ConfigError, config_from_context  # aws_cdk: imported on use

    try:
        context = json.loads(cdk_json.read_text()).get("context", {}) if cdk_json.is_file() else {}
    except json.JSONDecodeError as error:
        raise CommandError(f"{cdk_json} is not valid JSON ({error.msg})") from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"-c {item!r}: use KEY=VALUE, e.g. -c serving_mode=serverless")
        context[key] = value
    try:
        return config_from_context(context.get, context)
    except ConfigError as error:
        raise CommandError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    if args.images_per_month is not None and args.images_per_month < 0:
        raise CommandError("--images-per-month must be 0 or more")
    config = load_config(args.cdk_json, args.context)
    levels = TRAFFIC if args.images_per_month is None else (args.images_per_month,)
    print(
        f"serving_mode {config.serving_mode}: monthly cost in USD, {REGION} prices of "
        f"{LOOKED_UP} (docs/costs.md for the assumptions)"
    )
    for images in levels:
        here = estimate(config, images)
        others = ", ".join(
            f"{mode} ${estimate(config, images, mode).total:,.2f}"
            for mode in MODES
            if mode != config.serving_mode
        )
        print(
            f"  {images:>11,} images: ${here.total:,.2f} (endpoint ${here.endpoint:,.2f}, "
            f"API + Lambda ${here.api:,.2f}); {others}"
        )
    if config.monthly_budget_usd:
        print(f"  budget: ${config.monthly_budget_usd:,.2f} a month (monthly_budget_usd)")
    return 0
