"""The built-in image-classification container, per region, from the SageMaker SDK's registry.

Nothing here is typed by hand: the region -> account table is the SDK's own
`image_uri_config/image-classification.json`, read through `image_uris`.
"""

from __future__ import annotations

import functools

from aws_cdk import CfnMapping, Stack, Token
from constructs import Construct
from sagemaker.core import image_uris

ALGORITHM = "image-classification"
ALGORITHM_VERSION = "1"
_MAPPING_ID = "ImageClassificationAlgorithmImage"


@functools.cache
def image_uri_by_region() -> dict[str, str]:
    """Every region the SDK knows the algorithm in, mapped to its container URI."""
    config = image_uris.config_for_framework(ALGORITHM)
    regions = config["versions"][ALGORITHM_VERSION]["registries"]
    return {
        region: image_uris.retrieve(ALGORITHM, region, version=ALGORITHM_VERSION)
        for region in sorted(regions)
    }


def supported_regions() -> frozenset[str]:
    return frozenset(image_uri_by_region())


def algorithm_image_uri(scope: Construct) -> str:
    """The container URI for the stack's region.

    An explicit region resolves at synth; an environment-agnostic stack gets a
    CloudFormation mapping over every supported region, resolved at deploy.
    """
    stack = Stack.of(scope)
    if not Token.is_unresolved(stack.region):
        return image_uri_by_region()[stack.region]
    mapping = stack.node.try_find_child(_MAPPING_ID)
    if mapping is None:
        mapping = CfnMapping(
            stack,
            _MAPPING_ID,
            mapping={region: {"uri": uri} for region, uri in image_uri_by_region().items()},
        )
    return mapping.find_in_map(stack.region, "uri")
