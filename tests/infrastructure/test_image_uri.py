"""The algorithm's container comes from the SageMaker SDK's registry, per region."""

from __future__ import annotations

from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template

from stacks.image_uri import algorithm_image_uri, image_uri_by_region


def test_known_accounts_from_the_sdk_registry():
    uris = image_uri_by_region()
    assert (
        uris["us-east-1"] == "811284229777.dkr.ecr.us-east-1.amazonaws.com/image-classification:1"
    )
    assert (
        uris["eu-west-1"] == "685385470294.dkr.ecr.eu-west-1.amazonaws.com/image-classification:1"
    )
    assert uris["cn-north-1"].endswith(".amazonaws.com.cn/image-classification:1")
    assert len(uris) >= 30


def test_environment_agnostic_stack_gets_one_mapping_over_all_regions():
    stack = Stack(App(), "Agnostic")
    first = algorithm_image_uri(stack)
    second = algorithm_image_uri(stack)
    mappings = Template.from_stack(stack).to_json()["Mappings"]["ImageClassificationAlgorithmImage"]
    assert stack.resolve(first) == stack.resolve(second)
    assert stack.resolve(first) == {
        "Fn::FindInMap": ["ImageClassificationAlgorithmImage", {"Ref": "AWS::Region"}, "uri"]
    }
    assert mappings == {region: {"uri": uri} for region, uri in image_uri_by_region().items()}


def test_explicit_region_resolves_at_synth():
    stack = Stack(App(), "Pinned", env=Environment(region="eu-west-1"))
    assert algorithm_image_uri(stack) == image_uri_by_region()["eu-west-1"]
    assert stack.node.try_find_child("ImageClassificationAlgorithmImage") is None
