"""Wires the stacks of the grocery classifier together. Stacks only wire constructs."""

from __future__ import annotations

import dataclasses

from aws_cdk import App, Environment, Stack, Tags

from stacks.config import Config
from stacks.names import stack_name
from stacks.storage_stack import StorageStack
from stacks.training_stack import TrainingStack


@dataclasses.dataclass
class GroceryStacks:
    storage: StorageStack
    training: TrainingStack

    def all(self) -> list[Stack]:
        return [value for value in vars(self).values() if isinstance(value, Stack)]


def build(app: App, config: Config) -> GroceryStacks:
    env = Environment(account=config.account or None, region=config.region or None)

    def name(part: str) -> dict:
        return {"stack_name": stack_name(config.prefix, part), "env": env}

    storage = StorageStack(app, "Storage", config=config, **name("Storage"))
    training = TrainingStack(app, "Training", config=config, storage=storage, **name("Training"))

    stacks = GroceryStacks(storage=storage, training=training)
    for stack in stacks.all():
        Tags.of(stack).add("project", config.prefix)
    return stacks
