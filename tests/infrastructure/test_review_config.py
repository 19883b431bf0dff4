"""Config keys of the review loop: defaults, parsing from context, clear errors."""

from __future__ import annotations

import pytest

from stacks.config import Config, ConfigError, config_from_context


def _load(**context):
    return config_from_context(context.get)


def test_defaults():
    config = Config()
    assert (config.review_threshold, config.review_keep_api_images) == (0.6, True)
    assert config.review_image_retention_days == 30


def test_values_from_dash_c_are_parsed():
    config = _load(
        review_threshold="0.45", review_keep_api_images="false", review_image_retention_days="7"
    )
    assert (config.review_threshold, config.review_keep_api_images) == (0.45, False)
    assert config.review_image_retention_days == 7


def test_threshold_one_is_allowed():
    assert _load(review_threshold=1).review_threshold == 1.0


@pytest.mark.parametrize(
    ("context", "key"),
    [
        ({"review_threshold": "0"}, "review_threshold"),
        ({"review_threshold": "1.2"}, "review_threshold"),
        ({"review_threshold": "unsure"}, "review_threshold"),
        ({"review_keep_api_images": "perhaps"}, "review_keep_api_images"),
        ({"review_image_retention_days": "0"}, "review_image_retention_days"),
        ({"review_image_retention_days": "2.5"}, "review_image_retention_days"),
    ],
)
def test_invalid_values_name_the_key(context, key):
    with pytest.raises(ConfigError, match=f"config key '{key}' has invalid value"):
        _load(**context)


def test_misspelt_key_names_the_nearest_one():
    with pytest.raises(ConfigError, match="did you mean 'review_threshold'"):
        config_from_context({}.get, ["review_treshold"])
