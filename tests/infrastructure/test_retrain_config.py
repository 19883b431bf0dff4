"""Config keys of the retraining triggers: defaults, parsing from context, clear errors."""

from __future__ import annotations

import pytest

from stacks.config import Config, ConfigError, config_from_context
from stacks.training.retrain_config import triggers_enabled


def _load(**context):
    return config_from_context(context.get)


def test_defaults_leave_both_triggers_off():
    config = Config()
    assert (config.retrain_on_new_dataset, config.retrain_schedule) == (False, "")
    assert config.retrain_incremental is True
    assert not triggers_enabled(config)


def test_values_from_dash_c_are_parsed():
    config = _load(
        retrain_on_new_dataset="true",
        retrain_schedule=" cron(0 3 ? * MON *) ",
        retrain_incremental="false",
    )
    assert config.retrain_on_new_dataset is True
    assert config.retrain_schedule == "cron(0 3 ? * MON *)"
    assert config.retrain_incremental is False
    assert triggers_enabled(config)
    assert triggers_enabled(_load(retrain_schedule="rate(7 days)"))
    assert triggers_enabled(_load(retrain_on_new_dataset=True))


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 day)",
        "rate(7 days)",
        "rate(12 hours)",
        "rate(1 hour)",
        "rate(30 minutes)",
        "cron(0 3 ? * MON *)",
        "cron(15 2 1 * ? *)",
        "cron(0 3 ? * MON-FRI *)",
        "cron(0/30 8-18 ? JAN,JUL 2#1 2027)",
        "cron(0 4 L * ? *)",
    ],
)
def test_documented_expressions_are_accepted(expression):
    assert _load(retrain_schedule=expression).retrain_schedule == expression


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("weekly", "rate(...) or cron(...)"),
        ("at(2027-01-01T03:00:00)", "only once"),
        ("rate(7 day)", "plural"),
        ("rate(1 days)", "singular"),
        ("rate(0 days)", "positive"),
        ("rate(7 weeks)", "minute(s), hour(s) or day(s)"),
        ("rate(seven days)", "whole number"),
        ("cron(0 3 * * MON *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 3 ? * MON)", "six fields"),
        ("cron(0 3 ? * MON *", "ends with ')'"),
        ("cron(0 3h ? * MON *)", "hours field '3h'"),
        ("cron(0 3 ? FOO MON *)", "month field"),
    ],
)
def test_a_bad_schedule_names_the_key_and_the_fix(expression, says):
    with pytest.raises(ConfigError) as raised:
        _load(retrain_schedule=expression)
    message = str(raised.value)
    assert message.startswith(f"config key 'retrain_schedule' has invalid value {expression!r}")
    assert says in message
    assert "leave it empty for no schedule" in message


@pytest.mark.parametrize("key", ["retrain_on_new_dataset", "retrain_incremental"])
def test_a_bad_boolean_names_the_key(key):
    with pytest.raises(ConfigError, match=f"config key '{key}'.*use true or false"):
        _load(**{key: "sometimes"})
