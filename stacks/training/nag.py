"""cdk-nag finding ids for resources that live in another stack.

cdk-nag prints a cross-stack ARN as the name of the CloudFormation export it is imported
from (`Grocery-Storage:ExportsOutputFnGetAtt<LogicalId>Arn<hash>`). CDK derives that name
deterministically (aws-cdk-lib core/lib/private/refs.ts, generateExportName + makeUniqueId);
this module derives it the same way, so acknowledgments name the exact resource pattern
instead of widening to a rule. tests/infrastructure/test_static_analysis.py fails if CDK
ever names exports differently.
"""

from __future__ import annotations

import hashlib
import json

from aws_cdk import Stack
from constructs import IConstruct


def imported_attribute(construct: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag shows `Fn::GetAtt [construct, attribute]` imported into another stack."""
    producer = Stack.of(construct)
    logical_id = producer.resolve(producer.get_logical_id(construct.node.default_child))
    reference = json.dumps({"Fn::GetAtt": [logical_id, attribute]}, separators=(",", ":"))
    output_id = f"Output{reference}"
    digest = hashlib.md5(f"Exports/{output_id}".encode(), usedforsecurity=False)
    human = "Exports" + "".join(ch for ch in output_id if ch.isalnum())
    return f"{producer.stack_name}:{human}{digest.hexdigest()[:8].upper()}"


def iam5_resource(resource: str) -> str:
    return f"AwsSolutions-IAM5[Resource::{resource}]"
