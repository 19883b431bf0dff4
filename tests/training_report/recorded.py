"""Recorded responses (tests/fixtures/training_report/) as boto3 returns them, and clients
stubbed with them.

A fixture is what `aws <service> <operation> --output json` prints: timestamps are ISO 8601
strings. `load` walks the operation's botocore output shape and turns every timestamp member
into an aware datetime, as botocore's parser does; a member the shape does not have fails the
load. The Stubber then validates each response against the same output shape, and the
client validates each request against the input shape before the stub answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.stub import Stubber

FIXTURES = Path(__file__).parents[1] / "fixtures" / "training_report"
REGION = "us-east-1"
SERVICES = ("sagemaker", "logs", "cloudwatch")
_MODELS = botocore.session.get_session()


def output_shape(service: str, operation: str):
    return _MODELS.get_service_model(service).operation_model(operation).output_shape


def _parse(value: Any, shape) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return {key: _parse(item, shape.members[key]) for key, item in value.items()}
    if kind == "list":
        return [_parse(item, shape.member) for item in value]
    if kind == "map":
        return {key: _parse(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def load(name: str, service: str, operation: str) -> dict[str, Any]:
    raw = json.loads((FIXTURES / name).read_text())
    return _parse(raw, output_shape(service, operation))


class Stubs:
    """One stubbed client per service, a session that hands them out, and helpers to queue
    recorded responses and AWS errors (each client answers in the order queued)."""

    def __init__(self) -> None:
        self.clients = {
            name: boto3.client(
                name,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            for name in SERVICES
        }
        self.stubbers = {name: Stubber(client) for name, client in self.clients.items()}
        self.region_name = REGION

    def client(self, name: str):  # the one boto3.Session method the command uses
        return self.clients[name]

    def respond(self, service: str, method: str, fixture: str | dict, expected=None) -> None:
        operation = self.clients[service].meta.method_to_api_mapping[method]
        body = load(fixture, service, operation) if isinstance(fixture, str) else fixture
        self.stubbers[service].add_response(method, body, expected)

    def error(self, service: str, method: str, code: str, message: str, expected=None) -> None:
        self.stubbers[service].add_client_error(
            method,
            service_error_code=code,
            service_message=message,
            http_status_code=400,
            expected_params=expected,
        )

    def __enter__(self) -> Stubs:
        for stubber in self.stubbers.values():
            stubber.activate()
        return self

    def __exit__(self, *exc) -> None:
        for stubber in self.stubbers.values():
            stubber.deactivate()

    def assert_all_used(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()
