"""Input checks, before any GPU starts: the execution input's shape, the dataset's
manifest.json and labels.json, and the hyperparameters of the run.

"Read input" -> "Apply defaults" -> the concurrency guard (guard.py) -> "Check input" -> "Read manifest" -> "Read labels" ->
"Check manifest" -> "Collect hyperparameters" -> "Merge hyperparameters" (config <- input
<- manifest) -> "Check mini_batch_size type" -> clamp it to the training images -> `then`.
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from stacks.training.common import FAILURE, Stage, retry_throttling
from stacks.training.guard import concurrency_guard
from stacks.training.names import LABELS_FILE, MANIFEST_FILE


def input_checks(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    """The first state of the definition; a valid run continues with `then`."""
    checks = _check_input(stage, _read_dataset(stage, then))
    return _read_input(stage).next(concurrency_guard(stage, checks))


def _read_input(stage: Stage) -> sfn.Chain:
    read = sfn.Pass(
        stage.scope,
        "Read input",
        comment="Execution input beside its defaults (instance type from the config)",
        parameters={
            "defaults": {
                "hyperparameters": {},
                "instance_type": stage.config.training_instance_type,
            },
            "input": sfn.JsonPath.entire_payload,
        },
    )
    apply = sfn.Pass(
        stage.scope,
        "Apply defaults",
        parameters={
            "request": sfn.JsonPath.json_merge(
                sfn.JsonPath.object_at("$.defaults"), sfn.JsonPath.object_at("$.input")
            )
        },
        output_path="$.request",
    )
    return read.next(apply)


def _is_object(path: str) -> sfn.Condition:
    """None of the scalar types (Choice rules have no IsObject); presence is checked apart."""
    return sfn.Condition.not_(
        sfn.Condition.or_(
            sfn.Condition.is_null(path),
            sfn.Condition.is_string(path),
            sfn.Condition.is_numeric(path),
            sfn.Condition.is_boolean(path),
        )
    )


def _check_input(stage: Stage, then: sfn.IChainable) -> sfn.Choice:
    reject = stage.fail(
        "Reject input",
        "InvalidInput",
        "The execution input must be "
        '{"dataset": "<key prefix in the training-data bucket, ending with />"} '
        'with optional "hyperparameters" (an object of strings) and "instance_type" '
        '(e.g. "ml.p3.2xlarge"); see docs/training.md.',
    )
    dataset, hps, instance = "$.dataset", "$.hyperparameters", "$.instance_type"
    valid = sfn.Condition.and_(
        sfn.Condition.is_present(dataset),
        sfn.Condition.is_string(dataset),
        sfn.Condition.string_matches(dataset, "*/"),
        sfn.Condition.not_(sfn.Condition.string_matches(dataset, "s3:*")),
        sfn.Condition.not_(sfn.Condition.string_matches(dataset, "/*")),
        sfn.Condition.is_string(instance),
        sfn.Condition.string_matches(instance, "ml.*"),
        _is_object(hps),
    )
    return sfn.Choice(stage.scope, "Check input").when(valid, then).otherwise(reject)


def read_dataset_file(
    stage: Stage, state_name: str, file_name: str, *, result_selector: dict, result_path: str
) -> tasks.CallAwsService:
    """GetObject of `<dataset>/<file_name>` from the training-data bucket, parsed as JSON."""
    training_data = stage.res.training_data
    return tasks.CallAwsService(
        stage.scope,
        state_name,
        service="s3",
        action="getObject",
        parameters={
            "Bucket": training_data.bucket_name,
            "Key": sfn.JsonPath.format(f"{{}}{file_name}", sfn.JsonPath.string_at("$.dataset")),
        },
        iam_action="s3:GetObject",
        iam_resources=[training_data.arn_for_objects(f"*/{file_name}")],
        result_selector=result_selector,
        result_path=result_path,
    )


def _read_dataset(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    bucket = stage.res.training_data.bucket_name
    body = sfn.JsonPath.string_to_json(sfn.JsonPath.string_at("$.Body"))
    read_manifest = read_dataset_file(
        stage,
        "Read manifest",
        MANIFEST_FILE,
        result_selector={"content": body},
        result_path="$.manifest",
    )
    # Only the label count is kept: the check compares it with num_classes.
    read_labels = read_dataset_file(
        stage,
        "Read labels",
        LABELS_FILE,
        result_selector={"count": sfn.JsonPath.array_length(body)},
        result_path="$.labels",
    )
    for state, missing in ((read_manifest, MANIFEST_FILE), (read_labels, LABELS_FILE)):
        retry_throttling(state, "s3")
        not_found = stage.fail(
            f"Missing {missing}",
            "DatasetIncomplete",
            sfn.JsonPath.format(
                f"No {missing} under s3://{bucket}/{{}}: pass the key prefix of a dataset "
                "uploaded with `python -m preprocessing upload` (it writes manifest.json last).",
                sfn.JsonPath.string_at("$.dataset"),
            ),
        )
        state.add_catch(not_found, errors=["S3.NoSuchKeyException"], result_path=FAILURE)
        stage.catch(state)
    return read_manifest.next(read_labels).next(
        _check_manifest(stage, _hyperparameters(stage, then))
    )


def _check_manifest(stage: Stage, then: sfn.IChainable) -> sfn.Choice:
    classes, samples = (
        "$.manifest.content.num_classes",
        "$.manifest.content.num_training_samples",
    )
    fields_missing = stage.fail(
        "Manifest lacks counts",
        "ManifestInvalid",
        sfn.JsonPath.format(
            f"{MANIFEST_FILE} under {{}} must hold the numbers num_classes and "
            "num_training_samples (as written by `python -m preprocessing prepare`).",
            sfn.JsonPath.string_at("$.dataset"),
        ),
    )
    inconsistent = stage.fail(
        "Manifest inconsistent",
        "ManifestInvalid",
        sfn.JsonPath.format(
            f"{MANIFEST_FILE} under {{}} is inconsistent: num_classes={{}} (needs >= 2 and "
            f"the {LABELS_FILE} length, {{}}), num_training_samples={{}} (needs >= 1).",
            sfn.JsonPath.string_at("$.dataset"),
            sfn.JsonPath.string_at(classes),
            sfn.JsonPath.string_at("$.labels.count"),
            sfn.JsonPath.string_at(samples),
        ),
    )
    has_counts = sfn.Condition.and_(
        sfn.Condition.is_present(classes),
        sfn.Condition.is_numeric(classes),
        sfn.Condition.is_present(samples),
        sfn.Condition.is_numeric(samples),
    )
    consistent = sfn.Condition.and_(
        sfn.Condition.number_greater_than_equals(classes, 2),
        sfn.Condition.number_equals_json_path(classes, "$.labels.count"),
        sfn.Condition.number_greater_than_equals(samples, 1),
    )
    check = (
        sfn.Choice(stage.scope, "Check manifest")
        .when(sfn.Condition.not_(has_counts), fields_missing)
        .when(sfn.Condition.not_(consistent), inconsistent)
    )
    threshold = stage.config.test_accuracy_threshold
    if threshold > 0:
        tests = "$.manifest.content.num_test_samples"
        no_test_channel = stage.fail(
            "No test channel",
            "ManifestInvalid",
            sfn.JsonPath.format(
                f"the test accuracy gate is on (test_accuracy_threshold={threshold}) but "
                f"{MANIFEST_FILE} under {{}} counts no test images (num_test_samples): prepare "
                "the dataset with a test split, or set test_accuracy_threshold=0.",
                sfn.JsonPath.string_at("$.dataset"),
            ),
        )
        has_tests = sfn.Condition.and_(
            sfn.Condition.is_present(tests),
            sfn.Condition.is_numeric(tests),
            sfn.Condition.number_greater_than_equals(tests, 1),
        )
        check.when(sfn.Condition.not_(has_tests), no_test_channel)
    return check.otherwise(then)


def _hyperparameters(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    scope, manifest = stage.scope, "$.manifest.content"
    collect = sfn.Pass(
        scope,
        "Collect hyperparameters",
        comment="Configured, requested (execution input) and manifest values, in merge order",
        parameters={
            "dataset": sfn.JsonPath.string_at("$.dataset"),
            "instance_type": sfn.JsonPath.string_at("$.instance_type"),
            "configured": dict(stage.config.hyperparameters),
            "requested": sfn.JsonPath.object_at("$.hyperparameters"),
            "from_manifest": {
                "num_classes": sfn.JsonPath.format(
                    "{}", sfn.JsonPath.string_at(f"{manifest}.num_classes")
                ),
                "num_training_samples": sfn.JsonPath.format(
                    "{}", sfn.JsonPath.string_at(f"{manifest}.num_training_samples")
                ),
            },
            "num_training_samples": sfn.JsonPath.number_at(f"{manifest}.num_training_samples"),
        },
    )
    merge = sfn.Pass(
        scope,
        "Merge hyperparameters",
        comment="num_classes and num_training_samples always come from the manifest",
        parameters={
            "dataset": sfn.JsonPath.string_at("$.dataset"),
            "instance_type": sfn.JsonPath.string_at("$.instance_type"),
            "num_training_samples": sfn.JsonPath.number_at("$.num_training_samples"),
            "hyperparameters": sfn.JsonPath.json_merge(
                sfn.JsonPath.json_merge(
                    sfn.JsonPath.object_at("$.configured"),
                    sfn.JsonPath.object_at("$.requested"),
                ),
                sfn.JsonPath.object_at("$.from_manifest"),
            ),
        },
    )
    mini_batch = "$.hyperparameters.mini_batch_size"
    not_text = stage.fail(
        "Reject mini_batch_size",
        "InvalidInput",
        'hyperparameters.mini_batch_size must be a string holding a whole number, e.g. "32".',
    )
    read_batch = sfn.Pass(
        scope,
        "Read mini-batch size",
        parameters={"value": sfn.JsonPath.string_to_json(sfn.JsonPath.string_at(mini_batch))},
        result_path="$.mini_batch_size",
    )
    clamp = sfn.Pass(
        scope,
        "Clamp mini-batch size",
        comment="The algorithm fails if mini_batch_size exceeds the number of training images",
        input_path="$.hyperparameters.num_training_samples",
        result_path=mini_batch,
    )
    check_batch = (
        sfn.Choice(scope, "Check mini-batch size")
        .when(
            sfn.Condition.number_greater_than_json_path(
                "$.mini_batch_size.value", "$.num_training_samples"
            ),
            clamp.next(then),
        )
        .otherwise(then)
    )
    batch_is_text = (
        sfn.Choice(scope, "Check mini_batch_size type")
        .when(sfn.Condition.is_string(mini_batch), read_batch.next(check_batch))
        .otherwise(not_text)
    )
    return collect.next(merge).next(batch_is_text)
