"""The serving configuration keys: which endpoint a deployment runs, and when it may scale down.

Importable without aws_cdk (stacks/config.py validates with it; `python -m grocery cost`
reads the same values). Every limit below is SageMaker's, with the page it comes from.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

REALTIME, SERVERLESS, ASYNC = "realtime", "serverless", "async"
SERVING_MODES = (REALTIME, SERVERLESS, ASYNC)

# ProductionVariantServerlessConfig: MemorySizeInMB 1024-6144 in 1 GB steps, MaxConcurrency
# 1-200 per endpoint (the account's total across serverless endpoints is a separate quota,
# as low as 10 in new accounts).
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantServerlessConfig.html
# https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html
SERVERLESS_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
# Serverless Inference has no GPUs (feature exclusions, serverless-endpoints.html).
GPU_ENDPOINT_FAMILIES = ("p2", "p3", "p3dn", "p4d", "p4de", "p5", "g4dn", "g5", "g6", "g6e")

_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_SCHEDULE = re.compile(r"^(\d{1,2})-(\d{1,2})(?:\s+([A-Za-z,-]+))?$")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """In service hours (UTC) on the given days (an Application Auto Scaling cron field)."""

    start_hour: int
    end_hour: int
    days: str = "*"

    def cron(self, hour: int) -> str:
        # cron(minutes hours day-of-month month day-of-week year); '?' when days are named.
        day_of_month = "?" if self.days != "*" else "*"
        day_of_week = self.days if self.days != "*" else "?"
        return f"cron(0 {hour} {day_of_month} * {day_of_week} *)"

    @property
    def hours_in_service_per_week(self) -> int:
        hours = (self.end_hour - self.start_hour) % 24
        return hours * (7 if self.days == "*" else _day_count(self.days))


def _day_count(days: str) -> int:
    count = 0
    for part in days.split(","):
        first, _, last = part.partition("-")
        start = _DAYS.index(first)
        count += (_DAYS.index(last) - start) % 7 + 1 if last else 1
    return count


class ScheduleError(ValueError):
    pass


def parse_schedule(text: str) -> Schedule | None:
    """'' -> None (no schedule); '8-18' (every day) or '8-18 MON-FRI' -> a Schedule."""
    text = text.strip()
    if not text:
        return None
    match = _SCHEDULE.match(text)
    if not match:
        raise ScheduleError("use 'START-END' hours in UTC, optionally days: e.g. '8-18 MON-FRI'")
    start, end, days = int(match.group(1)), int(match.group(2)), (match.group(3) or "*")
    if not (0 <= start <= 23 and 0 <= end <= 23) or start == end:
        raise ScheduleError("use two different hours from 0 to 23, e.g. '8-18'")
    days = days.upper()
    for part in days.split(",") if days != "*" else []:
        if any(day not in _DAYS for day in part.split("-")) or part.count("-") > 1:
            raise ScheduleError(f"days must be names like MON-FRI or SAT,SUN, got {part!r}")
    return Schedule(start, end, days)


def _fail(key: str, value: object, fix: str) -> ValueError:
    return ValueError(f"config key '{key}' has invalid value {value!r}: {fix}")


def instance_family(instance_type: str) -> str:
    return instance_type.split(".")[1] if instance_type.count(".") >= 2 else ""


def check_serving(c: Any) -> None:
    """Raises ValueError (the caller wraps it) for values or combinations that cannot deploy."""
    if c.serving_mode not in SERVING_MODES:
        raise _fail(
            "serving_mode",
            c.serving_mode,
            "use 'realtime' (instances always on), 'serverless' (billed per request, cold "
            "starts) or 'async' (queued requests, scales to zero); see docs/costs.md",
        )
    if c.serverless_memory_mb not in SERVERLESS_MEMORY_SIZES_MB:
        raise _fail(
            "serverless_memory_mb",
            c.serverless_memory_mb,
            f"use one of {', '.join(map(str, SERVERLESS_MEMORY_SIZES_MB))} (SageMaker's sizes)",
        )
    if not 1 <= c.serverless_max_concurrency <= SERVERLESS_MAX_CONCURRENCY:
        raise _fail(
            "serverless_max_concurrency",
            c.serverless_max_concurrency,
            f"use 1-{SERVERLESS_MAX_CONCURRENCY} (SageMaker's limit per endpoint)",
        )
    try:
        schedule = parse_schedule(c.endpoint_schedule)
    except ScheduleError as error:
        raise _fail("endpoint_schedule", c.endpoint_schedule, str(error)) from None
    if c.serving_mode == SERVERLESS and instance_family(c.endpoint_instance_type) in (
        GPU_ENDPOINT_FAMILIES
    ):
        raise _fail(
            "endpoint_instance_type",
            c.endpoint_instance_type,
            "serving_mode 'serverless' has no GPUs: use a CPU type such as ml.m4.xlarge, or "
            "serving_mode 'realtime' or 'async' for a GPU endpoint",
        )
    if schedule and c.serving_mode != REALTIME:
        raise _fail(
            "endpoint_schedule",
            c.endpoint_schedule,
            f"applies to serving_mode 'realtime' only (serving_mode is '{c.serving_mode}', "
            "which already scales to zero when idle): remove endpoint_schedule",
        )
    if schedule and c.endpoint_max_instances == 1:
        raise _fail(
            "endpoint_schedule",
            c.endpoint_schedule,
            "a real-time endpoint keeps at least 1 instance, and endpoint_max_instances is "
            "1: the schedule would change nothing. Raise endpoint_min_instances/"
            "endpoint_max_instances, or remove endpoint_schedule",
        )
    if c.monthly_budget_usd < 0:
        raise _fail(
            "monthly_budget_usd",
            c.monthly_budget_usd,
            "use a positive amount in US dollars, or 0 for no budget",
        )
