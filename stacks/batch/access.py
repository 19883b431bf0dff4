"""Helpers of the batch constructs: prefix-scoped S3 grants and narrow, reasoned static-analysis acknowledgments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnElement, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from stacks.constructs.acknowledge import acknowledge_nag, skip_checkov
from stacks.constructs.nag_findings import imported_attribute


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


def nag_resources(scope: IConstruct, arn: str) -> set[str]:
    """The names cdk-nag gives an ARN in an IAM5 finding (see stacks/constructs/nag_findings.py).

    A GetAtt of this stack shows as `<Logical.Attr>`; one of another stack shows that
    way before synthesis and as the export it is imported from during `cdk synth`.
    """
    stack = Stack.of(scope)
    resolved = stack.resolve(arn)
    return {_render(resolved, stack, spelling) for spelling in (0, 1)}


def _render(value: Any, stack: Stack, spelling: int) -> str:
    if isinstance(value, str):
        return value
    (name, argument), *_ = value.items()
    if name == "Fn::Join":
        separator, parts = argument
        return separator.join(_render(part, stack, spelling) for part in parts)
    if name == "Ref":
        return f"<{argument}>"
    if name == "Fn::GetAtt":
        logical_id, attribute = argument
        producer = _producer_of(stack, logical_id)
        if producer is None:
            return f"<{logical_id}.{attribute}>"
        return imported_attribute(producer, attribute)[spelling]
    raise ValueError(f"cannot name {value!r} as cdk-nag does")


def _producer_of(stack: Stack, logical_id: str) -> IConstruct | None:
    """The construct of another stack whose resource has this logical id (None: this stack)."""
    for candidate in stack.node.root.node.children:
        if not isinstance(candidate, Stack):
            continue
        for element in candidate.node.find_all():
            if (
                isinstance(element, CfnElement)
                and candidate.resolve(element.logical_id) == logical_id
            ):
                return None if candidate is stack else element.node.scope
    raise ValueError(f"no stack of the app defines {logical_id}")


def acknowledge_wildcards(policy: IConstruct, findings: dict[str, str]) -> None:
    """One IAM5 acknowledgment per wildcard resource: {ARN (token or text): reason}."""
    for arn, reason in findings.items():
        for resource in sorted(nag_resources(policy, arn)):
            acknowledge_nag(policy, f"AwsSolutions-IAM5[Resource::{resource}]", reason)


def skip_lambda_checks(function: IConstruct, *, invoked_by: str, bounded_by: str) -> None:
    """The three checkov Lambda checks that do not fit a function invoked synchronously."""
    skip_checkov(
        function,
        "CKV_AWS_115",
        f"No reserved concurrency (accounts start with a quota of 10, the floor Lambda keeps "
        f"unreserved): {bounded_by}.",
    )
    skip_checkov(
        function,
        "CKV_AWS_116",
        f"Invoked synchronously by {invoked_by}: failures return there (a Lambda DLQ only "
        "receives asynchronous invocations).",
    )
    skip_checkov(
        function,
        "CKV_AWS_117",
        "Calls only AWS APIs (S3, Step Functions) over TLS with IAM; a VPC would add NAT or "
        "endpoint costs and no control.",
    )
