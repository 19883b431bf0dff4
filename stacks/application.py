"""Wires the stacks of the grocery classifier together. Stacks only wire constructs."""

from __future__ import annotations

import dataclasses

from aws_cdk import App, Environment, Stack, Tags

from stacks.batch_stack import BatchStack
from stacks.config import Config
from stacks.monitoring_stack import MonitoringStack
from stacks.names import stack_name
from stacks.release_stack import ReleaseStack
from stacks.serving.names import VARIANT_NAME
from stacks.serving_stack import ServingStack
from stacks.storage_stack import StorageStack
from stacks.training.names import job_name_prefix
from stacks.training_stack import TrainingStack


@dataclasses.dataclass
class GroceryStacks:
    storage: StorageStack
    training: TrainingStack
    serving: ServingStack
    batch: BatchStack
    monitoring: MonitoringStack
    release: ReleaseStack

    def all(self) -> list[Stack]:
        return [value for value in vars(self).values() if isinstance(value, Stack)]


def build(app: App, config: Config) -> GroceryStacks:
    env = Environment(account=config.account or None, region=config.region or None)

    def name(part: str) -> dict:
        # The construct id is the CloudFormation name too: `cdk deploy Grocery-Serving`
        # selects by construct id, and users only ever see the CloudFormation name.
        full_name = stack_name(config.prefix, part)
        return {"construct_id": full_name, "stack_name": full_name, "env": env}

    storage = StorageStack(app, config=config, **name("Storage"))
    training = TrainingStack(app, config=config, storage=storage, **name("Training"))

    serving = ServingStack(
        app,
        config=config,
        storage=storage,
        model_role=training.model_role,
        **name("Serving"),
    )
    # The training stack creates the approved-model parameters the serving stack reads.
    serving.add_stack_dependency(training)

    batch = BatchStack(
        app,
        config=config,
        key=storage.key,
        inference_bucket=storage.inference,
        label_buckets=[storage.artifacts],
        topic=storage.topic,
        model_role=training.model_role,
        **name("Batch"),
    )
    # The training stack creates the approved-model parameters the batch state machine reads.
    batch.add_stack_dependency(training)

    # One dashboard over the other stacks; it only reads their names and ARNs.
    monitoring = MonitoringStack(
        app,
        config=config,
        watched=[training, serving, batch],
        training_state_machine=training.state_machine,
        training_job_prefix=job_name_prefix(config.prefix),
        endpoint_name=serving.endpoint_name,
        endpoint_variant_name=VARIANT_NAME,
        batch_state_machine=batch.state_machine,
        queue=batch.queue,
        dead_letter_queue=batch.dead_letter_queue,
        key=storage.key,
        topic=storage.topic,
        artifacts=storage.artifacts,
        training_data=storage.training_data,
        **name("Monitoring"),
    )

    # Approval releases: updates the serving stack (so deployed after it) through its own
    # CloudFormation service role; reads the training stack's group and records.
    release = ReleaseStack(
        app,
        config=config,
        storage=storage,
        serving=serving,
        model_role=training.model_role,
        **name("Release"),
    )
    release.add_stack_dependency(serving)
    release.add_stack_dependency(training)

    stacks = GroceryStacks(
        storage=storage,
        training=training,
        serving=serving,
        batch=batch,
        monitoring=monitoring,
        release=release,
    )
    for stack in stacks.all():
        Tags.of(stack).add("project", config.prefix)
    return stacks
