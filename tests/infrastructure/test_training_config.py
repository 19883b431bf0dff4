"""Config keys of the training options (issue 12): incremental_epochs,
training_instance_count, tuning_max_jobs, tuning_max_parallel_jobs, tuning_ranges."""

from __future__ import annotations

import pytest

from stacks.config import Config, ConfigError, config_from_context
from stacks.training.training_config import DEFAULT_TUNING_RANGES, DOCUMENTED_RANGES


def test_defaults():
    c = Config()
    assert (c.incremental_epochs, c.training_instance_count) == (10, 1)
    assert (c.tuning_max_jobs, c.tuning_max_parallel_jobs) == (12, 2)
    assert c.tuning_ranges == DEFAULT_TUNING_RANGES
    # Every default range lies inside the algorithm's documented recommended range.
    for key, spec in DEFAULT_TUNING_RANGES.items():
        kind, (low, high) = DOCUMENTED_RANGES[key]
        assert spec["type"] == kind
        assert low <= spec["min"] < spec["max"] <= high


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"incremental_epochs": 0},
            "config key 'incremental_epochs' has invalid value 0: use 1-1000",
        ),
        (
            {"training_instance_count": 11},
            "'training_instance_count' has invalid value 11: use 1-10",
        ),
        (
            {"training_instance_count": 2, "training_instance_type": "ml.c5.xlarge"},
            "invalid value 'ml.c5.xlarge'",  # a CPU type is refused first, by its own key
        ),
        ({"tuning_max_jobs": 0}, "'tuning_max_jobs' has invalid value 0: use 1-100"),
        (
            {"tuning_max_jobs": 3, "tuning_max_parallel_jobs": 4},
            "'tuning_max_parallel_jobs' has invalid value 4: must be at most tuning_max_jobs (3)",
        ),
        ({"tuning_ranges": {}}, "keep at least one range"),
        ({"tuning_ranges": {"epochs": {"type": "integer"}}}, "tune one of the algorithm's"),
        (
            {"tuning_ranges": {"momentum": {"type": "integer", "min": 0, "max": 1}}},
            'momentum is a continuous range ("type": "continuous")',
        ),
        (
            {"tuning_ranges": {"learning_rate": {"type": "continuous", "min": 0.1, "max": 0.9}}},
            "use 1e-06 <= min < max <= 0.5",
        ),
        (
            {"tuning_ranges": {"mini_batch_size": {"type": "integer", "min": 8.5, "max": 64}}},
            '"min" and "max" must be integer numbers',
        ),
        (
            {"tuning_ranges": {"optimizer": {"type": "categorical", "values": ["sgd", "lbfgs"]}}},
            'use "values": a list from',
        ),
        (
            {
                "tuning_ranges": {
                    "momentum": {"type": "continuous", "min": 0.0, "max": 0.9, "scaling": "Log"}
                }
            },
            "scaling is one of Auto, Linear, Logarithmic, ReverseLogarithmic",
        ),
        (
            {
                "tuning_ranges": {
                    "momentum": {
                        "type": "continuous",
                        "min": 0.0,
                        "max": 0.9,
                        "scaling": "Logarithmic",
                    }
                }
            },
            "Logarithmic scaling needs min > 0",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_fix(values, message):
    with pytest.raises(ConfigError, match=None) as error:
        Config(**values)
    assert message in str(error.value)


def test_more_instances_need_a_gpu_family(monkeypatch):
    from stacks import config as config_module

    # A type the GPU-family check of training_instance_type lets through is still refused.
    monkeypatch.setattr(config_module, "GPU_TRAINING_FAMILIES", ("c5",))
    with pytest.raises(ConfigError, match="more than one instance needs a GPU"):
        Config(training_instance_count=2, training_instance_type="ml.c5.xlarge")
    monkeypatch.undo()
    assert Config(training_instance_count=2, training_instance_type="ml.g5.xlarge")


def test_range_overrides_merge_per_key_from_context():
    context = {
        "tuning_ranges": '{"momentum": null, "learning_rate": {"max": 0.05}, '
        '"optimizer": {"values": ["sgd", "nag"]}}'
    }
    ranges = config_from_context(context.get).tuning_ranges
    assert "momentum" not in ranges
    assert ranges["learning_rate"] == {**DEFAULT_TUNING_RANGES["learning_rate"], "max": 0.05}
    assert ranges["optimizer"] == {"type": "categorical", "values": ["sgd", "nag"]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{bad", "use a JSON object"),
        ("[1]", "use a JSON object such as"),
        ('{"momentum": 1}', "use an object, or null"),
    ],
)
def test_unparseable_ranges_are_refused(raw, message):
    with pytest.raises(ConfigError, match=message):
        config_from_context({"tuning_ranges": raw}.get)
