"""The optional test-set gate's scoring Lambda (lambdas/training_evaluate), on moto S3."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from training_evaluate import handler as evaluate_handler
from training_evaluate.handler import TruthError, parse_lst, ranking, score

from tests.support import sfn_local

LABELS = ["Apple", "Banana", "Cherry"]
# 4 test images: two apples, a banana, a cherry.
LST = "0\t0\tApple/a1.jpg\n1\t0\tApple/a2.jpg\n2\t1\tBanana/b1.jpg\n3\t2\tCherry/c1.jpg\n"


def test_parse_lst_maps_paths_to_class_ids():
    assert parse_lst(LST, 3) == {
        "Apple/a1.jpg": 0,
        "Apple/a2.jpg": 0,
        "Banana/b1.jpg": 1,
        "Cherry/c1.jpg": 2,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0\t7\tx.jpg\n", "class id 7 but labels.json has 3"),
        ("0 0 x.jpg\n", "line 1"),
        ("\n", "no image"),
    ],
)
def test_bad_lst_is_a_clear_error(text, message):
    with pytest.raises(TruthError, match=message):
        parse_lst(text, 3)


def test_ranking_breaks_ties_by_class_id():
    assert ranking([0.2, 0.4, 0.4]) == (1, 2, 0)


def test_score_counts_a_missing_prediction_as_wrong():
    predictions = {
        "Apple/a1.jpg": [0.9, 0.05, 0.05],  # right
        "Banana/b1.jpg": [0.6, 0.3, 0.1],  # wrong (Apple)
        "Cherry/c1.jpg": [0.1, 0.1, 0.8],  # right
    }  # Apple/a2.jpg has no prediction
    metrics, missing = score(parse_lst(LST, 3), predictions, LABELS)
    assert missing == 1
    assert metrics["samples"] == 4
    assert metrics["top1_correct"] == 2
    assert metrics["top1_accuracy"] == 0.5


EVENT = {
    "truth": {"bucket": "data", "lst_key": "ds/test_lst/test.lst", "labels_key": "ds/labels.json"},
    "predictions": {"bucket": "artifacts", "prefix": "training-jobs/j/test-predictions/"},
    "report": {"bucket": "artifacts", "key": "training-jobs/j/evaluation.json"},
    "threshold": 0.8,
}


def _stage_scoring(s3, lst: str, outputs: dict[str, list[float]]) -> dict:
    """The test channel's truth and the transform's `.out` files; returns the handler's event."""
    for bucket in ("data", "artifacts"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="data", Key="ds/labels.json", Body=json.dumps(LABELS))
    s3.put_object(Bucket="data", Key="ds/test_lst/test.lst", Body=lst)
    for written, probabilities in outputs.items():
        s3.put_object(
            Bucket="artifacts",
            Key=f"{EVENT['predictions']['prefix']}{written}.out",
            Body=json.dumps({"prediction": probabilities}),
        )
    return json.loads(json.dumps(EVENT))


