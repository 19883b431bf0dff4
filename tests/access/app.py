"""The app as the access tests see it: built with a fixed account and region, resolved."""

from __future__ import annotations

import functools
from typing import Any

from aws_cdk import CfnElement, Stack
from aws_cdk.assertions import Template

from stacks.application import GroceryStacks
from tests.access.policies import AccessModel
from tests.access.templates import ACCOUNT, REGION, AppResolver
from tests.infrastructure.conftest import build_app

# Everything on: the optional test-set gate adds a Lambda, a transform task and grants.
# Both retraining triggers add a function, a rule, a schedule and their roles.
CONTEXT = {
    "account": ACCOUNT,
    "region": REGION,
    "test_accuracy_threshold": "0.5",
    "retrain_on_new_dataset": "true",
    "retrain_schedule": "cron(0 3 ? * MON *)",
}
APPROVED_JOB = "grocery-train-0123456789abcdef0123456789abcdef"
POWERTOOLS_LAYER = (
    "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:1"
)


def construct_paths(stack: Stack) -> dict[tuple[str, str], str]:
    """(stack name, logical id) -> construct path without its trailing `/Resource`."""
    paths = {}
    for element in stack.node.find_all():
        if isinstance(element, CfnElement):
            path = element.node.path.removesuffix("/Default").removesuffix("/Resource")
            paths[(stack.stack_name, stack.resolve(element.logical_id))] = path
    return paths


def _parameters(
    templates: dict[str, dict[str, Any]], paths: dict[tuple[str, str], str]
) -> dict[str, str]:
    """What SSM holds in a deployed account once a model is approved."""
    artifacts = [lid for (_, lid), path in paths.items() if path == "Grocery-Storage/Artifacts"]
    values = {
        "ReleasedModelPackageArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/"
        "grocery-classifier/3"
    }
    if artifacts:
        bucket = artifacts[0].lower()  # the resolver's bucket names (templates.py)
        values["ReleasedLabelsUri"] = f"s3://{bucket}/training-jobs/{APPROVED_JOB}/labels.json"
    for template in templates.values():
        for name in template.get("Parameters", {}):
            if name.startswith("SsmParameterValueawsservicepowertools"):
                values[name] = POWERTOOLS_LAYER
    return values


def access_model(stacks: GroceryStacks | list[Stack]) -> AccessModel:
    """Resolved policies of these stacks (all of the app, or only some without imports)."""
    chosen = stacks.all() if isinstance(stacks, GroceryStacks) else stacks
    templates, paths = {}, {}
    for stack in chosen:
        templates[stack.stack_name] = Template.from_stack(stack).to_json()
        paths.update(construct_paths(stack))
    return AccessModel(AppResolver(templates, _parameters(templates, paths)), paths)


@functools.cache
def app_model() -> AccessModel:
    """The whole app with CONTEXT, built and resolved once per process (shared by tests)."""
    return access_model(build_app(CONTEXT))
