"""`python -m grocery batch status|rerun BATCH_ID`: inspect and re-run a batch of uploaded photos.

A batch is recorded under `s3://<inference bucket>/batches/<batch id>/` (batch.json,
manifest.json, status.json once a run ended). `rerun` checks that every image of
the batch still exists (the ones deleted since are skipped, with that reason),
rewrites the manifest and starts a new execution of the batch state machine,
which reads the release record again (the released model version, docs/batch.md):
re-run a batch that failed for want of a model once a version was released.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from grocery.aws import session as aws_session
from grocery.errors import CommandError
from grocery.stack_outputs import stack_output
from grocery_common.batch_layout import BATCH_ID_PATTERN, BatchPaths, is_missing, s3_uri
from stacks.names import stack_name

DELETED_BEFORE_RERUN = "deleted before the batch was re-run"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="inspect or re-run a batch of photos classified from the inference bucket",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--prefix", default="grocery", help="the app's prefix (default: grocery)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, run, text in (
        ("status", run_status, "show a batch's images, skipped objects, runs and results"),
        ("rerun", run_rerun, "run a batch again (after a failure, or with a newer model)"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument(
            "batch_id", metavar="BATCH_ID", help="e.g. 20261125-132557-0123456789ab"
        )
        action.set_defaults(run=run)
    actions.choices["rerun"].add_argument(
        "--force", action="store_true", help="re-run even while a run of this batch is in progress"
    )


class BatchStore:
    """The deployed batch: the inference bucket and the state machine, from the stacks' outputs."""

    def __init__(self, prefix: str, *, session: boto3.Session | None = None) -> None:
        session = session or aws_session()  # AWS_REGION honoured; unknown profile: one line
        self.bucket = stack_output(
            stack_name(prefix, "Storage"), "InferenceBucketName", session=session
        )
        self.state_machine_arn = stack_output(
            stack_name(prefix, "Batch"), "StateMachineArn", session=session
        )
        self.s3 = session.client("s3")
        self.sfn = session.client("stepfunctions")

    def read_json(self, key: str) -> Any | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if is_missing(error):
                return None
            raise CommandError(f"cannot read {s3_uri(self.bucket, key)}: {error}") from None
        return json.loads(body)

    def write_json(self, key: str, document: Any) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(document, ensure_ascii=False, indent=1).encode(),
            ContentType="application/json",
        )

    def record(self, batch_id: str) -> tuple[BatchPaths, dict[str, Any]]:
        check_batch_id(batch_id)
        paths = BatchPaths(bucket=self.bucket, batch_id=batch_id)
        record = self.read_json(paths.record_key)
        if record is None:
            raise CommandError(
                f"batch {batch_id} is not recorded ({s3_uri(self.bucket, paths.record_key)} "
                f"does not exist); list batches with: aws s3 ls s3://{self.bucket}/batches/"
            )
        return paths, record

    def executions(self, batch_id: str) -> list[dict[str, Any]]:
        """This batch's runs, newest first (the first run is named after the batch id)."""
        runs = []
        paginator = self.sfn.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=self.state_machine_arn):
            runs.extend(
                e
                for e in page["executions"]
                if e["name"] == batch_id or e["name"].startswith(f"{batch_id}-r")
            )
        return sorted(runs, key=lambda e: e["startDate"], reverse=True)


def check_batch_id(batch_id: str) -> None:
    """A batch id is checked before anything reaches AWS."""
    if not BATCH_ID_PATTERN.match(batch_id):
        raise CommandError(
            f"{batch_id!r} is not a batch id (like 20261125-132557-0123456789ab: the results "
            "are results/<batch id>.jsonl; list the batches with: "
            "aws s3 ls s3://<inference bucket>/batches/)"
        )


def rerun_execution_name(batch_id: str, now: float | None = None) -> str:
    """`<batch id>-r<seconds since 1970 in base 36>`: unique, short enough for the job name."""
    seconds = int(time.time() if now is None else now)
    digits = ""
    while True:
        seconds, digit = divmod(seconds, 36)
        digits = _BASE36[digit] + digits
        if not seconds:
            return f"{batch_id}-r{digits}"