@mock_aws
def test_handler_writes_the_report_and_gates(aws_credentials):
    s3 = boto3.client("s3")
    event = _stage_scoring(
        s3,
        LST,
        {
            "Apple/a1.jpg": [0.9, 0.05, 0.05],
            "Apple/a2.jpg": [0.7, 0.2, 0.1],
            "Banana/b1.jpg": [0.1, 0.8, 0.1],
            "Cherry/c1.jpg": [0.5, 0.1, 0.4],
        },
    )

    result = evaluate_handler.handler(event, None)

    assert result == {
        "test_accuracy": 0.75,
        "top5_accuracy": 1.0,
        "images": 4,
        "missing_predictions": 0,
        "passed": False,
        "report_uri": "s3://artifacts/training-jobs/j/evaluation.json",
    }
    report = json.loads(
        s3.get_object(Bucket="artifacts", Key="training-jobs/j/evaluation.json")["Body"].read()
    )
    assert report["test_accuracy_threshold"] == 0.8
    assert report["passed"] is False
    assert report["confusion_matrix"]["counts"] == [[2, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert evaluate_handler.handler({**event, "threshold": 0.75}, None)["passed"] is True


@mock_aws
def test_handler_finds_outputs_by_the_rule_batch_decode_uses(aws_credentials):
    """Outputs named by another part of the key still count; ambiguous ones are not guessed."""
    s3 = boto3.client("s3")
    lst = LST + "4\t1\tBanana/a1.jpg\n"  # a second a1.jpg: the bare name "a1.jpg" is ambiguous
    event = _stage_scoring(
        s3,
        lst,
        {
            "test/Apple/a1.jpg": [0.9, 0.05, 0.05],  # the channel folder kept
            "ds/test/Apple/a2.jpg": [0.7, 0.2, 0.1],  # the whole key kept
            "b1.jpg": [0.1, 0.8, 0.1],  # the file name only
            "Cherry/c1.jpg": [0.1, 0.1, 0.8],  # the documented layout
            "a1.jpg": [0.1, 0.8, 0.1],  # Apple/a1.jpg or Banana/a1.jpg? not guessed
        },
    )

    result = evaluate_handler.handler(event, None)

    assert (result["images"], result["missing_predictions"]) == (5, 1)  # Banana/a1.jpg
    assert result["test_accuracy"] == 0.8  # 4 of 5: the unmatched one counts as wrong
    assert result["passed"] is True
    report = json.loads(
        s3.get_object(Bucket="artifacts", Key="training-jobs/j/evaluation.json")["Body"].read()
    )
    assert report["unmatched_outputs"] == 1


# --- the gate inside the real state machine (moto) -----------------------------------------

TEST_LST = "0\t0\tApple/a1.jpg\n1\t1\tBanana/b1.jpg\n2\t2\tCherry/c1.jpg\n3\t0\tApple/a2.jpg\n"


def _run_gated(pipeline, predictions: dict[str, list[float]]):
    """Runs the gated pipeline to its end; returns (describe_execution, job, Lambda payload)."""
    from moto.moto_api import _internal as moto_api

    from tests.e2e.conftest import ARTIFACTS_BUCKET, DATA_BUCKET, DATASET, MANIFEST

    pipeline.upload_dataset(manifest={**MANIFEST, "num_test_samples": 4}, labels=LABELS)
    pipeline.s3.put_object(Bucket=DATA_BUCKET, Key=f"{DATASET}test_lst/test.lst", Body=TEST_LST)
    execution = pipeline.start()
    params = pipeline.finish_training(execution, accuracy=0.9)
    job = params["TrainingJobName"]
    transform = sfn_local.wait_for_task_token(pipeline.sfn, execution, "createTransformJob")
    output = transform.parameters["TransformOutput"]["S3OutputPath"]
    prefix = output.split("/", 3)[3]
    for path, probabilities in predictions.items():  # what the transform job would write
        pipeline.s3.put_object(
            Bucket=ARTIFACTS_BUCKET,
            Key=f"{prefix}{path}.out",
            Body=json.dumps({"prediction": probabilities}),
        )
    payload = {
        "truth": {
            "bucket": DATA_BUCKET,
            "lst_key": f"{DATASET}test_lst/test.lst",
            "labels_key": f"{DATASET}labels.json",
        },
        "predictions": {"bucket": ARTIFACTS_BUCKET, "prefix": prefix},
        "report": {"bucket": ARTIFACTS_BUCKET, "key": f"training-jobs/{job}/evaluation.json"},
        "threshold": 0.75,
    }
    # moto echoes Lambda tasks: run the real handler and queue its answer as the response.
    result = evaluate_handler.handler(payload, None)
    moto_api.moto_api_backend.set_lambda_simple_result(
        json.dumps(result), sfn_local.ACCOUNT, sfn_local.REGION
    )
    pipeline.sfn.send_task_success(
        taskToken=transform.token,
        output=json.dumps({"TransformJobName": transform.parameters["TransformJobName"]}),
    )
    described = pipeline.wait(execution)
    (sent,) = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]
        for e in sfn_local.history(pipeline.sfn, execution)
        if e.get("taskScheduledEventDetails", {}).get("resource") == "invoke"
    ]
    return described, job, sent, payload, transform.parameters


GOOD = {
    "Apple/a1.jpg": [0.9, 0.05, 0.05],
    "Apple/a2.jpg": [0.7, 0.2, 0.1],
    "Banana/b1.jpg": [0.1, 0.8, 0.1],
    "Cherry/c1.jpg": [0.5, 0.1, 0.4],  # wrong: 3 of 4 = 0.75
}


