"""Daily drift check: the served version's recent predicted-class mix against its baseline.

Scheduled once a day (EventBridge). Environment: RELEASE_PARAMETER (the release record,
/<prefix>/release/model-package-arn), PREDICTION_METRICS_NAMESPACE.

1. The served version: the release record -> model package ARN `.../<group>/<N>`.
2. Its baseline (grocery_common.drift says why two and which is weaker), from
   DescribeModelPackage -> CustomerMetadataProperties:
   - "test split predictions": test_report (the test gate's evaluation.json) ->
     `predicted_distribution`;
   - else "training split labels": dataset_manifest s3://<data>/datasets/<name>/manifest.json
     -> that dataset's labels.json and train_lst/train.lst, images counted per label
     (streamed line by line; a malformed line means no score, with the line in the log).
   The result, the log and the EMF metadata (`baseline`) say which was used.
3. What it predicted lately: ClassPredictions{ModelVersion=N, Label} from CloudWatch
   (GetMetricData, daily sums over the last MAX_WINDOW_DAYS days), API and batch together,
   the newest days first until the window holds enough predictions.
4. Publishes PredictionDriftPSI (no dimension, which the alarm watches, and per
   ModelVersion), DriftWindowPredictions and DriftWindowDays as EMF.

The metrics are CloudWatch's rather than the batch results and the review queue: only
the metrics count every API answer (the API keeps only the unsure ones).
Without a release, a baseline or enough predictions it publishes no score, says why in
its log and result, and succeeds: nothing is wrong with the system then.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from botocore.exceptions import ClientError

from grocery_common import confidence_metrics as cm
from grocery_common import drift
from grocery_common.batch_layout import parse_s3_uri
from grocery_common.labels import LabelError, parse_labels

logger = Logger()

NO_RELEASE = "none"
TEST_REPORT = "test_report"  # stacks/names.py METADATA_TEST_REPORT
DATASET_MANIFEST = "dataset_manifest"  # stacks/names.py METADATA_DATASET_MANIFEST
# The dataset layout of preprocessing prepare/upload (preprocessing/manifest.py lst_relpath).
DATASETS_PREFIX = "datasets/"
MANIFEST_FILE = "manifest.json"
LABELS_FILE = "labels.json"
TRAIN_LST = "train_lst/train.lst"
BASELINE_KEY = "baseline"
DRIFT_SCORE = "PredictionDriftPSI"
DRIFT_PREDICTIONS = "DriftWindowPredictions"
DRIFT_WINDOW_DAYS = "DriftWindowDays"
DAY = 86400
MAX_QUERIES = 500  # GetMetricData's limit per call


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def daily_counts(
    cloudwatch: Any, namespace: str, version: str, labels: Sequence[str], end: dt.datetime
) -> list[dict[str, float]]:
    """[{label: count}] per day, newest first, for the MAX_WINDOW_DAYS days before `end`.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
    """
    start = end - dt.timedelta(days=drift.MAX_WINDOW_DAYS)
    days = [start + dt.timedelta(days=i) for i in range(drift.MAX_WINDOW_DAYS)]
    per_day: list[dict[str, float]] = [{} for _ in days]
    for offset in range(0, len(labels), MAX_QUERIES):
        chunk = labels[offset : offset + MAX_QUERIES]
        queries = [
            {
                "Id": f"m{offset + i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": cm.CLASS_PREDICTIONS,
                        "Dimensions": [
                            {"Name": cm.MODEL_VERSION, "Value": version},
                            {"Name": cm.LABEL, "Value": label},
                        ],
                    },
                    "Period": DAY,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for i, label in enumerate(chunk)
        ]
        token = None
        while True:
            kwargs = {"NextToken": token} if token else {}
            page = cloudwatch.get_metric_data(
                MetricDataQueries=queries, StartTime=start, EndTime=end, **kwargs
            )
            for result in page["MetricDataResults"]:
                label = labels[int(result["Id"][1:])]
                for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                    index = int((stamp - start).total_seconds() // DAY)
                    if 0 <= index < len(days):
                        per_day[index][label] = per_day[index].get(label, 0) + value
            token = page.get("NextToken")
            if not token:
                break
    return list(reversed(per_day))


def window(days: Sequence[Mapping[str, float]], needed: int) -> tuple[dict[str, float], int]:
    """The newest days summed until they hold `needed` predictions: (counts, days used)."""
    counts: dict[str, float] = {}
    for used, day in enumerate(days, start=1):
        for label, value in day.items():
            counts[label] = counts.get(label, 0) + value
        if sum(counts.values()) >= needed:
            return counts, used
    return counts, len(days)


def _publish(
    namespace: str, version: str, values: Mapping[str, tuple[str, float]], baseline: str
) -> None:
    for dimension in (None, version):  # all versions (the alarm), then this version
        metrics = EphemeralMetrics(namespace=namespace)
        metrics.service = None
        if dimension:
            metrics.add_dimension(cm.MODEL_VERSION, dimension)
        # Metadata, not a dimension: the alarm's metric stays one series whichever baseline.
        metrics.add_metadata(BASELINE_KEY, baseline)
        for name, (unit, value) in values.items():
            metrics.add_metric(name, unit, value)
        metrics.flush_metrics()


class DriftCheck:
    def __init__(
        self,
        *,
        ssm: Any,
        sagemaker: Any,
        s3: Any,
        cloudwatch: Any,
        release_parameter: str,
        namespace: str,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self.ssm, self.sagemaker, self.s3, self.cloudwatch = ssm, sagemaker, s3, cloudwatch
        self.release_parameter = release_parameter
        self.namespace = namespace
        self.clock = clock

    def run(self) -> dict[str, Any]:
        arn = self.ssm.get_parameter(Name=self.release_parameter)["Parameter"]["Value"]
        if arn == NO_RELEASE:
            return self._skip("no_release", "no version is released yet: nothing to compare")
        version = arn.rsplit("/", 1)[-1]
        package = self.sagemaker.describe_model_package(ModelPackageName=arn)
        metadata = package.get("CustomerMetadataProperties", {})
        try:
            source, baseline = self._baseline(metadata, version)
        except drift.DriftError as error:
            return self._skip("no_baseline", str(error), version=version)
        labels = sorted(baseline)
        # Whole days ending at today's 00:00 UTC: the same window whenever the rule fires.
        end = self.clock().replace(hour=0, minute=0, second=0, microsecond=0)
        days = daily_counts(self.cloudwatch, self.namespace, version, labels, end)
        needed = drift.minimum_predictions(len(labels))
        recent, used = window(days, needed)
        total = sum(recent.values())
        values = {
            DRIFT_PREDICTIONS: (MetricUnit.Count, total),
            DRIFT_WINDOW_DAYS: (MetricUnit.Count, used),
        }
        if total < needed:
            _publish(self.namespace, version, values, source)
            return self._skip(
                "too_few_predictions",
                f"{total:g} predictions of version {version} in {used} days, {needed} needed "
                "for a score above sampling noise",
                version=version,
                baseline=source,
            )
        score = drift.population_stability_index(recent, baseline, labels)
        _publish(
            self.namespace, version, {DRIFT_SCORE: (MetricUnit.NoUnit, score), **values}, source
        )
        result = {
            "status": "scored",
            "version": version,
            "baseline": source,
            "baseline_images": sum(baseline.values()),
            "psi": score,
            "predictions": total,
            "days": used,
            "drifted": score > drift.ALARM_THRESHOLD,
        }
        logger.info("drift scored", extra=result)
        return result

    def _baseline(self, metadata: Mapping[str, str], version: str) -> tuple[str, dict[str, int]]:
        """(which baseline, {label: count}): the test split's predictions when the version
        has them, else its training split's labels (grocery_common.drift says why)."""
        report_uri = metadata.get(TEST_REPORT)
        if report_uri:
            bucket, key = parse_s3_uri(report_uri)
            report = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            try:
                return drift.TEST_BASELINE, drift.read_baseline(report, where=report_uri)
            except drift.DriftError as error:
                why = str(error)
        else:
            why = f"version {version} has no test report (the test gate was off)"
        logger.info(
            "no test split baseline, using the training split's labels",
            extra={"version": version, "reason": why},
        )
        try:
            return drift.TRAINING_BASELINE, self._training_labels(metadata, version)
        except drift.DriftError as error:
            raise drift.DriftError(
                f"{why}; and the training split baseline is unusable: {error}. Train with "
                "test_accuracy_threshold > 0 for a test split baseline"
            ) from None

    def _training_labels(self, metadata: Mapping[str, str], version: str) -> dict[str, int]:
        """{label: images} of the version's train .lst: dataset_manifest
        s3://<data>/<dataset>manifest.json -> <dataset>labels.json, <dataset>train_lst/train.lst."""
        manifest_uri = metadata.get(DATASET_MANIFEST)
        if not manifest_uri:
            raise drift.DriftError(f"version {version} records no {DATASET_MANIFEST}")
        try:
            bucket, key = parse_s3_uri(manifest_uri)
        except ValueError as error:
            raise drift.DriftError(f"{DATASET_MANIFEST}: {error}") from None
        if not key.endswith(f"/{MANIFEST_FILE}") or not key.startswith(DATASETS_PREFIX):
            # The role may read only datasets/*/labels.json and datasets/*/train_lst/train.lst.
            raise drift.DriftError(
                f"{DATASET_MANIFEST} {manifest_uri} is not a {DATASETS_PREFIX}<name>/"
                f"{MANIFEST_FILE}, the only datasets the drift check may read"
            )
        dataset = key[: -len(MANIFEST_FILE)]
        labels_uri = f"s3://{bucket}/{dataset}{LABELS_FILE}"
        try:
            labels = parse_labels(
                self._read(bucket, dataset + LABELS_FILE).read(), source=labels_uri
            )
        except LabelError as error:
            raise drift.DriftError(str(error)) from None
        lst_uri = f"s3://{bucket}/{dataset}{TRAIN_LST}"
        body = self._read(bucket, dataset + TRAIN_LST)
        try:
            return drift.count_lst_labels(body.iter_lines(), labels, where=lst_uri)
        finally:
            body.close()

    def _read(self, bucket: str, key: str) -> Any:
        """The object's streaming body; a dataset that is gone is a reason, not a crash."""
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in {"NoSuchKey", "AccessDenied"}:
                raise drift.DriftError(f"cannot read s3://{bucket}/{key} ({code})") from None
            raise

    @staticmethod
    def _skip(status: str, reason: str, **fields: Any) -> dict[str, Any]:
        logger.warning("no drift score", extra={"status": status, "reason": reason, **fields})
        return {"status": status, "reason": reason, **fields}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return DriftCheck(
        ssm=boto3.client("ssm"),
        sagemaker=boto3.client("sagemaker"),
        s3=boto3.client("s3"),
        cloudwatch=boto3.client("cloudwatch"),
        release_parameter=os.environ["RELEASE_PARAMETER"],
        namespace=os.environ.get(cm.NAMESPACE_VARIABLE, cm.DEFAULT_NAMESPACE),
    ).run()
