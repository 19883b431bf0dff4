"""cdk-nag finding ids for resources that live in another stack (used by training and batch).

cdk-nag prints a cross-stack ARN in one of two ways: `<LogicalId.Arn>` when a stack is
checked before synthesis (`validate_scope` in tests), and the name of the CloudFormation
export it is imported from (`Grocery-Storage:ExportsOutputFnGetAtt<LogicalId>Arn<hash>`)
during `cdk synth`, once references are resolved. Acknowledgments name both. CDK derives that name
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


def imported_attribute(construct: IConstruct, attribute: str = "Arn") -> tuple[str, str]:
    """How cdk-nag shows `Fn::GetAtt [construct, attribute]` imported into another stack.

    (before synthesis, during synthesis).
    """
    producer = Stack.of(construct)
    logical_id = producer.resolve(producer.get_logical_id(construct.node.default_child))
    reference = json.dumps({"Fn::GetAtt": [logical_id, attribute]}, separators=(",", ":"))
    output_id = f"Output{reference}"
    digest = hashlib.md5(f"Exports/{output_id}".encode(), usedforsecurity=False)
    human = "Exports" + "".join(ch for ch in output_id if ch.isalnum())
    export = f"{producer.stack_name}:{human}{digest.hexdigest()[:8].upper()}"
    return f"<{logical_id}.{attribute}>", export


def iam5_resource(resource: str) -> str:
    return f"AwsSolutions-IAM5[Resource::{resource}]"


def iam5_findings(resource: str, imported: IConstruct | None = None) -> list[str]:
    """The IAM5 finding ids of `resource`; "{}" in it stands for `imported`'s ARN."""
    if imported is None:
        return [iam5_resource(resource)]
    return [iam5_resource(resource.format(spelling)) for spelling in imported_attribute(imported)]
