"""Incremental training (issue 12) in the REAL training definition, executed in moto:
`initial_model` adds the algorithm's model channel and fewer epochs, the version records
where it came from, and a bad initial_model is refused before any GPU starts."""

from __future__ import annotations

from tests.e2e.conftest import ARTIFACTS_BUCKET, DATA_BUCKET, DATASET, PACKAGE_GROUP
from tests.support import sfn_local

MODEL_DATA = f"s3://{ARTIFACTS_BUCKET}/training-jobs/grocery-train-0a1b/output/model.tar.gz"


def test_an_incremental_run_gets_the_model_channel_and_records_its_version(pipeline):
    pipeline.upload_dataset()
    execution = pipeline.start(
        {"dataset": DATASET, "initial_model": {"version": "3", "model_data": MODEL_DATA}}
    )
    params = pipeline.finish_training(execution, accuracy=0.9)

    assert pipeline.wait(execution)["status"] == "SUCCEEDED"
    channels = {c["ChannelName"]: c for c in params["InputDataConfig"]}
    assert list(channels) == ["train", "validation", "train_lst", "validation_lst", "model"]
    model = channels["model"]
    assert (model["ContentType"], model["InputMode"]) == ("application/x-sagemaker-model", "File")
    assert model["DataSource"]["S3DataSource"]["S3Uri"] == MODEL_DATA
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{DATA_BUCKET}/{DATASET}train/"
    )
    hps = params["HyperParameters"]
    assert hps["epochs"] == "10"  # incremental_epochs, not the configured 30
    assert (hps["num_layers"], hps["image_shape"], hps["num_classes"]) == ("50", "3,224,224", "3")
    (summary,) = pipeline.sagemaker.list_model_packages(ModelPackageGroupName=PACKAGE_GROUP)[
        "ModelPackageSummaryList"
    ]
    package = pipeline.sagemaker.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
    assert package["CustomerMetadataProperties"]["trained_from_version"] == "3"


BAD = [
    (
        {"version": "3", "model_data": "s3://elsewhere/training-jobs/j/output/model.tar.gz"},
        {},
        'InvalidInput: initial_model must be {"version"',
    ),
    ({"model_data": MODEL_DATA}, {}, 'InvalidInput: initial_model must be {"version"'),
    (
        {"version": "3", "model_data": MODEL_DATA},
        {"num_layers": "18"},
        "InvalidInput: hyperparameters num_layers and image_shape define the network",
    ),
]


def test_a_bad_initial_model_is_refused_before_training(pipeline):
    # Another bucket, no version, a network override: one moto world for the three.
    pipeline.upload_dataset()
    for initial_model, hyperparameters, cause in BAD:
        execution = pipeline.start(
            {"dataset": DATASET, "initial_model": initial_model, "hyperparameters": hyperparameters}
        )

        result = pipeline.wait(execution)

        assert result["status"] == "FAILED", initial_model
        assert result["cause"].startswith(cause), result["cause"]
        states = sfn_local.state_sequence(pipeline.sfn, execution)
        assert "Read manifest" not in states
        assert states[-2:] == ["Notify failure", "Failed"]
