"""The batch pipeline's moto world, shared by the batch e2e suites.

Uploads -> trigger -> the batch stack's REAL state machine in moto -> decode -> results.
Only two things are stood in for: the transform job (the test-only `.sync` ->
task-token rewrite of tests/support/sfn_local.py; the test writes the `.out`
files the algorithm would and answers with a DescribeTransformJob-shaped
result, or fails it as AWS reports a failed job: `sfn_local.fail_sync_job`) and the
Lambda runtime (moto echoes Lambda tasks, so the test calls the decode handler itself
with the payload the state machine sends, and queues its answer as the function's
response; the payload actually sent is then compared). The EventBridge -> SQS message
bodies are built as AWS documents them.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template
from batch_decode import handler as decode_handler
from batch_trigger import handler as trigger_handler
from moto.moto_api._internal.models import moto_api_backend
from moto.sns.models import sns_backends

from grocery import batch as batch_cli
from stacks.names import NO_APPROVED_MODEL, release_parameter
from tests.infrastructure.conftest import build_app
from tests.support import custom_resources, images, sfn_local

ACCOUNT, REGION = sfn_local.ACCOUNT, sfn_local.REGION
BUCKET, ARTIFACTS = "grocery-inference", "grocery-artifacts"
LABELS = ["Golden-Delicious", "Banana", "Oatly-Oat-Milk", "Vine-Tomato"]
LABELS_URI = f"s3://{ARTIFACTS}/training-jobs/grocery-t-1/labels.json"
# The released version: results rows name it; each run creates its own Model from it.
MODEL = "grocery-classifier-v3"
MODEL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/model"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
JPEG = images.jpeg()
PNG = images.png()
# A JPEG header, then nothing a decoder can read: the trigger keeps it out of the job.
BROKEN_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)
MOTO_CONFIG = {**sfn_local.MOTO_CONFIG, "lambda": {"use_docker": False}}

# What gets uploaded, and what the batch must make of it.
GOOD = {
    "incoming/apple 1.jpg": (JPEG, [0.91, 0.05, 0.03, 0.01]),  # a space
    "incoming/c++/banana+split.PNG": (PNG, [0.02, 0.96, 0.01, 0.01]),  # '+' and upper case
    "incoming/frühstück/äpfel-🍎.jpeg": (JPEG, [0.1, 0.1, 0.3, 0.5]),  # unicode
}
GONE_BEFORE_JOB = "incoming/gone.jpg"
SKIPPED = {
    "incoming/empty.jpg": (b"", "empty object (0 bytes)"),
    "incoming/notes.txt": (
        b"shopping list",
        "not an image: '.txt' is not one of .jpg, .jpeg, .png",
    ),
    "incoming/sub/": (b"", "folder marker (the key ends with '/'), not a photo"),
    "incoming/fake.jpg": (
        b"<html>not a photo</html>",
        "not a JPEG or PNG image (the content does not start with an image signature)",
    ),
    "incoming/huge.jpg": (
        JPEG + bytes(6_000_000),
        "larger than the transform's 6 MB payload limit (6.0 MB)",
    ),
    "incoming/deleted-early.jpg": (JPEG, "deleted before the batch started"),
    "incoming/broken.jpg": (
        BROKEN_HEADER,
        "a broken JPEG that the algorithm cannot decode: "
        "the file ends inside its header (a truncated upload?)",
    ),
}


@functools.cache
def _templates() -> dict[str, dict[str, Any]]:
    stacks = build_app()
    return {
        name: Template.from_stack(getattr(stacks, name)).to_json() for name in ("batch", "training")
    }


def _batch_template() -> dict[str, Any]:
    return _templates()["batch"]


def _definition(decode_arn: str, topic_arn: str) -> dict[str, Any]:
    template = _batch_template()
    text = json.dumps(template)
    values = {}
    for export in set(re.findall(r'"Fn::ImportValue": "([^"]+)"', text)):
        if "Notifications" in export:
            values[export] = topic_arn
        elif "DataKey" in export:
            values[export] = KEY_ARN
        elif "ModelRole" in export and "Arn" in export:
            values[export] = MODEL_ROLE
    (decode_id,) = [
        lid
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and lid.startswith("WorkflowDecode")
    ]
    values[f"{decode_id}.Arn"] = decode_arn
    return sfn_local.rewrite_sync_to_callback(sfn_local.render_definition(template, values=values))


class World:
    """moto's S3, SSM, SNS, Lambda and Step Functions, set up as the deployed stacks leave them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        self.sagemaker = boto3.client("sagemaker", region_name=REGION)
        # The release record ("none"), created as the training stack's custom resources do.
        custom_resources.run_sdk_calls(_templates()["training"], "Create")
        for bucket in (BUCKET, ARTIFACTS):
            self.s3.create_bucket(Bucket=bucket)
            self.s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        self.s3.put_object(
            Bucket=ARTIFACTS, Key=LABELS_URI.split("/", 3)[3], Body=json.dumps(LABELS).encode()
        )
        self.topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="notify")[
            "TopicArn"
        ]
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="decode", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        decode_arn = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="decode",
            Runtime="python3.11",
            Role=role,
            Handler="batch_decode.handler.handler",
            Code={"ZipFile": b"PK\x05\x06" + bytes(18)},
        )["FunctionArn"]
        self.state_machine_arn = sfn_local.create_state_machine(
            self.sfn, _definition(decode_arn, self.topic_arn)
        )
        monkeypatch.setenv("INFERENCE_BUCKET", BUCKET)
        monkeypatch.setenv("STATE_MACHINE_ARN", self.state_machine_arn)
        outputs = {
            ("Grocery-Storage", "InferenceBucketName"): BUCKET,
            ("Grocery-Batch", "StateMachineArn"): self.state_machine_arn,
        }
        monkeypatch.setattr(
            batch_cli, "stack_output", lambda name, key, session=None: outputs[name, key]
        )

    def approve_model(self, name: str = MODEL, labels_uri: str = LABELS_URI) -> None:
        """Releases version N of `name` (`<group>-v<N>`): writes the release record as the
        release workflow does. Nothing of the serving stack exists in this world."""
        for field, value in (("model-package-arn", package_arn(name)), ("labels-uri", labels_uri)):
            self.ssm.put_parameter(
                Name=release_parameter("grocery", field),
                Value=value,
                Type="String",
                Overwrite=True,
            )

    def models(self) -> list[str]:
        """The SageMaker Models that exist (batch runs create and delete their own)."""
        return [m["ModelName"] for m in self.sagemaker.list_models()["Models"]]

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        """Puts the object; returns the EventBridge event S3 sends for it (as documented)."""
        response = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return eventbridge_event(key, len(body), response["ETag"].strip('"'), response["VersionId"])

    def notifications(self) -> list[tuple[str, str]]:
        """(subject, message) of every SNS publication, in order."""
        topic = sns_backends[ACCOUNT][REGION].topics[self.topic_arn]
        return [(subject, message) for _, message, subject, *_ in topic.sent_notifications]

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def executions(self) -> list[dict[str, Any]]:
        return self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def submit(self, uploads: dict[str, bytes]) -> tuple[str, str]:
        """Uploads, then one trigger invocation with their events: (batch id, execution ARN)."""
        bodies = [json.dumps(self.upload(key, body)) for key, body in uploads.items()]
        trigger_handler.handler(sqs_event(bodies), None)
        (execution,) = self.executions()
        return execution["name"], execution["executionArn"]


