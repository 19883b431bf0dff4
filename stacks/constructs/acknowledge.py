"""Narrow, reasoned acknowledgments of static-analysis findings: one resource, one finding."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct


def acknowledge_nag(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledges one cdk-nag finding (e.g. `AwsSolutions-IAM5[Resource::*]`) on one construct."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Skips one checkov check on one CloudFormation resource, with the reason in its metadata."""
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    skips = resource.get_metadata("checkov") or {"skip": []}
    skips["skip"].append({"id": check_id, "comment": reason})
    resource.add_metadata("checkov", skips)
