"""Command-line values checked locally, by the same rules as the app's configuration."""

from __future__ import annotations

import argparse

import pytest

from grocery.arguments import prefix
from stacks.config import Config, ConfigError

CANDIDATES = ["grocery", "shop-2", "ab", "a" * 20, "a" * 21, "x", "Shop", "1shop", "bad prefix"]


@pytest.mark.parametrize("candidate", CANDIDATES)
def test_prefix_rule_is_the_configs(candidate):
    try:
        Config(prefix=candidate)
        config_accepts = True
    except ConfigError:
        config_accepts = False
    try:
        prefix(candidate)
        cli_accepts = True
    except argparse.ArgumentTypeError:
        cli_accepts = False
    assert cli_accepts is config_accepts
