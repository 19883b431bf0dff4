"""Uploads -> trigger -> the batch stack's REAL state machine in moto -> decode -> results.

Only two things are stood in for: the transform job (the test-only `.sync` ->
task-token rewrite of tests/support/sfn_local.py; the test writes the `.out`
files the algorithm would and answers with a DescribeTransformJob-shaped
result) and the Lambda runtime (moto echoes Lambda tasks, so the test calls the
decode handler itself with the payload the state machine sends, and queues its
answer as the function's response; the payload actually sent is then compared).
The EventBridge -> SQS message bodies are built as AWS documents them.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import uuid
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Template
from batch_decode import handler as decode_handler
from batch_trigger import handler as trigger_handler
from moto import mock_aws
from moto.moto_api._internal.models import moto_api_backend
from moto.sns.models import sns_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from grocery import batch as batch_cli
from grocery.__main__ import main as cli_main
from stacks.names import approved_model_parameter
from tests.infrastructure.conftest import build_app
from tests.support import custom_resources, sfn_local

ACCOUNT, REGION = sfn_local.ACCOUNT, sfn_local.REGION
BUCKET, ARTIFACTS = "grocery-inference", "grocery-artifacts"
LABELS = ["Golden-Delicious", "Banana", "Oatly-Oat-Milk", "Vine-Tomato"]
LABELS_URI = f"s3://{ARTIFACTS}/training-jobs/grocery-t-1/labels.json"
MODEL = "grocery-model-1"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
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
        # The approved-model pointer ("none"), created as the training stack's custom resources do.
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
        for field, value in (("model-name", name), ("labels-uri", labels_uri)):
            self.ssm.put_parameter(
                Name=approved_model_parameter("grocery", field),
                Value=value,
                Type="String",
                Overwrite=True,
            )

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


def complete_transform(world: World, execution_arn: str, images: dict[str, list[float]]) -> dict:
    """Plays the transform job: writes `<output>/<input key>.out` per image, then succeeds."""
    task = sfn_local.wait_for_task_token(world.sfn, execution_arn, "createTransformJob")
    output = task.parameters["TransformOutput"]["S3OutputPath"]
    prefix = output.removeprefix(f"s3://{BUCKET}/")
    for key, probabilities in images.items():
        world.s3.put_object(
            Bucket=BUCKET, Key=f"{prefix}{key}.out", Body=json.dumps({"prediction": probabilities})
        )
    return {"task": task, "prefix": prefix}


def decode_payload(world: World, execution_arn: str, predictions_prefix: str) -> dict[str, Any]:
    """The payload the Decode state will send (compared with the real one afterwards)."""
    execution_input = json.loads(world.sfn.describe_execution(executionArn=execution_arn)["input"])
    payload = {
        "batch_id": execution_input["batch_id"],
        "bucket": BUCKET,
        "record_key": execution_input["record_key"],
        "predictions_prefix": predictions_prefix,
        "results": execution_input["results"],
        "model": {
            "name": world.ssm.get_parameter(Name="/grocery/approved-model/model-name")["Parameter"][
                "Value"
            ]
        },
        "labels": {
            "uri": world.ssm.get_parameter(Name="/grocery/approved-model/labels-uri")["Parameter"][
                "Value"
            ]
        },
        "transform_error": {},
    }
    return payload


def decode_and_answer(payload: dict[str, Any]) -> dict[str, Any]:
    """Runs the decode handler on it and queues its answer as the Lambda's response."""
    result = decode_handler.handler(payload, None)
    moto_api_backend.set_lambda_simple_result(json.dumps(result), ACCOUNT, REGION)
    return result


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


@pytest.fixture
def world(aws_credentials, monkeypatch):
    with mock_aws(config=MOTO_CONFIG):
        yield World(monkeypatch)


