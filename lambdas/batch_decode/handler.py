"""The batch state machine's decode step: `.out` files -> results/<batch id>.jsonl and .csv.

Input (built by the state machine):
    {"batch_id", "bucket", "record_key", "predictions_prefix" (this run's folder),
     "results": {"jsonl_key", "csv_key"}, "model": {"name"}, "labels": {"uri"},
     "transform_error": {} or {"Error", "Cause"}}
Output: the counts, where the results are, and the run's outcome (batch_decode.outcome):
    {"outcome": "SUCCEEDED" | "PARTIAL" | "FAILED", "rerun": whether a re-run can change it,
     "failure": the readable cause, "advice": what to do next}
The state machine chooses its ending, its status.json and its notification from them.

Runs after a successful transform, after a failed one (to keep what was
classified and say why the rest was not) and for batches with nothing to
classify (every object skipped). Re-running it overwrites the same results.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from batch_decode.decoding import BatchToDecode, ResultWriter, decode_batch
from batch_decode.outcome import judge, read_failure
from batch_decode.review import BatchReview
from grocery_common.batch_layout import parse_s3_uri, s3_uri
from grocery_common.labels import parse_labels

logger = Logger()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    s3 = boto3.client("s3")
    bucket = event["bucket"]
    record = json.loads(s3.get_object(Bucket=bucket, Key=event["record_key"])["Body"].read())
    failure = read_failure(event.get("transform_error"))
    batch = BatchToDecode(
        bucket=bucket,
        batch_id=event["batch_id"],
        model=event["model"]["name"],
        images=[image["key"] for image in record["images"]],
        skipped=record["skipped"],
        predictions_prefix=event["predictions_prefix"],
        failure=failure,
    )
    labels_uri = event["labels"]["uri"]

    def load_labels() -> list[str]:
        label_bucket, label_key = parse_s3_uri(labels_uri)
        body = s3.get_object(Bucket=label_bucket, Key=label_key)["Body"].read()
        return parse_labels(body, source=labels_uri)

    writer = ResultWriter()
    try:
        summary = decode_batch(s3, batch, load_labels, writer)
        jsonl_path, csv_path = writer.flush()
        keys = event["results"]
        s3.upload_file(
            jsonl_path, bucket, keys["jsonl_key"], ExtraArgs={"ContentType": "application/x-ndjson"}
        )
        s3.upload_file(csv_path, bucket, keys["csv_key"], ExtraArgs={"ContentType": "text/csv"})
        # Metrics and review queue from the rows just written; never fails the batch.
        review = BatchReview.from_environment(
            s3, batch_id=batch.batch_id, model_name=batch.model
        ).record(jsonl_path)
    finally:
        writer.close()
    result = {
        "batch_id": batch.batch_id,
        "model": batch.model,
        "images": summary.images,
        "classified": summary.classified,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "results_jsonl": s3_uri(bucket, keys["jsonl_key"]),
        "results_csv": s3_uri(bucket, keys["csv_key"]),
        **judge(
            failure,
            batch_id=batch.batch_id,
            classified=summary.classified,
            without_output=summary.without_output,
            deleted=summary.deleted,
        ).to_dict(),
    }
    logger.info(
        "batch decoded",
        extra={
            **result,
            "unmatched_outputs": summary.unmatched_outputs,
            "review": review.to_dict(),
        },
    )
    return result
