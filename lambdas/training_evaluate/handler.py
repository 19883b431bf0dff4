"""Scores the new model's predictions on the dataset's held-out `test/` channel.

Input (built by the training state machine):
    {"truth": {"bucket", "lst_key", "labels_key"},      # test_lst/test.lst, labels.json
     "predictions": {"bucket", "prefix"},                # the transform job's output folder
     "report": {"bucket", "key"},                        # evaluation.json beside the model
     "threshold": 0.75}
Output: {"test_accuracy", "top5_accuracy", "images", "missing_predictions", "report_uri",
"passed"}; the state machine gates on "passed". The report also holds the version's
drift baseline, `predicted_distribution` (grocery_common.drift).

The transform job writes `<prefix><path relative to test/>.out` for every image it
classified; each `.lst` line is `index<TAB>class id<TAB>path relative to test/`. Outputs
are matched to `.lst` paths by the rule the batch decode step uses
(grocery_common.transform_outputs). An image without a prediction counts as wrong (a
model that cannot classify it must not pass the gate).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from grocery_common.drift import BASELINE_FIELD, predicted_distribution
from grocery_common.evaluation import Sample, evaluate
from grocery_common.labels import parse_labels, parse_probabilities
from grocery_common.transform_outputs import find_outputs

logger = Logger()
READERS = 16


class TruthError(ValueError):
    """The test channel's truth is unusable; the message says which line and why."""


def parse_lst(text: str, num_classes: int) -> dict[str, int]:
    """{relative path: class id} from a `.lst` file (REFERENCE.md section 1)."""
    truth: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            raise TruthError(f"test.lst line {number}: expected index<TAB>class id<TAB>path")
        class_id = int(parts[1])
        if class_id >= num_classes:
            raise TruthError(
                f"test.lst line {number}: class id {class_id} but labels.json has {num_classes}"
            )
        truth[parts[2].strip()] = class_id
    if not truth:
        raise TruthError("test.lst lists no image")
    return truth


def ranking(probabilities: list[float]) -> tuple[int, ...]:
    """Class ids, most probable first; ties go to the lower class id."""
    return tuple(sorted(range(len(probabilities)), key=lambda i: (-probabilities[i], i)))


def score(
    truth: dict[str, int], predictions: dict[str, list[float]], labels: list[str]
) -> tuple[dict[str, Any], int]:
    """(Evaluation.to_dict() over every test image, images without a prediction)."""
    samples, missing = [], 0
    for path, class_id in truth.items():
        probabilities = predictions.get(path)
        if probabilities is None:
            missing += 1
            # Ranked as everything-but-the-truth: counts as a top-1 (and top-5) miss.
            wrong = tuple(i for i in range(len(labels)) if i != class_id) or (class_id,)
            samples.append(Sample(truth=class_id, ranking=wrong))
            continue
        order = ranking(probabilities)
        samples.append(Sample(truth=class_id, ranking=order, confidence=probabilities[order[0]]))
    return evaluate(samples, labels).to_dict(include_confusion=True), missing


def _read_predictions(
    s3, bucket: str, prefix: str, paths: list[str]
) -> tuple[dict[str, list[float]], int]:
    """({test path: probabilities}, outputs that belong to no test image).

    Outputs are found with the same rule as the batch decode step
    (grocery_common.transform_outputs): listed, then matched by key tail.
    """
    outputs, unmatched = find_outputs(s3, bucket, prefix, paths)

    def read(item: tuple[str, str]) -> tuple[str, list[float]]:
        path, key = item
        return path, parse_probabilities(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(max_workers=READERS) as pool:
        return dict(pool.map(read, sorted(outputs.items()))), len(unmatched)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    s3 = boto3.client("s3")
    source = event["truth"]
    labels = parse_labels(
        s3.get_object(Bucket=source["bucket"], Key=source["labels_key"])["Body"].read()
    )
    lst = s3.get_object(Bucket=source["bucket"], Key=source["lst_key"])["Body"].read()
    truth = parse_lst(lst.decode("utf-8"), len(labels))
    where = event["predictions"]
    predictions, unmatched = _read_predictions(s3, where["bucket"], where["prefix"], sorted(truth))
    metrics, missing = score(truth, predictions, labels)
    threshold = float(event["threshold"])
    report = {
        "test_accuracy_threshold": threshold,
        "passed": metrics["top1_accuracy"] >= threshold,
        "images": len(truth),
        "missing_predictions": missing,
        "unmatched_outputs": unmatched,
        "labels_key": source["labels_key"],
        "truth": f"s3://{source['bucket']}/{source['lst_key']}",
        "predictions": f"s3://{where['bucket']}/{where['prefix']}",
        **metrics,
        # The drift check's baseline (lambdas/drift_check): top-1 predictions per label of
        # the images the model did classify. Inside the report, whose key the scorer's
        # role may already write (a file beside it would need a new grant).
        BASELINE_FIELD: predicted_distribution(
            [ranking(p)[0] for p in predictions.values()], labels
        ),
    }
    target = event["report"]
    s3.put_object(
        Bucket=target["bucket"],
        Key=target["key"],
        Body=json.dumps(report, indent=2).encode(),
        ContentType="application/json",
    )
    result = {
        "test_accuracy": metrics["top1_accuracy"],
        "top5_accuracy": metrics["top5_accuracy"],
        "images": len(truth),
        "missing_predictions": missing,
        "passed": report["passed"],
        "report_uri": f"s3://{target['bucket']}/{target['key']}",
    }
    logger.info("scored the test channel", extra=result)
    return result
