"""Every ARN the templates build names the partition through AWS::Partition, never "aws"."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from tests.infrastructure.conftest import build_app


@pytest.mark.parametrize("part", ["storage", "training", "serving", "batch", "monitoring"])
def test_no_hard_coded_partition(stacks, part):
    text = json.dumps(Template.from_stack(getattr(stacks, part)).to_json())
    assert "arn:aws:" not in text


def test_state_machine_task_resources_use_the_partition(stacks):
    definition = json.dumps(
        Template.from_stack(stacks.training).find_resources("AWS::StepFunctions::StateMachine")
    )
    assert ":states:::sagemaker:createTrainingJob.sync" in definition
    assert '"arn:aws:states' not in definition


def test_a_region_of_another_partition_is_refused_at_synth():
    with pytest.raises(ValueError, match="only the commercial 'aws' partition"):
        build_app({"region": "cn-north-1"})