def _upload_everything(world: World) -> list[str]:
    bodies = []
    for key, (body, _) in GOOD.items():
        bodies.append(json.dumps(world.upload(key, body)))
    bodies.append(json.dumps(world.upload(GONE_BEFORE_JOB, JPEG)))
    for key, (body, _) in SKIPPED.items():
        bodies.append(json.dumps(world.upload(key, body)))
    world.s3.delete_object(Bucket=BUCKET, Key="incoming/deleted-early.jpg")
    # The stack's own outputs never reach the queue (the rule's prefix); even if one did:
    other = eventbridge_event("results/old.jsonl", 10, "e", "v")
    return [*bodies, json.dumps(other)]


def test_uploads_are_classified_in_one_batch_with_every_skip_explained(world):
    world.approve_model()
    bodies = _upload_everything(world)
    event = sqs_event([*bodies, "not json at all"])

    response = trigger_handler.handler(event, None)

    # The unreadable message alone goes back to the queue (then to the DLQ).
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{len(bodies)}"}]}
    (execution,) = world.executions()
    batch_id = execution["name"]
    assert re.fullmatch(r"20261125-132557-[0-9a-f]{12}", batch_id)

    # A duplicate delivery of the same events (in another order) starts nothing new.
    assert trigger_handler.handler(sqs_event(list(reversed(bodies))), None) == {
        "batchItemFailures": []
    }
    assert [e["name"] for e in world.executions()] == [batch_id]

    manifest = json.loads(world.read(f"batches/{batch_id}/manifest.json"))
    assert manifest == [{"prefix": f"s3://{BUCKET}/"}, *sorted([*GOOD, GONE_BEFORE_JOB])]

    transform = complete_transform(
        world, execution["executionArn"], {key: probs for key, (_, probs) in GOOD.items()}
    )
    parameters = transform["task"].parameters
    assert parameters["ModelName"] == MODEL
    assert parameters["TransformJobName"] == f"grocery-b-{batch_id}-0"
    assert parameters["TransformInput"]["DataSource"]["S3DataSource"] == {
        "S3DataType": "ManifestFile",
        "S3Uri": f"s3://{BUCKET}/batches/{batch_id}/manifest.json",
    }
    assert transform["prefix"] == f"predictions/{batch_id}/{batch_id}/"
    # Deleted after the batch started, before the job read it.
    world.s3.delete_object(Bucket=BUCKET, Key=GONE_BEFORE_JOB)

    payload = decode_payload(world, execution["executionArn"], transform["prefix"])
    result = decode_and_answer(payload)
    world.sfn.send_task_success(
        taskToken=transform["task"].token,
        output=json.dumps(
            {"TransformJobName": parameters["TransformJobName"], "TransformJobStatus": "Completed"}
        ),
    )
    final = sfn_local.wait_for_execution(world.sfn, execution["executionArn"])

    assert final["status"] == "SUCCEEDED", sfn_local.state_sequence(
        world.sfn, execution["executionArn"]
    )
    assert decode_input(world, execution["executionArn"]) == payload
    assert result == {
        "batch_id": batch_id,
        "model": MODEL,
        "images": 4,
        "classified": 3,
        "failed": 1,
        "skipped": 6,
        "results_jsonl": f"s3://{BUCKET}/results/{batch_id}.jsonl",
        "results_csv": f"s3://{BUCKET}/results/{batch_id}.csv",
    }
    rows = {row["image"].removeprefix(f"s3://{BUCKET}/"): row for row in rows_of(world, batch_id)}
    assert set(rows) == {*GOOD, GONE_BEFORE_JOB, *SKIPPED}
    common = {"model": MODEL, "batch_id": batch_id}
    assert rows["incoming/apple 1.jpg"] == {
        "image": f"s3://{BUCKET}/incoming/apple 1.jpg",
        "status": "classified",
        "label": "Golden-Delicious",
        "class_id": 0,
        "confidence": 0.91,
        "top_k": [
            {"label": "Golden-Delicious", "class_id": 0, "confidence": 0.91},
            {"label": "Banana", "class_id": 1, "confidence": 0.05},
            {"label": "Oatly-Oat-Milk", "class_id": 2, "confidence": 0.03},
            {"label": "Vine-Tomato", "class_id": 3, "confidence": 0.01},
        ],
        "reason": None,
        **common,
    }
    assert (
        rows["incoming/c++/banana+split.PNG"]["label"],
        rows["incoming/c++/banana+split.PNG"]["confidence"],
    ) == ("Banana", 0.96)
    assert rows["incoming/frühstück/äpfel-🍎.jpeg"]["class_id"] == 3
    assert rows[GONE_BEFORE_JOB] == {
        "image": f"s3://{BUCKET}/{GONE_BEFORE_JOB}",
        "status": "failed",
        "label": None,
        "class_id": None,
        "confidence": None,
        "top_k": [],
        "reason": "deleted before the transform job ran",
        **common,
    }
    for key, (_, reason) in SKIPPED.items():
        assert rows[key] == {
            "image": f"s3://{BUCKET}/{key}",
            "status": "skipped",
            "label": None,
            "class_id": None,
            "confidence": None,
            "top_k": [],
            "reason": reason,
            **common,
        }, key
    table = list(csv.DictReader(io.StringIO(world.read(f"results/{batch_id}.csv").decode())))
    assert len(table) == len(rows)
    apple = next(r for r in table if r["image"].endswith("apple 1.jpg"))
    assert (
        apple["top_k"]
        == "Golden-Delicious=0.9100; Banana=0.0500; Oatly-Oat-Milk=0.0300; Vine-Tomato=0.0100"
    )
    assert (apple["confidence"], apple["model"], apple["reason"]) == ("0.910000", MODEL, "")

    status = json.loads(world.read(f"batches/{batch_id}/status.json"))
    assert (status["status"], status["model"], status["results"]) == (
        "SUCCEEDED",
        {"name": MODEL},
        result,
    )
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} classified"
    assert "3 of 4 images classified, 1 failed, 6 objects skipped" in message


