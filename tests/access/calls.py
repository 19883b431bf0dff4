"""Calls the deployed system makes (listed in calls.yaml or derived), as evaluator requests.

A call names who makes it, the IAM action, the resource ARN and the request context
AWS adds. In calls.yaml, `${<construct path>}` stands for that resource's ARN,
`${<construct path>.ref}` for its Ref (a bucket's name, a queue's URL) and
`${<construct path>.<Attribute>}` for an attribute; `${account}` and `${region}` too.

`who` is a role's construct path (e.g. `Grocery-Batch/Intake/Trigger/Role`),
`service:<principal>` (e.g. `service:cloudwatch.amazonaws.com`) or `account:<id>`: a
principal of another account whose own account lets it do anything (so only this app's
resource policies can stop it).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.access.policies import AccessModel
from tests.access.templates import ACCOUNT, PARTITION, REGION

CALLS_FILE = Path(__file__).with_name("calls.yaml")
ALLOWED, DENIED = "Allowed", "Denied"
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclasses.dataclass(frozen=True)
class Call:
    id: str
    who: str
    action: str
    resource: str
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    expect: str = ALLOWED
    why: str = ""

    def __post_init__(self) -> None:
        if self.expect not in (ALLOWED, DENIED):
            raise ValueError(f"{self.id}: expect must be {ALLOWED} or {DENIED}")


def render(text: str, model: AccessModel) -> str:
    """Replaces every `${...}` placeholder (see the module docstring)."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        fixed = {"account": ACCOUNT, "region": REGION, "partition": PARTITION}
        if name in fixed:
            return fixed[name]
        path, _, attribute = name.partition(".")
        if not attribute:
            return model.arn(path)
        if attribute == "ref":
            return model.ref(path)
        return model.attribute(path, attribute)

    return _PLACEHOLDER.sub(replace, text)


def _render_value(value: Any, model: AccessModel) -> Any:
    if isinstance(value, str):
        return render(value, model)
    if isinstance(value, list):
        return [_render_value(item, model) for item in value]
    return value


def load_document(path: Path = CALLS_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def applies(entry: Mapping[str, Any], config: Mapping[str, str]) -> bool:
    """An entry with `only_with: {key: value}` (e.g. serving_mode: async) is a call of
    deployments built with that config only (tests/infrastructure/test_serving_modes.py)."""
    return all(str(config.get(k)) == str(v) for k, v in (entry.get("only_with") or {}).items())


def listed_calls(
    document: Mapping[str, Any], model: AccessModel, config: Mapping[str, str] | None = None
) -> list[Call]:
    """Every call of calls.yaml's `calls:` and `denied:` sections that applies to a
    deployment built with `config` (the default app: {}), placeholders rendered."""
    calls = []
    for section, expect in (("calls", ALLOWED), ("denied", DENIED)):
        for entry in document.get(section, []):
            if not applies(entry, config or {}):
                continue
            calls.append(
                Call(
                    id=entry["id"],
                    who=entry["who"],
                    action=entry["action"],
                    resource=render(entry["resource"], model),
                    context={
                        key: _render_value(value, model)
                        for key, value in (entry.get("context") or {}).items()
                    },
                    expect=expect,
                    why=entry.get("why", ""),
                )
            )
    return calls


def _resource_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else ACCOUNT


class PolicyTable:
    """Each distinct policy document once, by id: the evaluator's input stays small."""

    def __init__(self) -> None:
        self.documents: dict[str, Mapping[str, Any]] = {}
        self._ids: dict[str, str] = {}

    def add(self, document: Mapping[str, Any]) -> str:
        key = json.dumps(document, sort_keys=True)
        if key not in self._ids:
            self._ids[key] = f"p{len(self._ids)}"
            self.documents[self._ids[key]] = document
        return self._ids[key]


def request_for(call: Call, model: AccessModel, table: PolicyTable) -> dict[str, Any]:
    """The evaluator's request for one call (see simulate.mjs)."""
    identity: list[Mapping[str, Any]]
    if call.who.startswith("service:"):
        principal, identity = call.who.removeprefix("service:"), []
    elif call.who.startswith("account:"):
        account = call.who.removeprefix("account:")
        principal = f"arn:{PARTITION}:sts::{account}:assumed-role/Outsider/{account}"
        identity = [_ALLOW_ALL]
    else:
        role = model.role(call.who)
        if role.managed:
            raise ValueError(f"{role.path} has managed policies {role.managed}: not evaluable")
        principal, identity = role.session_arn, role.policies
    context = {"aws:SecureTransport": "true", **call.context}
    if call.action.startswith("s3:"):
        context.setdefault("s3:TlsVersion", "1.3")
    resource_policy = model.resource_policy(call.resource)
    return {
        "id": call.id,
        "principal": principal,
        "action": call.action,
        "resource": call.resource,
        "resourceAccount": _resource_account(call.resource),
        "context": context,
        "identityPolicies": [table.add(document) for document in identity],
        "resourcePolicy": table.add(resource_policy) if resource_policy else None,
    }
