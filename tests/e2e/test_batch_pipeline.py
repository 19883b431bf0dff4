"""The batch pipeline end to end (see tests/e2e/batch_world.py): classification, skips, re-runs."""

from __future__ import annotations

import csv
import io
import json
import re

from batch_trigger import handler as trigger_handler

from grocery import batch as batch_cli
from grocery.__main__ import main as cli_main
from tests.e2e.batch_world import (
    ACCOUNT,
    BUCKET,
    GONE_BEFORE_JOB,
    GOOD,
    JPEG,
    MODEL,
    MODEL_ROLE,
    REGION,
    SKIPPED,
    World,
    batch_model,
    complete_transform,
    decode_and_answer,
    decode_input,
    decode_payload,
    decode_runs_in_lambda,
    eventbridge_event,
    package_arn,
    rows_of,
    sqs_event,
)
from tests.support import sfn_local


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
    # The run's own Model, from the released version's package: nothing of Grocery-Serving.
    assert parameters["ModelName"] == batch_model(batch_id)
    model = transform["model"]
    assert model["PrimaryContainer"] == {"ModelPackageName": package_arn(MODEL)}
    assert model["ExecutionRoleArn"] == MODEL_ROLE
    assert world.models() == [batch_model(batch_id)]
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
    assert world.models() == []  # deleted once the job ended
    assert decode_input(world, execution["executionArn"]) == payload
    assert result == {
        "batch_id": batch_id,
        "model": MODEL,
        "images": 4,
        "classified": 3,
        "failed": 1,
        "skipped": 7,
        "results_jsonl": f"s3://{BUCKET}/results/{batch_id}.jsonl",
        "results_csv": f"s3://{BUCKET}/results/{batch_id}.csv",
        "outcome": "SUCCEEDED",
        "rerun": False,
        "failure": "",
        "advice": "",
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
        {"name": MODEL, "package_arn": package_arn(MODEL)},
        result,
    )
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} classified"
    assert "3 of 4 images classified, 1 failed, 7 objects skipped" in message


def test_without_a_released_model_the_batch_fails_clearly_and_one_command_reruns_it(world, capsys):
    key, (body, probabilities) = next(iter(GOOD.items()))
    trigger_handler.handler(sqs_event([json.dumps(world.upload(key, body))]), None)
    (execution,) = world.executions()
    batch_id = execution["name"]

    failed = sfn_local.wait_for_execution(world.sfn, execution["executionArn"])

    assert failed["status"] == "FAILED"
    assert failed["error"] == "NoReleasedModel"
    assert failed["cause"].startswith(
        "no released model yet: approve a version (python -m grocery models approve N)"
    )
    assert "/grocery/release/model-package-arn" in failed["cause"]
    assert "CreateModel" not in sfn_local.state_sequence(world.sfn, execution["executionArn"])
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} FAILED"
    assert f"re-run it with: python -m grocery batch rerun {batch_id}" in message
    status = json.loads(world.read(f"batches/{batch_id}/status.json"))
    assert (status["status"], status["error"]["Error"]) == ("FAILED", "NoReleasedModel")

    # A version is released; the operator re-runs the recorded batch. A Model named after
    # the batch id (as a stopped earlier run would leave it) is in no run's way.
    world.approve_model()
    leftover = batch_model(batch_id)
    world.sagemaker.create_model(
        ModelName=leftover,
        ExecutionRoleArn=MODEL_ROLE,
        PrimaryContainer={"ModelPackageName": package_arn(MODEL)},
    )
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

    assert transform["task"].parameters["ModelName"] == batch_model(rerun["name"])
    assert sfn_local.wait_for_execution(world.sfn, rerun["executionArn"])["status"] == "SUCCEEDED"
    assert world.models() == [leftover]
    (row,) = rows_of(world, batch_id)
    assert (row["status"], row["label"], row["model"]) == ("classified", "Golden-Delicious", MODEL)
    assert cli_main(["batch", "status", batch_id]) == 0
    printed = capsys.readouterr().out
    assert "last run: SUCCEEDED" in printed
    assert f"results: s3://{BUCKET}/results/{batch_id}.jsonl" in printed


