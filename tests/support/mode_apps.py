"""The app built once per serving_mode for the release tests (CDK assertions and e2e).

Building and synthesizing an app takes seconds: the release CDK tests and the per-mode
release e2e tests share one build per mode.
"""

from __future__ import annotations

import functools

from stacks.application import GroceryStacks
from stacks.config import Config, config_from_context
from tests.infrastructure.conftest import CDK_JSON_CONTEXT, build_app

# The context of each mode's build; tests/infrastructure/test_serving_modes.py asserts on
# these values too, so one build per mode serves all three test modules.
MODE_CONTEXTS: dict[str, dict[str, str]] = {
    "realtime": {"serving_mode": "realtime"},
    # The budget is independent of the mode: tested with this app (one build fewer).
    "serverless": {
        "serving_mode": "serverless",
        "serverless_memory_mb": "2048",
        "monthly_budget_usd": "150",
    },
    "async": {"serving_mode": "async", "endpoint_max_instances": "3"},
}


@functools.cache
def mode_app(mode: str) -> GroceryStacks:
    """`cdk synth -c serving_mode=<mode> ...` (MODE_CONTEXTS; cdk.json context otherwise)."""
    return build_app(MODE_CONTEXTS[mode])


def mode_config(mode: str) -> Config:
    """The Config of `mode_app(mode)` (for fakes that must build what its templates declare)."""
    context = {**CDK_JSON_CONTEXT, **MODE_CONTEXTS[mode]}
    return config_from_context(context.get, context.keys())