def test_gate_passes_and_the_report_sits_beside_the_model(gated_pipeline):
    from tests.e2e.conftest import ARTIFACTS_BUCKET, DATA_BUCKET, DATASET

    described, job, sent, expected, transform = _run_gated(gated_pipeline, GOOD)

    assert described["status"] == "SUCCEEDED", described
    assert sent == expected  # the state machine sent what the handler was run with
    assert transform["ModelName"] == f"{job}-0"  # the new model, before any release
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{DATA_BUCKET}/{DATASET}test/"
    )
    assert transform["TransformOutput"]["S3OutputPath"] == (
        f"s3://{ARTIFACTS_BUCKET}/training-jobs/{job}/test-predictions/"
    )
    report = json.loads(
        gated_pipeline.s3.get_object(
            Bucket=ARTIFACTS_BUCKET, Key=f"training-jobs/{job}/evaluation.json"
        )["Body"].read()
    )
    assert report["top1_accuracy"] == 0.75
    assert report["passed"] is True
    assert described["output_json"]["test"]["accuracy"] == 0.75
    # The gate's Model is gone once the gate has its result (cdk destroy could not remove it).
    assert gated_pipeline.sagemaker.list_models()["Models"] == []
    (notification,) = gated_pipeline.notifications()
    assert "Test accuracy 0.75 (threshold 0.75)" in notification["Message"]


def test_gate_below_threshold_keeps_the_old_pointer(gated_pipeline):
    from stacks.names import NO_APPROVED_MODEL

    worse = {**GOOD, "Banana/b1.jpg": [0.8, 0.1, 0.1]}  # 2 of 4 = 0.5

    described, job, _, _, _ = _run_gated(gated_pipeline, worse)

    assert described["status"] == "FAILED"
    assert described["cause"].startswith("TestAccuracyBelowThreshold: test accuracy 0.5 of model")
    assert "below the threshold 0.75" in described["cause"]
    assert f"training-jobs/{job}/evaluation.json" in described["cause"]
    assert gated_pipeline.parameter("model-name") == NO_APPROVED_MODEL
    assert gated_pipeline.parameter("labels-uri") == NO_APPROVED_MODEL
    assert gated_pipeline.sagemaker.list_models()["Models"] == []


def test_gate_on_needs_a_test_channel(gated_pipeline):
    gated_pipeline.upload_dataset()  # MANIFEST has no num_test_samples
    execution = gated_pipeline.start()

    described = gated_pipeline.wait(execution)

    assert described["status"] == "FAILED"
    assert described["cause"].startswith("ManifestInvalid: the test accuracy gate is on")
    assert "Train" not in sfn_local.state_sequence(gated_pipeline.sfn, execution)


def test_a_failed_test_transform_deletes_the_model_and_notifies_its_cause(gated_pipeline):
    from tests.e2e.conftest import DATA_BUCKET, DATASET, MANIFEST

    gated_pipeline.upload_dataset(manifest={**MANIFEST, "num_test_samples": 4}, labels=LABELS)
    gated_pipeline.s3.put_object(
        Bucket=DATA_BUCKET, Key=f"{DATASET}test_lst/test.lst", Body=TEST_LST
    )
    execution = gated_pipeline.start()
    gated_pipeline.finish_training(execution, accuracy=0.9)
    transform = sfn_local.wait_for_task_token(gated_pipeline.sfn, execution, "createTransformJob")
    model = transform.parameters["ModelName"]
    assert gated_pipeline.sagemaker.describe_model(ModelName=model)["ModelName"] == model
    reason = "ClientError: See job logs for more information"
    sfn_local.fail_sync_job(transform, reason)

    described = gated_pipeline.wait(execution)

    assert described["status"] == "FAILED"
    assert reason in described["cause"]  # the transform's failure, not the deletion's
    states = sfn_local.state_sequence(gated_pipeline.sfn, execution)
    assert states[-3:] == ["Delete test model after failure", "Notify failure", "Failed"]
    assert gated_pipeline.sagemaker.list_models()["Models"] == []
    assert (
        gated_pipeline.sagemaker.list_model_packages(ModelPackageGroupName="grocery-classifier")[
            "ModelPackageSummaryList"
        ]
        == []
    )
