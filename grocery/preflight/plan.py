"""What preflight checks for: the app's configuration, as `cdk deploy` would read it.

cdk.json's `context` plus the `-c key=value` pairs given to preflight, validated by the
app's own Config (stacks/config.py), so preflight and synth never disagree on a default.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grocery.errors import CommandError

REPO = Path(__file__).resolve().parents[2]
# CDK's default bootstrap qualifier; an app can choose another with this context key.
# https://docs.aws.amazon.com/cdk/v2/guide/bootstrapping-customizing.html
DEFAULT_QUALIFIER = "hnb659fds"
QUALIFIER_CONTEXT_KEY = "@aws-cdk/core:bootstrapQualifier"


@dataclass(frozen=True)
class Plan:
    prefix: str
    region: str  # "" = environment-agnostic: the region of the caller's credentials
    account: str  # "" = the caller's account
    training_instance_type: str
    use_spot_training: bool
    endpoint_instance_type: str
    endpoint_min_instances: int
    endpoint_max_instances: int
    transform_instance_type: str
    bootstrap_qualifier: str
    powertools_parameter: str
    algorithm_regions: frozenset[str]
    # "create": Grocery-Storage sets the account's API Gateway logging role; "existing": not.
    api_gateway_logging_role: str = "create"
    transform_instance_count: int = 1


def context_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """`["key=value", ...]` as cdk's `-c` takes them."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"-c {pair!r}: use -c KEY=VALUE, as with cdk deploy")
        overrides[key.strip()] = value
    return overrides


def read_context(cdk_json: Path) -> dict[str, Any]:
    try:
        document = json.loads(cdk_json.read_text())
    except OSError as error:
        raise CommandError(f"cannot read {cdk_json}: {error.strerror or error}") from None
    except ValueError as error:
        raise CommandError(f"{cdk_json} is not valid JSON: {error}") from None
    context = document.get("context", {}) if isinstance(document, dict) else None
    if not isinstance(context, dict):
        raise CommandError(f"{cdk_json}: 'context' must be a JSON object")
    return context


def load_plan(pairs: Sequence[str], *, cdk_json: Path = REPO / "cdk.json") -> Plan:
    context = {**read_context(cdk_json), **context_overrides(pairs)}
    # Imported here: these load aws_cdk (a few seconds), which no other command needs.
    from stacks.config import ConfigError, config_from_context
    from stacks.constructs.python_function import powertools_layer_parameter
    from stacks.image_uri import supported_regions

    try:
        config = config_from_context(context.get, context.keys())
    except ConfigError as error:
        raise CommandError(f"configuration ({cdk_json.name} context and -c): {error}") from None
    return Plan(
        prefix=config.prefix,
        region=config.region,
        account=config.account,
        training_instance_type=config.training_instance_type,
        use_spot_training=config.use_spot_training,
        endpoint_instance_type=config.endpoint_instance_type,
        endpoint_min_instances=config.endpoint_min_instances,
        endpoint_max_instances=config.endpoint_max_instances,
        transform_instance_type=config.transform_instance_type,
        bootstrap_qualifier=str(context.get(QUALIFIER_CONTEXT_KEY) or DEFAULT_QUALIFIER),
        powertools_parameter=powertools_layer_parameter(),
        algorithm_regions=supported_regions(),
        api_gateway_logging_role=config.api_gateway_logging_role,
        transform_instance_count=config.transform_instance_count,
    )
