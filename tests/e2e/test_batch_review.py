"""A moto batch whose model is unsure fills the review queue (issue 13).

The batch stack's real state machine runs (tests/e2e/batch_world.py); the transform job
answers with low confidences for two of three photos.
"""

from __future__ import annotations

import json

from batch_decode.review import item_id

from grocery_common.review_queue import ReviewItem
from tests.e2e.batch_world import (
    BUCKET,
    JPEG,
    LABELS_URI,
    complete_transform,
    decode_and_answer,
    decode_payload,
)
from tests.support import sfn_local

OUTPUTS = {
    "incoming/shelf/1.jpg": [0.94, 0.02, 0.02, 0.02],  # sure: not queued
    "incoming/shelf/2.jpg": [0.35, 0.33, 0.2, 0.12],  # unsure
    "incoming/shelf/3.jpg": [0.1, 0.1, 0.25, 0.55],  # unsure
}


def test_unsure_batch_rows_fill_the_queue(world):
    world.approve_model("grocery-classifier-v2", LABELS_URI)
    batch_id, execution_arn = world.submit(dict.fromkeys(OUTPUTS, JPEG))
    transform = complete_transform(world, execution_arn, OUTPUTS)
    decode_and_answer(decode_payload(world, execution_arn, transform["prefix"]))
    world.sfn.send_task_success(
        taskToken=transform["task"].token,
        output=json.dumps({"TransformJobName": "j", "TransformJobStatus": "Completed"}),
    )
    assert sfn_local.wait_for_execution(world.sfn, execution_arn)["status"] == "SUCCEEDED"

    listing = world.s3.list_objects_v2(Bucket=BUCKET, Prefix="review/queue/")["Contents"]
    items = {
        item.key: item for item in (ReviewItem.from_json(world.read(o["Key"])) for o in listing)
    }
    assert set(items) == {"incoming/shelf/2.jpg", "incoming/shelf/3.jpg"}
    second = items["incoming/shelf/2.jpg"]
    assert second.id == item_id(batch_id, "incoming/shelf/2.jpg")
    assert (second.bucket, second.source, second.model_version) == (BUCKET, "batch", "2")
    assert [g.label for g in second.top_k] == [
        "Golden-Delicious",
        "Banana",
        "Oatly-Oat-Milk",
        "Vine-Tomato",
    ]
    assert items["incoming/shelf/3.jpg"].confidence == 0.55
    # The photos stay where they were uploaded: the items point at them.
    for key in items:
        assert world.read(key) == JPEG
