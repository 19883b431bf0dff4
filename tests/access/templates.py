"""Synthesized templates -> concrete values: every intrinsic resolved as CloudFormation would.

Each resource gets a deterministic physical name (its logical id, or the name its
properties set), and Ref / Fn::GetAtt / Fn::Join / Fn::Sub / Fn::Select / Fn::Split /
Fn::If / Fn::ImportValue resolve against those. Parameters take the values a deployed
account would hold (SSM lookups included); conditions are evaluated and resources whose
condition is false are dropped. A Ref this module cannot resolve raises; an attribute it
does not model becomes a visible `<unresolved:...>` marker, which fails any policy using it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

ACCOUNT = "111122223333"
REGION = "us-east-1"
PARTITION = "aws"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


# Marks an attribute the resolver does not model; a policy holding one fails its test.
UNRESOLVED = "<unresolved:"


class UnresolvedError(ValueError):
    """An intrinsic or attribute the resolver does not know: teach it, do not guess."""


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def _name(props: Mapping[str, Any], key: str, logical_id: str) -> str:
    value = props.get(key)
    return value if isinstance(value, str) else logical_id


# type -> (ref, {attribute: value}) given (logical id, resolved-enough properties).
Physical = Callable[[str, Mapping[str, Any]], tuple[str, dict[str, str]]]


def _bucket(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "BucketName", lid.lower())
    return name, {"Arn": f"arn:{PARTITION}:s3:::{name}"}


def _queue(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "QueueName", lid)
    url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    return url, {"Arn": _arn("sqs", name), "QueueName": name, "QueueUrl": url}


def _topic(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "TopicName", lid)
    return _arn("sns", name), {"TopicArn": _arn("sns", name), "TopicName": name}


def _role(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "RoleName", lid)
    return name, {"Arn": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}", "RoleId": f"AROA{lid}"}


def _key(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    return KEY_ID, {"Arn": _arn("kms", f"key/{KEY_ID}"), "KeyId": KEY_ID}


def _function(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "FunctionName", lid)
    return name, {"Arn": _arn("lambda", f"function:{name}")}


def _state_machine(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "StateMachineName", lid)
    arn = _arn("states", f"stateMachine:{name}")
    return arn, {"Arn": arn, "Name": name}


def _rule(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "Name", lid)
    return name, {"Arn": _arn("events", f"rule/{name}")}


def _log_group(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "LogGroupName", f"/grocery/{lid}")
    return name, {"Arn": _arn("logs", f"log-group:{name}:*")}


def _alarm(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "AlarmName", lid)
    return name, {"Arn": _arn("cloudwatch", f"alarm:{name}")}


def _endpoint(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "EndpointName", lid)
    return _arn("sagemaker", f"endpoint/{name.lower()}"), {"EndpointName": name}


def _endpoint_config(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "EndpointConfigName", lid)
    return _arn("sagemaker", f"endpoint-config/{name.lower()}"), {"EndpointConfigName": name}


def _model(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    name = _name(props, "ModelName", lid)
    return _arn("sagemaker", f"model/{name.lower()}"), {"ModelName": name}


def _rest_api(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    api_id = lid.lower()[:10]
    return api_id, {"RootResourceId": f"{api_id}root", "RestApiId": api_id}


def _plain(lid: str, props: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    return lid, {}


PHYSICAL: dict[str, Physical] = {
    "AWS::S3::Bucket": _bucket,
    "AWS::SQS::Queue": _queue,
    "AWS::SNS::Topic": _topic,
    "AWS::IAM::Role": _role,
    "AWS::KMS::Key": _key,
    "AWS::Lambda::Function": _function,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::Events::Rule": _rule,
    "AWS::Logs::LogGroup": _log_group,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::SageMaker::Endpoint": _endpoint,
    "AWS::SageMaker::EndpointConfig": _endpoint_config,
    "AWS::SageMaker::Model": _model,
    "AWS::ApiGateway::RestApi": _rest_api,
}
# Names that are properties of the resource itself (resolved before the name is taken).
_NAME_PROPERTIES = (
    "BucketName",
    "QueueName",
    "TopicName",
    "RoleName",
    "FunctionName",
    "StateMachineName",
    "Name",
    "LogGroupName",
    "AlarmName",
    "EndpointName",
    "EndpointConfigName",
    "ModelName",
)


@dataclasses.dataclass
class ResolvedStack:
    name: str
    resources: dict[str, dict[str, Any]]  # logical id -> {"Type", "Properties"} (resolved)
    refs: dict[str, str]
    attributes: dict[str, dict[str, str]]


class AppResolver:
    """Resolves every stack of the app; `parameters` holds values per parameter name."""

    def __init__(self, templates: Mapping[str, dict[str, Any]], parameters: Mapping[str, str]):
        self._templates = templates
        self._parameters = parameters
        self._exports: dict[str, tuple[str, Any]] = {}
        for stack, template in templates.items():
            for output in template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export is not None:
                    self._exports[self._literal(export)] = (stack, output["Value"])
        self.stacks: dict[str, ResolvedStack] = {}
        for stack in templates:
            self._stack(stack)

    @staticmethod
    def _literal(value: Any) -> str:
        if isinstance(value, str):
            return value
        raise UnresolvedError(f"export name is not a literal: {value!r}")

    def _stack(self, name: str) -> ResolvedStack:
        if name in self.stacks:
            return self.stacks[name]
        template = self._templates[name]
        stack = ResolvedStack(name=name, resources={}, refs={}, attributes={})
        self.stacks[name] = stack  # before resolving: imports from other stacks recurse
        conditions = template.get("Conditions", {})
        context = _Context(self, stack, template, conditions)
        for logical_id, resource in template["Resources"].items():
            if "Condition" in resource and not context.condition(resource["Condition"]):
                continue
            props = resource.get("Properties", {})
            names = {key: context.resolve(props[key]) for key in _NAME_PROPERTIES if key in props}
            physical = PHYSICAL.get(resource["Type"], _plain)
            stack.refs[logical_id], stack.attributes[logical_id] = physical(logical_id, names)
            stack.resources[logical_id] = {"Type": resource["Type"], "Raw": props}
        for resource in stack.resources.values():
            resource["Properties"] = context.resolve(resource.pop("Raw"))
        return stack

    def import_value(self, export: str) -> Any:
        if export not in self._exports:
            raise UnresolvedError(f"no stack exports {export}")
        stack, value = self._exports[export]
        resolved = self._stack(stack)
        template = self._templates[stack]
        return _Context(self, resolved, template, template.get("Conditions", {})).resolve(value)

    def parameter(self, name: str, definition: Mapping[str, Any]) -> str:
        if name in self._parameters:
            return self._parameters[name]
        if "Default" in definition and not definition.get("Type", "").startswith("AWS::SSM"):
            return str(definition["Default"])
        raise UnresolvedError(f"parameter {name} needs a value (see tests/access/conftest.py)")


class _Context:
    def __init__(self, app: AppResolver, stack: ResolvedStack, template: dict, conditions: dict):
        self.app, self.stack, self.template, self.conditions = app, stack, template, conditions

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def _ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name == "AWS::StackName":
            return self.stack.name
        if name in self.template.get("Parameters", {}):
            return self.app.parameter(name, self.template["Parameters"][name])
        if name in self.stack.refs:
            return self.stack.refs[name]
        raise UnresolvedError(f"{self.stack.name}: Ref {name} (absent or conditional resource)")

    def _get_att(self, value: Any) -> str:
        logical_id, attribute = value if isinstance(value, list) else value.split(".", 1)
        attribute = self.resolve(attribute)
        if logical_id not in self.stack.attributes:
            raise UnresolvedError(f"{self.stack.name}: GetAtt {logical_id} (absent or conditional)")
        # An attribute no policy needs yet stays a visible placeholder (see UNRESOLVED).
        return self.stack.attributes[logical_id].get(
            attribute, f"{UNRESOLVED}{logical_id}.{attribute}>"
        )

    def _sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else value
        variables = {key: self.resolve(item) for key, item in variables.items()}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                return self._get_att(name)
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, argument), *_ = value.items()
            handler = _INTRINSICS.get(name)
            if handler is not None and (name != "Condition" or isinstance(argument, str)):
                return handler(self, argument)
        return {key: self.resolve(item) for key, item in value.items()}


def _join(ctx: _Context, argument: Any) -> str:
    separator, parts = argument
    return separator.join(str(part) for part in ctx.resolve(parts))


def _select(ctx: _Context, argument: Any) -> Any:
    index, items = ctx.resolve(argument)
    return items[int(index)]


def _split(ctx: _Context, argument: Any) -> list[str]:
    separator, text = ctx.resolve(argument)
    return text.split(separator)


def _if(ctx: _Context, argument: Any) -> Any:
    name, when_true, when_false = argument
    return ctx.resolve(when_true if ctx.condition(name) else when_false)


def _equals(ctx: _Context, argument: Any) -> bool:
    left, right = ctx.resolve(argument)
    return left == right


_INTRINSICS: dict[str, Callable[[_Context, Any], Any]] = {
    "Ref": lambda ctx, name: ctx._ref(name),
    "Fn::GetAtt": lambda ctx, value: ctx._get_att(value),
    "Fn::Join": _join,
    "Fn::Sub": lambda ctx, value: ctx._sub(value),
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::ImportValue": lambda ctx, value: ctx.app.import_value(ctx.resolve(value)),
    "Fn::Equals": _equals,
    "Fn::Not": lambda ctx, value: not ctx.resolve(value[0]),
    "Fn::And": lambda ctx, value: all(ctx.resolve(value)),
    "Fn::Or": lambda ctx, value: any(ctx.resolve(value)),
    "Condition": lambda ctx, name: ctx.condition(name),
}
