"""Run a template's AwsCustomResource calls with boto3 (in moto), as CDK's provider Lambda does.

`run_sdk_calls(template, "Create")` executes the `Create` call of every `Custom::*` resource
that carries one (CDK renders it as a JSON string: service, action, parameters,
ignoreErrorCodesMatching), ignoring the errors the call says to ignore, exactly like
the provider. So the e2e tests create the approved-model pointer from the template itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()


def run_sdk_calls(template: Mapping[str, Any], request: str = "Create") -> list[str]:
    """Runs the `request` ("Create"/"Update"/"Delete") call of each custom resource.

    Returns the logical ids whose call ran. Raises if a call is not a plain JSON string
    (tokens in it would need resolving) or fails with an error it does not ignore.
    """
    ran = []
    for logical_id, resource in template["Resources"].items():
        call_json = resource.get("Properties", {}).get(request)
        if not resource["Type"].startswith("Custom::") or call_json is None:
            continue
        if not isinstance(call_json, str):
            raise ValueError(f"{logical_id}: {request} call has unresolved tokens: {call_json}")
        call = json.loads(call_json)
        client = boto3.client(call["service"].lower())
        try:
            getattr(client, _snake(call["action"]))(**call.get("parameters", {}))
        except ClientError as error:
            ignored = call.get("ignoreErrorCodesMatching")
            if not ignored or not re.search(ignored, error.response["Error"]["Code"]):
                raise
        ran.append(logical_id)
    return ran


def create_model_package_groups(template: Mapping[str, Any]) -> list[str]:
    """Creates every `AWS::SageMaker::ModelPackageGroup` of the template in moto (as the
    deploy does); returns their names."""
    created = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::SageMaker::ModelPackageGroup":
            continue
        props = resource["Properties"]
        boto3.client("sagemaker").create_model_package_group(
            ModelPackageGroupName=props["ModelPackageGroupName"],
            ModelPackageGroupDescription=props.get("ModelPackageGroupDescription", ""),
        )
        created.append(props["ModelPackageGroupName"])
    return created