def test_without_an_approved_model_the_batch_fails_clearly_and_one_command_reruns_it(world, capsys):
    key, (body, probabilities) = next(iter(GOOD.items()))
    trigger_handler.handler(sqs_event([json.dumps(world.upload(key, body))]), None)
    (execution,) = world.executions()
    batch_id = execution["name"]

    failed = sfn_local.wait_for_execution(world.sfn, execution["executionArn"])

    assert failed["status"] == "FAILED"
    assert failed["error"] == "NoApprovedModel"
    assert failed["cause"].startswith("no approved model yet: run training")
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} FAILED"
    assert f"re-run it with: python -m grocery batch rerun {batch_id}" in message
    status = json.loads(world.read(f"batches/{batch_id}/status.json"))
    assert (status["status"], status["error"]["Error"]) == ("FAILED", "NoApprovedModel")

    # Training approves a model; the operator re-runs the recorded batch.
    world.approve_model()
    assert cli_main(["batch", "rerun", batch_id]) == 0
    rerun = next(e for e in world.executions() if e["name"] != batch_id)
    assert rerun["name"].startswith(f"{batch_id}-r")
    transform = complete_transform(world, rerun["executionArn"], {key: probabilities})
    assert transform["prefix"] == f"predictions/{batch_id}/{rerun['name']}/"
    decode_and_answer(decode_payload(world, rerun["executionArn"], transform["prefix"]))
    world.sfn.send_task_success(
        taskToken=transform["task"].token,
        output=json.dumps({"TransformJobName": "x", "TransformJobStatus": "Completed"}),
    )

    assert sfn_local.wait_for_execution(world.sfn, rerun["executionArn"])["status"] == "SUCCEEDED"
    (row,) = rows_of(world, batch_id)
    assert (row["status"], row["label"], row["model"]) == ("classified", "Golden-Delicious", MODEL)
    assert cli_main(["batch", "status", batch_id]) == 0
    printed = capsys.readouterr().out
    assert "last run: SUCCEEDED" in printed
    assert f"results: s3://{BUCKET}/results/{batch_id}.jsonl" in printed