def test_a_batch_whose_every_upload_is_skipped_runs_no_job_and_still_gets_results(
    world, monkeypatch
):
    world.approve_model()
    decode_runs_in_lambda(monkeypatch)
    skipped = {key: SKIPPED[key] for key in ("incoming/notes.txt", "incoming/broken.jpg")}
    batch_id, execution_arn = world.submit({key: body for key, (body, _) in skipped.items()})
    record = json.loads(world.read(f"batches/{batch_id}/batch.json"))
    assert (record["images"], record["execution_input"]["image_count"]) == ([], 0)

    final = sfn_local.wait_for_execution(world.sfn, execution_arn)

    assert final["status"] == "SUCCEEDED"
    states = sfn_local.state_sequence(world.sfn, execution_arn)
    assert "Transform" not in states
    assert states[-3:] == ["RecordSuccess", "NotifySuccess", "Classified"]
    scheduled = [
        event["taskScheduledEventDetails"]["resource"]
        for event in sfn_local.history(world.sfn, execution_arn)
        if "taskScheduledEventDetails" in event
    ]
    assert not any("TransformJob" in resource for resource in scheduled)
    assert decode_input(world, execution_arn) == decode_payload(
        world, execution_arn, f"predictions/{batch_id}/{batch_id}/"
    )
    result = final["output_json"]["decode"]
    assert (result["images"], result["skipped"], result["outcome"]) == (0, 2, "SUCCEEDED")
    rows = {row["image"]: (row["status"], row["reason"]) for row in rows_of(world, batch_id)}
    assert rows == {
        f"s3://{BUCKET}/{key}": ("skipped", reason) for key, (_, reason) in skipped.items()
    }
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} classified"
    assert "0 of 0 images classified, 0 failed, 2 objects skipped" in message


def test_rerun_leaves_out_the_images_deleted_since_the_first_run(world, capsys):
    (kept, (body, probabilities)), (deleted, _) = list(GOOD.items())[:2]
    batch_id, first_run = world.submit({kept: body, deleted: body})  # no model yet: it fails
    assert sfn_local.wait_for_execution(world.sfn, first_run)["status"] == "FAILED"
    world.s3.delete_object(Bucket=BUCKET, Key=deleted)
    world.approve_model()

    assert cli_main(["batch", "rerun", batch_id]) == 0

    assert "1 images, 1 skipped" in capsys.readouterr().out
    manifest = json.loads(world.read(f"batches/{batch_id}/manifest.json"))
    assert manifest == [{"prefix": f"s3://{BUCKET}/"}, kept]
    record = json.loads(world.read(f"batches/{batch_id}/batch.json"))
    assert [image["key"] for image in record["images"]] == [kept]
    (gone,) = record["skipped"]
    assert (gone["key"], gone["reason"]) == (deleted, batch_cli.DELETED_BEFORE_RERUN)
    rerun = next(e for e in world.executions() if e["name"] != batch_id)
    assert (
        json.loads(world.sfn.describe_execution(executionArn=rerun["executionArn"])["input"])[
            "image_count"
        ]
        == 1
    )
    transform = complete_transform(world, rerun["executionArn"], {kept: probabilities})
    decode_and_answer(decode_payload(world, rerun["executionArn"], transform["prefix"]))
    world.sfn.send_task_success(
        taskToken=transform["task"].token,
        output=json.dumps({"TransformJobName": "x", "TransformJobStatus": "Completed"}),
    )

    assert sfn_local.wait_for_execution(world.sfn, rerun["executionArn"])["status"] == "SUCCEEDED"
    rows = {row["image"]: (row["status"], row["reason"]) for row in rows_of(world, batch_id)}
    assert rows == {
        f"s3://{BUCKET}/{kept}": ("classified", None),
        f"s3://{BUCKET}/{deleted}": ("skipped", "deleted before the batch was re-run"),
    }


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
