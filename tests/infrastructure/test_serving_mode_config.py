"""Config keys of the serving modes: SageMaker's limits, combinations that cannot deploy,
the schedule format. No CDK app is built here."""

from __future__ import annotations

import pytest

from stacks.config import Config, ConfigError, config_from_context
from stacks.serving.mode_config import Schedule, ScheduleError, parse_schedule


def test_defaults_serve_in_real_time_with_no_schedule_or_budget():
    config = Config()
    assert config.serving_mode == "realtime"
    assert (config.serverless_memory_mb, config.serverless_max_concurrency) == (3072, 5)
    assert config.endpoint_schedule == ""
    assert config.monthly_budget_usd == 0


def test_values_from_the_command_line_are_parsed():
    context = {
        "serving_mode": "serverless",
        "serverless_memory_mb": "6144",
        "serverless_max_concurrency": "200",
        "monthly_budget_usd": "50.5",
    }
    config = config_from_context(context.get, context)
    assert config.serverless_memory_mb == 6144
    assert config.serverless_max_concurrency == 200
    assert config.monthly_budget_usd == 50.5


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"serving_mode": "batch"}, "serving_mode", "'realtime'"),
        ({"serverless_memory_mb": 1500}, "serverless_memory_mb", "1024, 2048"),
        ({"serverless_memory_mb": 7168}, "serverless_memory_mb", "6144"),
        ({"serverless_max_concurrency": 0}, "serverless_max_concurrency", "1-200"),
        ({"serverless_max_concurrency": 201}, "serverless_max_concurrency", "1-200"),
        (
            {"serving_mode": "serverless", "endpoint_instance_type": "ml.g4dn.xlarge"},
            "endpoint_instance_type",
            "no GPUs",
        ),
        (
            {"serving_mode": "async", "endpoint_schedule": "8-18"},
            "endpoint_schedule",
            "'realtime' only",
        ),
        (
            {"serving_mode": "serverless", "endpoint_schedule": "8-18"},
            "endpoint_schedule",
            "'realtime' only",
        ),
        (
            {"endpoint_schedule": "8-18", "endpoint_max_instances": 1},
            "endpoint_schedule",
            "change nothing",
        ),
        ({"endpoint_schedule": "8 to 18"}, "endpoint_schedule", "START-END"),
        ({"endpoint_schedule": "8-8"}, "endpoint_schedule", "two different hours"),
        ({"endpoint_schedule": "8-24"}, "endpoint_schedule", "0 to 23"),
        ({"endpoint_schedule": "8-18 MON-FUN"}, "endpoint_schedule", "MON-FRI"),
        ({"monthly_budget_usd": -1}, "monthly_budget_usd", "positive"),
    ],
)
def test_refused_with_the_key_and_the_fix(values, key, fragment):
    with pytest.raises(ConfigError) as error:
        Config(**values)
    message = str(error.value)
    assert f"'{key}'" in message
    assert fragment in message


def test_gpu_endpoints_stay_possible_outside_serverless():
    assert Config(serving_mode="async", endpoint_instance_type="ml.g4dn.xlarge")


@pytest.mark.parametrize(
    ("text", "schedule", "start_cron", "weekly_hours"),
    [
        ("8-18", Schedule(8, 18, "*"), "cron(0 8 * * ? *)", 70),
        ("8-18 mon-fri", Schedule(8, 18, "MON-FRI"), "cron(0 8 ? * MON-FRI *)", 50),
        ("22-6 SAT,SUN", Schedule(22, 6, "SAT,SUN"), "cron(0 22 ? * SAT,SUN *)", 16),
        ("0-23 FRI-MON", Schedule(0, 23, "FRI-MON"), "cron(0 0 ? * FRI-MON *)", 92),
    ],
)
def test_schedules(text, schedule, start_cron, weekly_hours):
    parsed = parse_schedule(text)
    assert parsed == schedule
    assert parsed.cron(parsed.start_hour) == start_cron
    assert parsed.hours_in_service_per_week == weekly_hours


def test_no_schedule():
    assert parse_schedule("  ") is None
    with pytest.raises(ScheduleError):
        parse_schedule("8-18 MON-TUE-WED")