def _aws_errors(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """AWS errors become one line (credentials, permissions, throttling), not a traceback."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (BotoCoreError, ClientError) as error:
            raise CommandError(
                f"AWS refused or could not be reached ({error}); check your credentials, "
                "region and permissions"
            ) from None

    return wrapper


@_aws_errors
def run_status(args: argparse.Namespace) -> int:
    check_batch_id(args.batch_id)
    store = BatchStore(args.prefix)
    paths, record = store.record(args.batch_id)
    print(
        f"batch {paths.batch_id}: {len(record['images'])} images, {len(record['skipped'])} skipped"
    )
    for skipped in record["skipped"]:
        print(f"  skipped {s3_uri(paths.bucket, skipped['key'])}: {skipped['reason']}")
    runs = store.executions(paths.batch_id)
    for run in runs:
        print(
            f"  run {run['name']}: {run['status']} (started {run['startDate']:%Y-%m-%d %H:%M:%S})"
        )
    if not runs:
        print("  no run found (runs are kept 90 days)")
    status = store.read_json(paths.status_key)
    if status:
        print(f"last run: {status['status']}")
        if (status.get("error") or {}).get("Cause"):
            print(f"  cause: {status['error']['Cause']}")
        # The state machine writes what to do next; a re-run only where it can help.
        if status.get("advice"):
            print(f"  next: {status['advice']}")
        elif status["status"] == "FAILED":  # a status written before the advice existed
            print(f"  re-run it with: python -m grocery batch rerun {paths.batch_id}")
        results = status.get("results") or {}
        for key in ("results_jsonl", "results_csv"):
            if key in results:
                print(f"  results: {results[key]}")
    return 0


@_aws_errors
def run_rerun(args: argparse.Namespace) -> int:
    check_batch_id(args.batch_id)
    store = BatchStore(args.prefix)
    paths, record = store.record(args.batch_id)
    running = [
        run["name"] for run in store.executions(paths.batch_id) if run["status"] == "RUNNING"
    ]
    if running and not args.force:
        raise CommandError(
            f"batch {paths.batch_id} is being classified right now ({', '.join(running)}); "
            "wait for it to end, or pass --force"
        )
    record = recheck_images(store, record)
    execution_input = paths.execution_input(
        image_count=len(record["images"]), skipped_count=len(record["skipped"])
    )
    record["execution_input"] = execution_input
    name = rerun_execution_name(paths.batch_id)
    record.setdefault("reruns", []).append(name)
    manifest = [{"prefix": s3_uri(paths.bucket, "")}, *(image["key"] for image in record["images"])]
    store.write_json(paths.manifest_key, manifest)
    store.write_json(paths.record_key, record)
    execution = store.sfn.start_execution(
        stateMachineArn=store.state_machine_arn, name=name, input=json.dumps(execution_input)
    )
    print(
        f"re-running batch {paths.batch_id} as {name}: {len(record['images'])} images, "
        f"{len(record['skipped'])} skipped\n  execution: {execution['executionArn']}\n"
        f"  follow it with: python -m grocery batch status {paths.batch_id}"
    )
    return 0


def recheck_images(store: BatchStore, record: dict[str, Any]) -> dict[str, Any]:
    """The record with images deleted since the batch started moved to `skipped`."""

    def exists(image: dict[str, Any]) -> bool:
        try:
            store.s3.head_object(Bucket=store.bucket, Key=image["key"])
        except ClientError as error:
            if is_missing(error):
                return False
            raise CommandError(
                f"cannot check {s3_uri(store.bucket, image['key'])}: {error}"
            ) from None
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        present = list(pool.map(exists, record["images"]))
    images = [image for image, ok in zip(record["images"], present, strict=True) if ok]
    gone = [
        {
            "key": image["key"],
            "size": image["size"],
            "version_id": image["version_id"],
            "reason": DELETED_BEFORE_RERUN,
        }
        for image, ok in zip(record["images"], present, strict=True)
        if not ok
    ]
    return {**record, "images": images, "skipped": [*record["skipped"], *gone]}
