"""Input checks, before any GPU starts: the execution input's shape, the dataset's
manifest.json and labels.json, and the hyperparameters of the run.

"Read input" -> "Apply defaults" -> the concurrency guard (guard.py) -> "Check input" ->
"Check initial model" -> "Read manifest" -> "Read labels" -> "Check manifest" -> "Full or
incremental?" ("Full training" | "Incremental training": the mode's epochs, input channels
and provenance) -> "Collect hyperparameters" -> "Merge hyperparameters" (config <- mode <-
input <- manifest) -> "Check mini_batch_size type" -> clamp it to the training images -> `then`.

Incremental training (`initial_model`): the algorithm's `model` channel seeded with a
registered version's model.tar.gz; "the input hyperparameters of both the new model and the
pretrained model ... must have the same settings for the num_layers, image_shape and
num_classes" (https://docs.aws.amazon.com/sagemaker/latest/dg/image-classification.html,
"Incremental Training"): num_layers and image_shape come from the config (an execution may
not override them here), num_classes from the manifest (`python -m grocery train
--from-version` compares the labels before starting).
"""

from __future__ import annotations

from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks

from stacks.names import NO_APPROVED_MODEL
from stacks.training.common import FAILURE, Stage, retry_throttling
from stacks.training.guard import concurrency_guard
from stacks.training.job import configured_hyperparameters, input_data_config
from stacks.training.names import LABELS_FILE, MANIFEST_FILE, TRAINING_JOBS_PREFIX
from stacks.training.training_config import MAX_TUNING_JOBS, MAX_TUNING_PARALLEL_JOBS

# The network's shape: an incremental training must keep the version's.
NETWORK_HYPERPARAMETERS = ("num_layers", "image_shape")


