"""CloudFormation DependsOn that cfn-lint accepts (no W3005) and IAM ordering still needs."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import IConstruct


def depend_on_policy_only(resource: IConstruct, role: iam.IRole) -> None:
    """Makes `resource` (a Lambda function, a state machine) depend on its role's policy only.

    CDK adds a DependsOn on the role too, but the resource already names the role by GetAtt
    (cfn-lint W3005: redundant). The DependsOn on the role's default policy stays: its
    permissions must exist before the first invocation or execution. This replaces the
    whole DependsOn list, so call it for resources with no other dependency.
    """
    policy = role.node.find_child("DefaultPolicy").node.default_child
    cfn = resource if resource.node.default_child is None else resource.node.default_child
    cfn.add_override("DependsOn", [Stack.of(resource).get_logical_id(policy)])
