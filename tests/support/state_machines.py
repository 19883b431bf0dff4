"""Test helpers for state machines: render CDK's definition, validate it, check SageMaker params.

CDK emits a state machine's DefinitionString as `Fn::Join`, which cfn-lint does not
look inside. These helpers turn it into plain ASL JSON (intrinsics replaced by
placeholders), run the npm `asl-validator` over it, and validate SageMaker task
Parameters against botocore's service model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import Shape
from botocore.validate import ParamValidator

REPO = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"

ACCOUNT = "123456789012"
REGION = "us-east-1"
_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "TestStack",
}


def _placeholder(intrinsic: dict[str, Any]) -> str:
    (name, value), *_ = intrinsic.items()
    if name == "Ref":
        return _PSEUDO.get(value, value)
    if name == "Fn::GetAtt":
        resource, attribute = value if isinstance(value, list) else value.split(".", 1)
        if attribute.endswith("Arn"):
            return f"arn:aws:states:{REGION}:{ACCOUNT}:placeholder:{resource}"
        return f"{resource}-{attribute}"
    if name == "Fn::Join":
        separator, parts = value
        return separator.join(_render(part) for part in parts)
    return f"placeholder-{name.removeprefix('Fn::')}"


def _render(part: Any) -> str:
    return part if isinstance(part, str) else _placeholder(part)


def state_machine_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state machine in a template, by logical id, as parsed ASL."""
    definitions = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        definition = resource["Properties"]["DefinitionString"]
        definitions[logical_id] = json.loads(_render(definition))
    return definitions


def asl_validation_errors(definition: dict[str, Any], tmp_path: Path) -> str:
    """Runs the npm asl-validator; returns its complaint, or '' when the definition is valid."""
    validator = str(ASL_VALIDATOR) if ASL_VALIDATOR.exists() else shutil.which("asl-validator")
    assert validator, "asl-validator is missing: run `make synth` (npm ci) first"
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    result = subprocess.run(
        [validator, "--json-path", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if result.returncode == 0 else (result.stdout + result.stderr)


def iter_states(definition: dict[str, Any]):
    """Every state, including those inside Parallel branches and Map iterators."""
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from iter_states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from iter_states(state[key])


_TYPED_PLACEHOLDERS = {
    "string": "placeholder",
    "integer": 1,
    "long": 1,
    "float": 1.0,
    "double": 1.0,
    "boolean": True,
    "timestamp": "2026-01-01T00:00:00Z",
    "blob": b"placeholder",
}


def _with_placeholders(value: Any, shape: Shape) -> Any:
    """Replaces every JsonPath (`Key.$`) value by a value of the type the API expects."""
    if shape.type_name == "structure" and isinstance(value, dict):
        result = {}
        for key, item in value.items():
            plain = key.removesuffix(".$")
            member = shape.members.get(plain)
            if member is None:
                result[plain] = item  # unknown key: left for the validator to report
            elif key.endswith(".$"):
                result[plain] = _typed_placeholder(member)
            else:
                result[plain] = _with_placeholders(item, member)
        return result
    if shape.type_name == "list" and isinstance(value, list):
        return [_with_placeholders(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {
            key.removesuffix(".$"): _typed_placeholder(shape.value)
            if key.endswith(".$")
            else _with_placeholders(item, shape.value)
            for key, item in value.items()
        }
    return value


def _typed_placeholder(shape: Shape) -> Any:
    if shape.type_name == "structure":
        return {}
    if shape.type_name == "list":
        return []
    if shape.type_name == "map":
        return {}
    if shape.enum:
        return shape.enum[0]
    return _TYPED_PLACEHOLDERS[shape.type_name]


def sagemaker_parameter_errors(operation: str, parameters: dict[str, Any]) -> str:
    """Validates a task's Parameters against botocore's sagemaker model; '' when valid."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(_with_placeholders(parameters, shape), shape)
    return report.generate_report() if report.has_errors() else ""