def input_checks(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    """The first state of the definition; a valid run continues with `then`."""
    checks = _check_input(
        stage, _check_initial_model(stage, _check_tuning(stage, _read_dataset(stage, then)))
    )
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
                # false: a full training (CDK drops None from Pass parameters).
                "initial_model": False,
                # false: one training job; an object: a tuning run (tuning.py).
                "tuning": False,
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
        '(e.g. "ml.p3.2xlarge"), "initial_model" and "tuning"; see docs/training.md.',
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


def _check_initial_model(stage: Stage, then: sfn.IChainable) -> sfn.Choice:
    """`initial_model` is false (full training) or {"version", "model_data"} of a version
    whose artifact is in this deployment's artifacts bucket, under training-jobs/ (what the
    training role may read: roles.py, WriteModelArtifactsAndCheckpoints)."""
    artifacts = stage.res.artifacts.bucket_name
    model, version, data = (
        "$.initial_model",
        "$.initial_model.version",
        "$.initial_model.model_data",
    )
    reject = stage.fail(
        "Reject initial model",
        "InvalidInput",
        'initial_model must be {"version": "<registered version number, as a string>", '
        f'"model_data": "s3://{artifacts}/{TRAINING_JOBS_PREFIX}<job>/output/model.tar.gz"}} '
        "(the version's InferenceSpecification.Containers[0].ModelDataUrl, in this "
        "deployment's artifacts bucket); `python -m grocery train --from-version 3` fills "
        "it in. Omit it for a full training.",
    )
    keeps_network = stage.fail(
        "Reject network change",
        "InvalidInput",
        "hyperparameters num_layers and image_shape define the network: an incremental "
        "training (initial_model) keeps the version's; start a full training (without "
        "initial_model) to change them.",
    )
    valid = sfn.Condition.and_(
        sfn.Condition.is_present(version),
        sfn.Condition.is_string(version),
        sfn.Condition.not_(sfn.Condition.string_equals(version, "")),
        sfn.Condition.is_present(data),
        sfn.Condition.is_string(data),
        sfn.Condition.string_matches(data, f"s3://{artifacts}/{TRAINING_JOBS_PREFIX}*.tar.gz"),
    )
    overrides_network = sfn.Condition.or_(
        *(sfn.Condition.is_present(f"$.hyperparameters.{key}") for key in NETWORK_HYPERPARAMETERS)
    )
    return (
        sfn.Choice(stage.scope, "Check initial model")
        .when(
            sfn.Condition.and_(
                sfn.Condition.is_boolean(model), sfn.Condition.boolean_equals(model, False)
            ),
            then,
        )
        .when(sfn.Condition.and_(valid, overrides_network), keeps_network)
        .when(valid, then)
        .otherwise(reject)
    )


def _check_tuning(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    """`tuning` is false (one training job) or {"max_jobs", "max_parallel_jobs",
    "warm_start_from"}, each optional (config tuning_max_jobs / tuning_max_parallel_jobs);
    the tuned hyperparameters may not be set by the run."""
    scope, config = stage.scope, stage.config
    jobs, parallel, warm = (
        "$.tuning.max_jobs",
        "$.tuning.max_parallel_jobs",
        "$.tuning.warm_start_from",
    )
    reject = stage.fail(
        "Reject tuning",
        "InvalidInput",
        f'tuning must be {{"max_jobs": 1-{MAX_TUNING_JOBS}, "max_parallel_jobs": 1-'
        f'{MAX_TUNING_PARALLEL_JOBS} and at most max_jobs, "warm_start_from": "<an earlier '
        'tuning job name>"}, each optional, numbers as JSON numbers; omit it for one '
        "training job.",
    )
    tuned = sorted(config.tuning_ranges)
    reject_tuned = stage.fail(
        "Reject tuned hyperparameter",
        "InvalidInput",
        f"hyperparameters {', '.join(tuned)} are tuned (config tuning_ranges): a tuning run "
        "may not also set them; drop them from hyperparameters or change tuning_ranges.",
    )
    limits = sfn.Pass(
        scope,
        "Tuning limits",
        parameters={
            "defaults": {
                "max_jobs": config.tuning_max_jobs,
                "max_parallel_jobs": config.tuning_max_parallel_jobs,
            },
            "requested": sfn.JsonPath.object_at("$.tuning"),
        },
        result_path="$.tuning",
    )
    merge = sfn.Pass(
        scope,
        "Merge tuning limits",
        parameters={
            "merged": sfn.JsonPath.json_merge(
                sfn.JsonPath.object_at("$.tuning.defaults"),
                sfn.JsonPath.object_at("$.tuning.requested"),
            )
        },
        result_path="$.tuning",
    )
    use = sfn.Pass(scope, "Use tuning limits", input_path="$.tuning.merged", result_path="$.tuning")
    valid = sfn.Condition.and_(
        sfn.Condition.is_numeric(jobs),
        sfn.Condition.number_greater_than_equals(jobs, 1),
        sfn.Condition.number_less_than_equals(jobs, MAX_TUNING_JOBS),
        sfn.Condition.is_numeric(parallel),
        sfn.Condition.number_greater_than_equals(parallel, 1),
        sfn.Condition.number_less_than_equals(parallel, MAX_TUNING_PARALLEL_JOBS),
        sfn.Condition.number_less_than_equals_json_path(parallel, jobs),
        sfn.Condition.or_(
            sfn.Condition.not_(sfn.Condition.is_present(warm)),
            sfn.Condition.and_(
                sfn.Condition.is_string(warm),
                sfn.Condition.not_(sfn.Condition.string_equals(warm, "")),
            ),
        ),
    )
    sets_tuned = sfn.Condition.or_(
        *(sfn.Condition.is_present(f"$.hyperparameters.{key}") for key in tuned)
    )
    check = (
        sfn.Choice(scope, "Check tuning limits")
        .when(sfn.Condition.not_(valid), reject)
        .when(sets_tuned, reject_tuned)
        .otherwise(then)
    )
    return (
        sfn.Choice(scope, "Check tuning")
        .when(
            sfn.Condition.and_(
                sfn.Condition.is_boolean("$.tuning"),
                sfn.Condition.boolean_equals("$.tuning", False),
            ),
            then,
        )
        .when(_is_object("$.tuning"), limits.next(merge).next(use).next(check))
        .otherwise(reject)
    )


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
        _check_manifest(stage, _training_mode(stage, _hyperparameters(stage, then)))
    )


def _training_mode(stage: Stage, then: sfn.IChainable) -> sfn.Choice:
    """`$.mode`: the mode's hyperparameter defaults, input channels and the provenance the
    version records (trained_from_version)."""
    full = sfn.Pass(
        stage.scope,
        "Full training",
        parameters={
            "hyperparameters": {},
            "channels": input_data_config(stage.res, incremental=False),
            "provenance": {
                "trained_from_version": NO_APPROVED_MODEL,
                "tuning_summary": NO_APPROVED_MODEL,
            },
        },
        result_path="$.mode",
    )
    incremental = sfn.Pass(
        stage.scope,
        "Incremental training",
        comment="Seeded with the version's model (model channel); fewer epochs by default",
        parameters={
            "hyperparameters": {"epochs": str(stage.config.incremental_epochs)},
            "channels": input_data_config(stage.res, incremental=True),
            "provenance": {
                "trained_from_version": sfn.JsonPath.string_at("$.initial_model.version"),
                "tuning_summary": NO_APPROVED_MODEL,
            },
        },
        result_path="$.mode",
    )
    return (
        sfn.Choice(stage.scope, "Full or incremental?")
        .when(sfn.Condition.is_boolean("$.initial_model"), full.next(then))
        .otherwise(incremental.next(then))
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


def _merged(configured: str) -> str:
    """configured <- mode <- requested (execution input) <- manifest."""
    return sfn.JsonPath.json_merge(
        sfn.JsonPath.json_merge(
            sfn.JsonPath.json_merge(
                sfn.JsonPath.object_at(configured), sfn.JsonPath.object_at("$.mode")
            ),
            sfn.JsonPath.object_at("$.requested"),
        ),
        sfn.JsonPath.object_at("$.from_manifest"),
    )


def _hyperparameters(stage: Stage, then: sfn.IChainable) -> sfn.IChainable:
    scope, manifest = stage.scope, "$.manifest.content"
    configured = configured_hyperparameters(stage.config)
    collect = sfn.Pass(
        scope,
        "Collect hyperparameters",
        comment="Configured, requested (execution input) and manifest values, in merge order",
        parameters={
            "dataset": sfn.JsonPath.string_at("$.dataset"),
            "instance_type": sfn.JsonPath.string_at("$.instance_type"),
            "configured": configured,
            # A tuning run's StaticHyperParameters: without the tuned ones.
            "configured_static": {
                k: v for k, v in configured.items() if k not in stage.config.tuning_ranges
            },
            "tuning": sfn.JsonPath.object_at("$.tuning"),
            "mode": sfn.JsonPath.object_at("$.mode.hyperparameters"),
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
            "input_data_config": sfn.JsonPath.list_at("$.mode.channels"),
            "provenance": sfn.JsonPath.object_at("$.mode.provenance"),
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
            "input_data_config": sfn.JsonPath.list_at("$.input_data_config"),
            "provenance": sfn.JsonPath.object_at("$.provenance"),
            "tuning": sfn.JsonPath.object_at("$.tuning"),
            "static_hyperparameters": _merged("$.configured_static"),
            "hyperparameters": _merged("$.configured"),
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
