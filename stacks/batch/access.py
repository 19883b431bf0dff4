"""Least-privilege S3 statements for the batch roles: named actions on named prefixes."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnElement, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from stacks.constructs.acknowledge import acknowledge_nag


def grant_objects(
    role: iam.IRole, bucket: s3.IBucket, actions: Sequence[str], prefixes: Sequence[str]
) -> None:
    """`actions` on the objects under each prefix (e.g. "incoming/") of `bucket`."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions),
            resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
        )
    )


def grant_list(role: iam.IRole, bucket: s3.IBucket) -> None:
    """s3:ListBucket, so that a missing object reads as 404 (deleted), not 403."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
    )


def nag_resource(scope: IConstruct, arn: str) -> str:
    """An ARN as cdk-nag names it in an IAM5 finding.

    cdk-nag reads the synthesized template: a GetAtt of this stack shows as
    `<Logical.Attr>`, one of another stack as the export CDK creates for it
    (`Grocery-Storage:ExportsOutputFnGetAtt...Arn1A2B3C4D`). References are
    resolved only at synthesis, so the export name is derived here the way CDK
    derives it (core/lib/private/refs.ts + uniqueid.ts).
    """
    stack = Stack.of(scope)
    return _render(stack.resolve(arn), stack)


def _render(value: Any, stack: Stack) -> str:
    if isinstance(value, str):
        return value
    (name, argument), *_ = value.items()
    if name == "Fn::Join":
        separator, parts = argument
        return separator.join(_render(part, stack) for part in parts)
    if name == "Ref":
        return f"<{argument}>"
    if name == "Fn::GetAtt":
        owner = _owner_of(stack, argument[0])
        if owner is stack:
            return f"<{'.'.join(argument)}>"
        reference = "Output" + json.dumps(value, separators=(",", ":"))
        digest = hashlib.md5(f"Exports/{reference}".encode()).hexdigest()[:8].upper()
        return f"{owner.stack_name}:Exports{re.sub('[^A-Za-z0-9]', '', reference)}{digest}"
    raise ValueError(f"cannot name {value!r} as cdk-nag does")


def _owner_of(stack: Stack, logical_id: str) -> Stack:
    for candidate in stack.node.root.node.children:
        if isinstance(candidate, Stack):
            for element in candidate.node.find_all():
                if isinstance(element, CfnElement) and (
                    candidate.resolve(element.logical_id) == logical_id
                ):
                    return candidate
    raise ValueError(f"no stack of the app defines {logical_id}")


def acknowledge_wildcards(policy: IConstruct, findings: dict[str, str]) -> None:
    """One IAM5 acknowledgment per wildcard resource: {ARN (token or text): reason}."""
    for arn, reason in findings.items():
        acknowledge_nag(policy, f"AwsSolutions-IAM5[Resource::{nag_resource(policy, arn)}]", reason)
