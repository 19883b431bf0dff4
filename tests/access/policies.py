"""The concrete policies of the deployed app: who may do what, and what each resource allows.

Built from the resolved templates (tests/access/templates.py):
- identity policies of every role: its inline `Policies` and each `AWS::IAM::Policy`
  attached to it (from any stack);
- resource policies by ARN: SNS topic policies, SQS queue policies, S3 bucket policies
  (applied to the bucket and its objects), KMS key policies, Lambda permissions (one
  statement each) and role trust policies (for sts:AssumeRole).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from tests.access.templates import ACCOUNT, PARTITION, REGION, UNRESOLVED, AppResolver

SESSION = "access-test"


@dataclasses.dataclass
class Role:
    name: str
    arn: str
    path: str
    policies: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    managed: list[str] = dataclasses.field(default_factory=list)

    @property
    def session_arn(self) -> str:
        """The principal of its calls: an assumed-role session, as at run time."""
        return f"arn:{PARTITION}:sts::{ACCOUNT}:assumed-role/{self.name}/{SESSION}"


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _document(statements: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


class AccessModel:
    """Roles (by construct path and by name) and resource policies (by ARN) of the whole app."""

    def __init__(self, resolver: AppResolver, paths: Mapping[tuple[str, str], str]) -> None:
        """`paths`: (stack name, logical id) -> construct path (without `/Resource`)."""
        self.resolver = resolver
        self.paths = paths
        self.by_path: dict[str, tuple[str, str]] = {path: key for key, path in paths.items()}
        self.roles: dict[str, Role] = {}
        self._resource_statements: dict[str, list[dict[str, Any]]] = {}
        self._collect()

    # --- lookups -----------------------------------------------------------------------------

    def logical(self, path: str) -> tuple[str, str]:
        if path not in self.by_path:
            raise KeyError(
                f"no construct at {path!r} (a construct path, e.g. Grocery-Batch/Intake/Queue)"
            )
        return self.by_path[path]

    def resource(self, path: str) -> dict[str, Any]:
        stack, logical_id = self.logical(path)
        return self.resolver.stacks[stack].resources[logical_id]

    def ref(self, path: str) -> str:
        stack, logical_id = self.logical(path)
        return self.resolver.stacks[stack].refs[logical_id]

    def attribute(self, path: str, attribute: str) -> str:
        stack, logical_id = self.logical(path)
        return self.resolver.stacks[stack].attributes[logical_id][attribute]

    def arn(self, path: str) -> str:
        stack, logical_id = self.logical(path)
        attributes = self.resolver.stacks[stack].attributes[logical_id]
        for name in ("Arn", "TopicArn"):
            if name in attributes:
                return attributes[name]
        ref = self.resolver.stacks[stack].refs[logical_id]
        if ref.startswith("arn:"):
            return ref
        raise KeyError(f"{path} has no ARN")

    def role(self, path: str) -> Role:
        for role in self.roles.values():
            if role.path == path:
                return role
        raise KeyError(f"no role at {path!r}")

    def role_named(self, name: str) -> Role:
        return self.roles[name]

    def resource_policy(self, arn: str) -> dict[str, Any] | None:
        """The policy that guards `arn` (an S3 object is guarded by its bucket's policy)."""
        candidates = [arn]
        if arn.startswith(f"arn:{PARTITION}:s3:::") and "/" in arn:
            candidates.append(arn.split("/", 1)[0])
        if arn.startswith(f"arn:{PARTITION}:lambda:") and arn.count(":") == 7:
            candidates.append(arn.rsplit(":", 1)[0])  # a version or alias of the function
        statements = [s for c in candidates for s in self._resource_statements.get(c, [])]
        return _document(statements) if statements else None

    def resources_of_type(self, type_name: str) -> Iterable[tuple[str, str, dict[str, Any]]]:
        """(stack, logical id, resolved resource) of every resource of that type."""
        for stack in self.resolver.stacks.values():
            for logical_id, resource in stack.resources.items():
                if resource["Type"] == type_name:
                    yield stack.name, logical_id, resource

    # --- collection --------------------------------------------------------------------------

    def _collect(self) -> None:
        for stack, logical_id, resource in self.resources_of_type("AWS::IAM::Role"):
            props = resource["Properties"]
            attributes = self.resolver.stacks[stack].attributes[logical_id]
            name = self.resolver.stacks[stack].refs[logical_id]
            if name in self.roles:
                raise ValueError(f"two roles resolve to the name {name}")
            role = Role(
                name=name,
                arn=attributes["Arn"],
                path=self.paths.get((stack, logical_id), f"{stack}/{logical_id}"),
                policies=[p["PolicyDocument"] for p in props.get("Policies", [])],
                managed=list(props.get("ManagedPolicyArns", [])),
            )
            self.roles[name] = role
            self._add(role.arn, props["AssumeRolePolicyDocument"])
        for _, _, resource in self.resources_of_type("AWS::IAM::Policy"):
            props = resource["Properties"]
            for role_name in props.get("Roles", []):
                self.roles[role_name].policies.append(props["PolicyDocument"])
        for _, _, resource in self.resources_of_type("AWS::SNS::TopicPolicy"):
            for topic in resource["Properties"]["Topics"]:
                self._add(topic, resource["Properties"]["PolicyDocument"])
        for _, _, resource in self.resources_of_type("AWS::SQS::QueuePolicy"):
            for url in resource["Properties"]["Queues"]:
                self._add(self._queue_arn(url), resource["Properties"]["PolicyDocument"])
        for _, _, resource in self.resources_of_type("AWS::S3::BucketPolicy"):
            bucket = resource["Properties"]["Bucket"]
            self._add(f"arn:{PARTITION}:s3:::{bucket}", resource["Properties"]["PolicyDocument"])
        for stack, logical_id, resource in self.resources_of_type("AWS::KMS::Key"):
            arn = self.resolver.stacks[stack].attributes[logical_id]["Arn"]
            self._add(arn, resource["Properties"]["KeyPolicy"])
        for _, logical_id, resource in self.resources_of_type("AWS::Lambda::Permission"):
            statement, function_arn = self._permission_statement(logical_id, resource["Properties"])
            self._add(function_arn, _document([statement]))

    def _add(self, arn: str, document: Mapping[str, Any]) -> None:
        self._resource_statements.setdefault(arn, []).extend(_statements(document))

    @staticmethod
    def _queue_arn(url: str) -> str:
        _, _, host, account, name = url.split("/")
        region = host.split(".")[1]
        return f"arn:{PARTITION}:sqs:{region}:{account}:{name}"

    def _function_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name_or_arn}"

    def _permission_statement(
        self, logical_id: str, props: Mapping[str, Any]
    ) -> tuple[dict[str, Any], str]:
        """AWS::Lambda::Permission as the function policy statement Lambda stores for it."""
        function_arn = self._function_arn(props["FunctionName"])
        principal = props["Principal"]
        key = "Service" if principal.endswith(".amazonaws.com") else "AWS"
        condition: dict[str, dict[str, str]] = {}
        if "SourceArn" in props:
            condition["ArnLike"] = {"aws:SourceArn": props["SourceArn"]}
        if "SourceAccount" in props:
            condition["StringEquals"] = {"aws:SourceAccount": props["SourceAccount"]}
        statement = {
            "Sid": logical_id,
            "Effect": "Allow",
            "Principal": {key: principal},
            "Action": props["Action"],
            "Resource": function_arn,
            **({"Condition": condition} if condition else {}),
        }
        return statement, function_arn


def unresolved_markers(document: Any) -> list[str]:
    """Every `<unresolved:...>` marker in a policy: the resolver must learn that attribute."""
    text = json.dumps(document)
    markers = []
    start = text.find(UNRESOLVED)
    while start != -1:
        end = text.find(">", start)
        markers.append(text[start : end + 1])
        start = text.find(UNRESOLVED, end)
    return markers