def test_a_failed_transform_job_keeps_what_was_classified_and_reports_the_cause(world):
    world.approve_model()
    bodies = [json.dumps(world.upload(key, body)) for key, (body, _) in GOOD.items()]
    trigger_handler.handler(sqs_event(bodies), None)
    (execution,) = world.executions()
    batch_id = execution["name"]
    first, *_ = GOOD
    transform = complete_transform(world, execution["executionArn"], {first: GOOD[first][1]})
    cause = "ClientError: See job logs for more information"
    payload = decode_payload(world, execution["executionArn"], transform["prefix"])
    payload["transform_error"] = {"Error": "SageMaker.TransformJobFailed", "Cause": cause}
    decode_and_answer(payload)

    # moto's SendTaskFailure API drops `cause`; its backend keeps it, as AWS does.
    stepfunctions_parser_backends[ACCOUNT][REGION].send_task_failure(
        transform["task"].token, error="SageMaker.TransformJobFailed", cause=cause
    )
    failed = sfn_local.wait_for_execution(world.sfn, execution["executionArn"])

    assert (failed["status"], failed["cause"]) == ("FAILED", cause)
    assert decode_input(world, execution["executionArn"]) == payload
    statuses = {row["image"]: (row["status"], row["reason"]) for row in rows_of(world, batch_id)}
    assert statuses[f"s3://{BUCKET}/{first}"] == ("classified", None)
    no_output = f"no prediction: the transform job wrote no output for it (the job failed: {cause})"
    assert sorted(statuses.values()) == [
        ("classified", None),
        ("failed", no_output),
        ("failed", no_output),
    ]
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} FAILED"
    assert cause in message


def test_rerun_refuses_a_batch_in_progress_and_explains_bad_ids(world, capsys):
    world.approve_model()
    key, (body, _) = next(iter(GOOD.items()))
    trigger_handler.handler(sqs_event([json.dumps(world.upload(key, body))]), None)
    (execution,) = world.executions()
    sfn_local.wait_for_task_token(world.sfn, execution["executionArn"], "createTransformJob")

    assert cli_main(["batch", "rerun", execution["name"]]) == 2
    assert "is being classified right now" in capsys.readouterr().err
    assert cli_main(["batch", "status", "not-a-batch"]) == 2
    assert "'not-a-batch' is not a batch id" in capsys.readouterr().err
    assert cli_main(["batch", "rerun", "20260101-000000-0123456789ab"]) == 2
    assert "batch 20260101-000000-0123456789ab is not recorded" in capsys.readouterr().err
    assert [e["name"] for e in world.executions()] == [execution["name"]]
    world.sfn.stop_execution(executionArn=execution["executionArn"])


def test_rerun_execution_names_fit_the_transform_job_name():
    name = batch_cli.rerun_execution_name("20261125-132557-0123456789ab", now=2**32)
    assert name == "20261125-132557-0123456789ab-r1z141z4"
    # grocery-b- (<= 22 with a 20-character prefix) + name + "-" + attempt <= 63
    assert len("p" * 20 + "-b-" + name + "-2") <= 63


def test_aws_errors_are_one_line(world, monkeypatch, capsys):
    key, (body, _) = next(iter(GOOD.items()))
    trigger_handler.handler(sqs_event([json.dumps(world.upload(key, body))]), None)
    (execution,) = world.executions()
    gone = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:deleted"
    monkeypatch.setattr(
        batch_cli,
        "stack_output",
        lambda name, key, session=None: BUCKET if key == "InferenceBucketName" else gone,
    )

    assert cli_main(["batch", "status", execution["name"]]) == 2

    error = capsys.readouterr().err
    assert error.startswith("error: AWS refused or could not be reached (")
    assert error.count("\n") == 1
