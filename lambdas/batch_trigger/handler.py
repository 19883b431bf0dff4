"""SQS -> one batch -> one Step Functions execution.

The event source mapping gathers upload events for up to `batch_window_seconds`
or `batch_max_images` messages. This handler turns them into ONE batch: it
writes the transform's manifest and the batch record under `batches/<batch id>/`
and starts ONE execution named after the batch id. The id is a hash of the
batch's objects, so a duplicate delivery of the same events finds the execution
already there (ExecutionAlreadyExists = done) instead of starting a second job.

A message that cannot be read is reported as a batch item failure (Powertools
BatchProcessor): it goes back to the queue, then to the dead-letter queue, and
the other messages are not held back. A failure to record or start the batch
fails the whole invocation, so every message is delivered again.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from batch_trigger.batching import Batch, build_batch, s3_probe
from batch_trigger.events import ObjectEvent, parse_message
from grocery_common.batch_layout import is_missing

logger = Logger()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = os.environ["INFERENCE_BUCKET"]
    state_machine_arn = os.environ["STATE_MACHINE_ARN"]
    s3 = boto3.client("s3")
    events: list[ObjectEvent] = []

    def read(record: SQSRecord) -> None:
        events.extend(parse_message(record.body))

    processor = BatchProcessor(event_type=EventType.SQS)
    with processor(records=event.get("Records", []), handler=read):
        processor.process()

    batch = build_batch(events, bucket=bucket, probe=s3_probe(s3))
    if batch is None:
        logger.info("no upload under incoming/ in this window", extra={"events": len(events)})
    else:
        record_batch(s3, batch)
        start_batch(boto3.client("stepfunctions"), state_machine_arn, batch)
    return processor.response()


def record_batch(s3, batch: Batch) -> None:
    """Writes the manifest, then the batch record; an existing record is left as it is."""
    paths = batch.paths
    try:
        s3.head_object(Bucket=paths.bucket, Key=paths.record_key)
    except ClientError as error:
        if not is_missing(error):
            raise
    else:
        # A duplicate delivery, or a batch already re-run (which may have rewritten its manifest).
        logger.info("batch already recorded", extra={"batch_id": batch.batch_id})
        return
    _put_json(s3, paths.bucket, paths.manifest_key, batch.manifest())
    _put_json(s3, paths.bucket, paths.record_key, batch.record())


def _put_json(s3, bucket: str, key: str, document: Any) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, ensure_ascii=False, indent=1).encode(),
        ContentType="application/json",
    )


def start_batch(sfn, state_machine_arn: str, batch: Batch) -> None:
    try:
        sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=batch.batch_id,
            input=json.dumps(batch.execution_input()),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        logger.info("execution already started", extra={"batch_id": batch.batch_id})
        return
    logger.info(
        "batch submitted (StartExecution is idempotent for the same name and input)",
        extra={
            "batch_id": batch.batch_id,
            "images": len(batch.images),
            "skipped": len(batch.skipped),
        },
    )
