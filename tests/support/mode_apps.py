"""The app built once per serving_mode for the release tests (CDK assertions and e2e).

Building and synthesizing an app takes seconds: the release CDK tests and the per-mode
release e2e tests share one build per mode.
"""

from __future__ import annotations

import functools

from stacks.application import GroceryStacks
from tests.infrastructure.conftest import build_app


@functools.cache
def mode_app(mode: str) -> GroceryStacks:
    """`cdk synth -c serving_mode=<mode>` (cdk.json context otherwise)."""
    return build_app({"serving_mode": mode})
