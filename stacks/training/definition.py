"""The training pipeline's state machine definition (JSONPath ASL, built with CDK states).

Execution input (see docs/training.md):

    {"dataset": "datasets/grocery/",              # key prefix in the training-data bucket
     "hyperparameters": {"epochs": "10"},         # optional, strings, merged onto the config
     "instance_type": "ml.g4dn.xlarge",           # optional, defaults to the config
     "initial_model": {"version": "3", "model_data": "s3://..."},  # optional: incremental
     "tuning": {"max_jobs": 12, "max_parallel_jobs": 2}}  # optional: a tuning run

One module per stage, chained here from the end backwards:

    inputs.py    check input, read and check manifest.json / labels.json, hyperparameters
    job.py       the training job definition (shared with tuning) and the "Train" state
    tuning.py    or a hyperparameter tuning job, whose best training job goes on
    gate.py      validation:accuracy gate; the optional test-set gate
    register.py  labels beside the artifact, metrics.json, the model package version
    notify.py    success and failure notifications, the one Fail state

Only an approval releases a version: the release workflow (stacks/release) moves the
approved-model SSM parameters that batch reads, never this pipeline. Every failure is
caught, notified (with its cause) and ends in one Fail state.

Only SDK integrations, no Lambda (except the optional test-set scorer): every step is
visible in the console and runs as-is in moto (tests/e2e). JSONPath rather than JSONata
because moto executes JSONPath only.
"""

from __future__ import annotations

from constructs import Construct

from stacks.config import Config
from stacks.training import gate, inputs, job, notify, register, tuning
from stacks.training.common import Resources, Stage

__all__ = ["Resources", "TrainingDefinition"]


class TrainingDefinition(Construct):
    """Builds the chain; `self.start` is the first state."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, res: Resources
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.res = res
        failure = notify.failure_path(self, config, res.topic)
        stage = Stage(scope=self, config=config, res=res, notify_failure=failure)
        self.notify_failure = failure

        registered = register.Registration(stage, "Registry").chain.next(
            notify.success_path(self, config, res.topic)
        )
        if config.test_accuracy_threshold > 0:
            registered = gate.evaluation_gate(stage, registered)
        passed = register.prepare(stage, registered)
        gated = gate.accuracy_gate(stage, passed)
        trained = tuning.train_or_tune(stage, job.train(stage, gated), gated)
        self.start = inputs.input_checks(stage, job.choose_resources(stage, trained))