def package_arn(name: str) -> str:
    """`grocery-classifier-v3` -> the ARN of version 3 of the group `grocery-classifier`."""
    group, _, version = name.rpartition("-v")
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"


def batch_model(execution_name: str) -> str:
    """The Model a batch run creates for itself (stacks/batch/model.py)."""
    return f"grocery-b-{execution_name}"


_sequencer = iter(range(0x100000, 0x200000))


def eventbridge_event(key: str, size: int, etag: str, version_id: str) -> dict[str, Any]:
    """An "Object Created" event as https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html
    shows it: the key as stored, NOT URL-encoded."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2026-11-25T13:25:57Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {
                "key": key,
                "size": size,
                "etag": etag,
                "version-id": version_id,
                "sequencer": f"{next(_sequencer):016X}",
            },
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "source-ip-address": "1.2.3.4",
            "reason": "PutObject",
        },
    }


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """The Lambda event of an SQS event source mapping (EventBridge put the bodies there)."""
    return {
        "Records": [
            {
                "messageId": f"m-{number}",
                "receiptHandle": f"r-{number}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764077157000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1764077157001",
                },
                "messageAttributes": {},
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:batch-queue",
                "awsRegion": REGION,
            }
            for number, body in enumerate(bodies)
        ]
    }


def complete_transform(world: World, execution_arn: str, outputs: dict[str, list[float]]) -> dict:
    """Plays the transform job: writes `<output>/<input key>.out` per image, then succeeds.

    Returns the task, its output prefix and the run's Model as it exists during the job."""
    task = sfn_local.wait_for_task_token(world.sfn, execution_arn, "createTransformJob")
    output = task.parameters["TransformOutput"]["S3OutputPath"]
    prefix = output.removeprefix(f"s3://{BUCKET}/")
    for key, probabilities in outputs.items():
        world.s3.put_object(
            Bucket=BUCKET, Key=f"{prefix}{key}.out", Body=json.dumps({"prediction": probabilities})
        )
    model = world.sagemaker.describe_model(ModelName=task.parameters["ModelName"])
    return {"task": task, "prefix": prefix, "model": model}


