"""Builds the whole app once per test session (synth takes seconds)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.application import GroceryStacks, build
from stacks.config import Config, config_from_context

CDK_JSON_CONTEXT = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"]


def build_app(context: dict[str, Any] | None = None) -> GroceryStacks:
    """The app as `cdk synth -c key=value ...` would build it (cdk.json context included).

    Built once per context and process: a build takes seconds, and several test modules
    ask for the same one. Tests only read the stacks (templates, cdk-nag reports).
    """
    return _build_once(json.dumps(context or {}, sort_keys=True))


@functools.cache
def _build_once(context_json: str) -> GroceryStacks:
    app = App(context={**CDK_JSON_CONTEXT, **json.loads(context_json)})
    return build(app, config_from_context(app.node.try_get_context, app.node.get_all_context()))


@pytest.fixture(scope="session")
def stacks() -> GroceryStacks:
    return build_app()


@pytest.fixture(scope="session")
def template_of(stacks: GroceryStacks) -> Callable[[str], Template]:
    """`template_of("storage")` -> the Template of that stack (cached)."""
    cache: dict[str, Template] = {}

    def get(name: str) -> Template:
        if name not in cache:
            cache[name] = Template.from_stack(getattr(stacks, name))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def default_config() -> Config:
    return Config()
