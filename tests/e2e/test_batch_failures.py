"""Failed transform jobs end to end (see tests/e2e/batch_world.py): a corrupt image makes a
partial batch with no pointless re-run; a failure outside the batch suggests the re-run."""

from __future__ import annotations

import json

from grocery.__main__ import main as cli_main
from tests.e2e.batch_world import (
    BUCKET,
    GOOD,
    JPEG,
    MODEL,
    batch_model,
    decode_input,
    execution_states,
    fail_transform,
    rows_of,
)
from tests.support import images, sfn_local

# Header intact, image data garbage: passes the trigger's cheap check (libjpeg only warns on
# damaged image data); here the model refuses it, as it would an image it cannot read.
CORRUPT = "incoming/corrupt.jpg"
CLIENT_ERROR = "ClientError: See job logs for more information"
CAPACITY = (
    "CapacityError: Unable to provision requested ML compute capacity. "
    "Please retry using a different ML instance type."
)
NO_OUTPUT = "no prediction: the transform job wrote no output for it (the job failed: {})"


def test_a_corrupt_image_makes_a_partial_batch_without_a_pointless_rerun(world, capsys):
    world.approve_model()
    uploads = {key: body for key, (body, _) in GOOD.items()}
    batch_id, execution_arn = world.submit({**uploads, CORRUPT: images.corrupt_body(JPEG)})

    payload, result = fail_transform(
        world, execution_arn, {key: probs for key, (_, probs) in GOOD.items()}, CLIENT_ERROR
    )
    final = sfn_local.wait_for_execution(world.sfn, execution_arn)

    assert final["status"] == "SUCCEEDED", execution_states(world, execution_arn)
    # The failed job's Catch deletes the run's Model before decode.
    states = execution_states(world, execution_arn)
    assert states[states.index("Transform") :][:3] == ["Transform", "DeleteModel", "Decode"]
    assert world.models() == []
    assert execution_states(world, execution_arn)[-2:] == ["NotifyPartial", "PartiallyClassified"]
    assert decode_input(world, execution_arn) == payload
    assert (result["outcome"], result["rerun"]) == ("PARTIAL", False)
    assert (result["classified"], result["failed"]) == (3, 1)
    rows = {row["image"].removeprefix(f"s3://{BUCKET}/"): row for row in rows_of(world, batch_id)}
    assert {key: rows[key]["status"] for key in GOOD} == dict.fromkeys(GOOD, "classified")
    assert (rows[CORRUPT]["status"], rows[CORRUPT]["reason"]) == (
        "failed",
        NO_OUTPUT.format(CLIENT_ERROR),
    )

    status = json.loads(world.read(f"batches/{batch_id}/status.json"))
    assert status["status"] == "PARTIAL"
    assert status["error"] == {
        "Error": "TransformJobFailed",
        "Cause": f"transform job grocery-b-{batch_id}-0 failed (States.TaskFailed): {CLIENT_ERROR}",
    }
    assert "the model could not process the 1 images marked failed" in status["advice"]
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} partially classified"
    assert "3 of 4 images classified, 1 failed" in message
    assert f"log group /aws/sagemaker/TransformJobs, streams grocery-b-{batch_id}-0/*" in message
    assert "rerun" not in message

    assert cli_main(["batch", "status", batch_id]) == 0
    printed = capsys.readouterr().out
    assert "last run: PARTIAL" in printed
    assert "the model could not process the 1 images marked failed" in printed
    assert "rerun" not in printed
    assert f"results: s3://{BUCKET}/results/{batch_id}.jsonl" in printed


def test_no_capacity_fails_the_batch_and_suggests_the_rerun(world, capsys):
    world.approve_model()
    key, (body, _) = next(iter(GOOD.items()))
    batch_id, execution_arn = world.submit({key: body})

    _, result = fail_transform(world, execution_arn, {}, CAPACITY)
    final = sfn_local.wait_for_execution(world.sfn, execution_arn)

    assert (final["status"], final["error"]) == ("FAILED", "TransformJobFailed")
    assert world.models() == []
    assert (
        final["cause"]
        == f"transform job grocery-b-{batch_id}-0 failed (States.TaskFailed): {CAPACITY}"
    )
    assert (result["outcome"], result["rerun"]) == ("FAILED", True)
    (row,) = rows_of(world, batch_id)
    assert (row["status"], row["reason"]) == ("failed", NO_OUTPUT.format(CAPACITY))
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} FAILED"
    assert CAPACITY in message
    assert f"re-run it with: python -m grocery batch rerun {batch_id}" in message
    assert cli_main(["batch", "status", batch_id]) == 0
    assert f"re-run it with: python -m grocery batch rerun {batch_id}" in capsys.readouterr().out


def test_a_batch_whose_every_image_is_refused_fails_without_a_rerun(world, capsys):
    world.approve_model()
    batch_id, execution_arn = world.submit({CORRUPT: images.corrupt_body(JPEG)})

    _, result = fail_transform(world, execution_arn, {}, CLIENT_ERROR)
    final = sfn_local.wait_for_execution(world.sfn, execution_arn)

    assert final["status"] == "FAILED"
    assert execution_states(world, execution_arn)[-2:] == ["NotifyUnfixable", "FailedForGood"]
    assert (result["outcome"], result["rerun"], result["classified"]) == ("FAILED", False, 0)
    assert json.loads(world.read(f"batches/{batch_id}/status.json"))["status"] == "FAILED"
    ((subject, message),) = world.notifications()
    assert subject == f"grocery: batch {batch_id} FAILED"
    assert "no image was classified, and a re-run fails the same way" in message
    assert "rerun" not in message
    assert cli_main(["batch", "status", batch_id]) == 0
    printed = capsys.readouterr().out
    assert "last run: FAILED" in printed
    assert "rerun" not in printed


def test_images_deleted_before_the_job_read_them_are_left_out_by_the_suggested_rerun(world):
    world.approve_model()
    (kept, (body, probabilities)), (gone, _) = list(GOOD.items())[:2]
    batch_id, execution_arn = world.submit({kept: body, gone: body})
    world.s3.delete_object(Bucket=BUCKET, Key=gone)  # the job then fails to read it

    _, result = fail_transform(world, execution_arn, {kept: probabilities}, CLIENT_ERROR)
    final = sfn_local.wait_for_execution(world.sfn, execution_arn)

    assert final["status"] == "SUCCEEDED"
    assert (result["outcome"], result["rerun"]) == ("PARTIAL", True)
    ((_, message),) = world.notifications()
    assert f"a re-run leaves them out: python -m grocery batch rerun {batch_id}" in message
    assert json.loads(world.read(f"batches/{batch_id}/status.json"))["model"]["name"] == MODEL
    assert batch_model(batch_id) not in world.models()