def decode_payload(world: World, execution_arn: str, predictions_prefix: str) -> dict[str, Any]:
    """The payload the Decode state will send (compared with the real one afterwards)."""
    execution_input = json.loads(world.sfn.describe_execution(executionArn=execution_arn)["input"])
    payload = {
        "batch_id": execution_input["batch_id"],
        "bucket": BUCKET,
        "record_key": execution_input["record_key"],
        "predictions_prefix": predictions_prefix,
        "results": execution_input["results"],
        "model": released_model(world),
        "labels": {"uri": _release_record(world, "labels-uri")},
        "transform_error": {},
    }
    return payload


def _release_record(world: World, field: str) -> str:
    name = release_parameter("grocery", field)
    return world.ssm.get_parameter(Name=name)["Parameter"]["Value"]


def released_model(world: World) -> dict[str, str]:
    """`$.model` of an execution: the released package version and its name `<group>-v<N>`."""
    arn = _release_record(world, "model-package-arn")
    if arn == NO_APPROVED_MODEL:
        return {"package_arn": arn, "name": NO_APPROVED_MODEL}
    _, group, version = arn.split("/")
    return {"package_arn": arn, "name": f"{group}-v{version}"}


def decode_and_answer(payload: dict[str, Any]) -> dict[str, Any]:
    """Runs the decode handler on it and queues its answer as the Lambda's response."""
    result = decode_handler.handler(payload, None)
    moto_api_backend.set_lambda_simple_result(json.dumps(result), ACCOUNT, REGION)
    return result


def decode_runs_in_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets moto's Lambda run the real decode handler on the payload it is invoked with.

    For executions that reach Decode at once (no transform task to wait on), where a
    result queued after the trigger would come too late.
    """
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, *args, **kwargs):
        payload = json.loads(body) if isinstance(body, (str, bytes)) else body
        return json.dumps(decode_handler.handler(payload, None)).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)


def decode_input(world: World, execution_arn: str) -> dict[str, Any]:
    """The payload the Decode state really sent (from the execution history)."""
    (scheduled,) = [
        event["lambdaFunctionScheduledEventDetails"]
        for event in sfn_local.history(world.sfn, execution_arn)
        if event["type"] == "LambdaFunctionScheduled"
    ]
    return json.loads(scheduled["input"])


def rows_of(world: World, batch_id: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in world.read(f"results/{batch_id}.jsonl").decode().splitlines()
    ]


def fail_transform(
    world: World, execution_arn: str, outputs: dict[str, list[float]], reason: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plays a transform job that wrote `outputs`, then failed with `reason` (its FailureReason),
    as AWS reports it (sfn_local.fail_sync_job); returns (decode payload, decode result)."""
    transform = complete_transform(world, execution_arn, outputs)
    payload = decode_payload(world, execution_arn, transform["prefix"])
    description = sfn_local.failed_job_description(transform["task"], reason)
    payload["transform_error"] = {
        "Error": sfn_local.SYNC_JOB_FAILED,
        "Cause": json.dumps(description),
    }
    result = decode_and_answer(payload)
    sfn_local.fail_sync_job(transform["task"], reason)
    return payload, result


def execution_states(world: World, execution_arn: str) -> list[str]:
    return sfn_local.state_sequence(world.sfn, execution_arn)
