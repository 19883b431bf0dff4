"""The retraining-trigger configuration keys: which events start a training by themselves.

Importable without aws_cdk (stacks/config.py validates with it). `retrain_schedule` is an
EventBridge Scheduler expression, checked for its documented shape at synth so that a typo
fails `cdk synth` with the key's name instead of a CloudFormation rollback:
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
"""

from __future__ import annotations

import re
from typing import Any

# rate(value unit): a positive whole number; the unit is singular for 1, plural otherwise.
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
# cron(minutes hours day-of-month month day-of-week year): the characters each field allows.
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"
_CRON_FIELDS = (
    ("minutes", r"[0-9,\-*/]+"),
    ("hours", r"[0-9,\-*/]+"),
    ("day-of-month", r"(\?|[0-9,\-*/LW]+)"),
    ("month", rf"([0-9,\-*/]|{_MONTHS})+"),
    ("day-of-week", rf"(\?|([0-9,\-*#L]|{_DAYS})+)"),
    ("year", r"[0-9,\-*/]+"),
)
EXAMPLES = "e.g. cron(0 3 ? * MON *) (Mondays 03:00 UTC) or rate(7 days)"


class ScheduleExpressionError(ValueError):
    pass


def check_schedule_expression(expression: str) -> None:
    """'' (no schedule), a rate(...) or a cron(...) expression; else the error says what is wrong."""
    if not expression:
        return
    if expression.startswith("rate("):
        _check_rate(expression)
    elif expression.startswith("cron("):
        _check_cron(expression)
    elif expression.startswith("at("):
        raise ScheduleExpressionError(
            f"a one-time at(...) schedule retrains only once; use a recurring one, {EXAMPLES}"
        )
    else:
        raise ScheduleExpressionError(f"use a rate(...) or cron(...) expression, {EXAMPLES}")


def _check_rate(expression: str) -> None:
    match = _RATE.match(expression)
    if not match:
        raise ScheduleExpressionError(
            "use rate(VALUE UNIT) with a whole number and minute(s), hour(s) or day(s), "
            "e.g. rate(7 days)"
        )
    value, unit = int(match.group(1)), match.group(2)
    if value < 1:
        raise ScheduleExpressionError("the rate's value must be a positive whole number")
    if (value == 1) is unit.endswith("s"):
        raise ScheduleExpressionError(
            "the unit is singular for 1 and plural otherwise, e.g. rate(1 day) or rate(7 days)"
        )


def _check_cron(expression: str) -> None:
    if not expression.endswith(")"):
        raise ScheduleExpressionError(f"a cron expression ends with ')', {EXAMPLES}")
    fields = expression[len("cron(") : -1].split()
    if len(fields) != len(_CRON_FIELDS):
        raise ScheduleExpressionError(
            "cron(...) takes six fields: minutes hours day-of-month month day-of-week year, "
            f"{EXAMPLES}"
        )
    for value, (name, pattern) in zip(fields, _CRON_FIELDS, strict=True):
        if not re.fullmatch(pattern, value.upper()):
            raise ScheduleExpressionError(f"the cron {name} field {value!r} is not valid")
    day_of_month, day_of_week = fields[2], fields[4]
    # One of the two day fields must be '?' (the guide's cron rules).
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleExpressionError(
            "exactly one of day-of-month and day-of-week must be '?', e.g. cron(0 3 ? * MON *)"
        )


def check_retraining(config: Any) -> None:
    """Raises ValueError naming the key; `config` has the retrain_* fields of stacks.config."""
    try:
        check_schedule_expression(config.retrain_schedule)
    except ScheduleExpressionError as error:
        raise ValueError(
            f"config key 'retrain_schedule' has invalid value {config.retrain_schedule!r}: "
            f"{error}; leave it empty for no schedule"
        ) from None


def triggers_enabled(config: Any) -> bool:
    """Whether any retraining trigger is on (nothing is created otherwise)."""
    return bool(config.retrain_on_new_dataset or config.retrain_schedule)
