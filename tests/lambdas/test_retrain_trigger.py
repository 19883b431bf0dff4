"""The retraining trigger Lambda on moto: a dataset manifest starts a full training on that
dataset; the schedule picks the newest dataset and trains incrementally from the serving
version when the labels match; a refused start is counted and notified."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from moto import mock_aws
from retrain_trigger import handler as trigger
from retrain_trigger.datasets import dataset_of_manifest, newest_dataset
from retrain_trigger.plan import Plan, event_time

from tests.lambdas.emf import emf_objects, metric_values

TRAINING = "grocery-training-data"
ARTIFACTS = "grocery-artifacts"
PARAMETER = "/grocery/release/model-package-arn"
LABELS = ["Apple", "Banana", "Oat-Milk"]
JOB_LABELS = "training-jobs/grocery-train-1/labels.json"
MODEL_DATA = f"s3://{ARTIFACTS}/training-jobs/grocery-train-1/output/model.tar.gz"
T0 = dt.datetime(2027, 1, 4, 3, 0, 0)


@dataclasses.dataclass
class LambdaContext:
    function_name: str = "retrain-trigger"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:retrain"
    aws_request_id: str = "req-1"


@dataclasses.dataclass
class World:
    clients: dict
    machine_arn: str
    queue_url: str
    monkeypatch: pytest.MonkeyPatch

    def client(self, name: str):
        return self.clients[name]

    def upload(self, name: str, *, labels=LABELS, at: dt.datetime = T0) -> str:
        """A dataset as `preprocessing upload` leaves it; its manifest written at `at`."""
        self.monkeypatch.setattr("moto.s3.models.utcnow", lambda: at)
        s3, prefix = self.client("s3"), f"datasets/{name}/"
        s3.put_object(Bucket=TRAINING, Key=f"{prefix}train/Fruit/Apple/a.jpg", Body=b"x")
        if labels is not None:
            s3.put_object(Bucket=TRAINING, Key=f"{prefix}labels.json", Body=json.dumps(labels))
        s3.put_object(Bucket=TRAINING, Key=f"{prefix}manifest.json", Body=b"{}")
        return prefix

    def release(self, *, labels=LABELS, metadata: bool = True) -> str:
        sagemaker = self.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName="grocery-classifier")
        properties = {"labels_uri": f"s3://{ARTIFACTS}/{JOB_LABELS}"} if metadata else {"a": "b"}
        arn = sagemaker.create_model_package(
            ModelPackageGroupName="grocery-classifier",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "811284229777.dkr.ecr.us-east-1.amazonaws.com/ic:1",
                        "ModelDataUrl": MODEL_DATA,
                    }
                ],
                "SupportedContentTypes": ["application/x-image"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties=properties,
        )["ModelPackageArn"]
        self.client("s3").put_object(Bucket=ARTIFACTS, Key=JOB_LABELS, Body=json.dumps(labels))
        self.client("ssm").put_parameter(Name=PARAMETER, Value=arn, Type="String", Overwrite=True)
        return arn.rsplit("/", 1)[-1]

    def executions(self) -> list[dict]:
        sfn = self.client("stepfunctions")
        listed = sfn.list_executions(stateMachineArn=self.machine_arn)["executions"]
        return [
            {
                "name": e["name"],
                "input": json.loads(
                    sfn.describe_execution(executionArn=e["executionArn"])["input"]
                ),
            }
            for e in listed
        ]

    def notifications(self) -> list[dict]:
        sqs = self.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


@functools.cache
def _clients() -> dict:
    """Made once (client creation dominates these tests); each test's mock_aws is fresh."""
    return {
        name: boto3.client(name, region_name="us-east-1")
        for name in ("s3", "ssm", "sagemaker", "stepfunctions", "sns", "sqs")
    }


@pytest.fixture
def world(aws_credentials, monkeypatch):
    with mock_aws():
        clients = _clients()
        for bucket in (TRAINING, ARTIFACTS):
            clients["s3"].create_bucket(Bucket=bucket)
        clients["ssm"].put_parameter(Name=PARAMETER, Value="none", Type="String")
        machine = clients["stepfunctions"].create_state_machine(
            name="grocery-training",
            definition=json.dumps(
                {"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}
            ),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        topic = clients["sns"].create_topic(Name="notifications")["TopicArn"]
        queue = clients["sqs"].create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = clients["sqs"].get_queue_attributes(
            QueueUrl=queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        clients["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        for name, value in {
            "TRAINING_BUCKET": TRAINING,
            "STATE_MACHINE_ARN": machine,
            "RELEASE_PARAMETER": PARAMETER,
            "TOPIC_ARN": topic,
            "RETRAIN_INCREMENTAL": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "Grocery-Training",
        }.items():
            monkeypatch.setenv(name, value)
        yield World(clients, machine, queue, monkeypatch)


def manifest_event(key: str, *, bucket: str = TRAINING, time: str = "2027-01-04T09:15:00Z"):
    """An S3 "Object Created" event as EventBridge delivers it (ev-events.html)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": 2, "sequencer": "0A"},
            "reason": "PutObject",
        },
    }


SCHEDULED = {"trigger": "schedule", "scheduled_time": "2027-01-11T03:00:00Z"}


def run(event: dict) -> dict:
    return trigger.handler(event, LambdaContext())


# --- a new dataset ----------------------------------------------------------------------------


def test_a_manifest_upload_starts_a_full_training_on_its_dataset(world, capsys):
    prefix = world.upload("grocery-2027-01")
    world.release()  # a released version does not make an upload incremental

    result = run(manifest_event(f"{prefix}manifest.json"))

    assert result["started"] is True
    assert result["mode"] == "full"
    [execution] = world.executions()
    assert execution["input"] == {"dataset": "datasets/grocery-2027-01/"}
    assert execution["name"] == "retrain-dataset-20270104T091500Z-full-grocery-2027-01"
    assert metric_values(emf_objects(capsys.readouterr().out), trigger.STARTED) == [1.0]
    assert world.notifications() == []


def test_a_repeated_delivery_of_the_same_upload_starts_nothing_new(world):
    prefix = world.upload("grocery-2027-01")
    event = manifest_event(f"{prefix}manifest.json")
    run(event)
    run(event)
    # Same name, same input: StartExecution is idempotent (or refused, and notified).
    assert len(world.executions()) == 1


def test_other_objects_start_nothing(world):
    for key, bucket in [
        ("datasets/grocery/labels.json", TRAINING),
        ("datasets/manifest.json", TRAINING),
        ("other/grocery/manifest.json", TRAINING),
        ("datasets/grocery/manifest.json", "someone-elses"),
    ]:
        assert run(manifest_event(key, bucket=bucket)) == {"started": False}, key
    assert world.executions() == []


def test_dataset_of_manifest_keys():
    assert dataset_of_manifest("datasets/v3/manifest.json") == "datasets/v3/"
    assert dataset_of_manifest("datasets/a/b/manifest.json") == "datasets/a/b/"
    assert dataset_of_manifest("datasets//manifest.json") is None
    assert dataset_of_manifest("datasets/v3/manifest.json.bak") is None


# --- the schedule -----------------------------------------------------------------------------


def test_the_schedule_trains_incrementally_when_the_labels_match(world):
    world.upload("grocery-2026-12", at=T0)
    world.upload("grocery-2027-01", at=T0 + dt.timedelta(days=3))
    world.upload("grocery-2026-11", at=T0 - dt.timedelta(days=30))
    version = world.release()

    result = run(SCHEDULED)

    assert result["mode"] == "incremental"
    [execution] = world.executions()
    assert execution["input"] == {
        "dataset": "datasets/grocery-2027-01/",
        "initial_model": {"version": version, "model_data": MODEL_DATA},
    }
    assert execution["name"] == (
        f"retrain-schedule-20270111T030000Z-incremental-v{version}-grocery-2027-01"
    )


@pytest.mark.parametrize(
    ("release", "env", "why"),
    [
        (None, {}, "no version is released yet"),
        ({"labels": ["Apple", "Banana"]}, {}, "new: Oat-Milk"),
        ({"labels": ["Banana", "Apple", "Oat-Milk"]}, {}, "orders its labels differently"),
        ({"metadata": False}, {}, "does not name its labels"),
        ({}, {"RETRAIN_INCREMENTAL": "false"}, "retrain_incremental is false"),
    ],
)
def test_the_schedule_trains_fully_otherwise(world, caplog, release, env, why):
    world.upload("grocery-2027-01")
    if release is not None:
        world.release(**release)
    for name, value in env.items():
        world.monkeypatch.setenv(name, value)

    result = run(SCHEDULED)

    assert result["mode"] == "full"
    [execution] = world.executions()
    assert execution["input"] == {"dataset": "datasets/grocery-2027-01/"}
    assert execution["name"] == "retrain-schedule-20270111T030000Z-full-grocery-2027-01"
    assert "full training started" in caplog.text
    assert why in caplog.text


def test_the_schedule_trains_fully_when_the_dataset_has_no_labels(world, caplog):
    world.upload("grocery-2027-01", labels=None)
    world.release()
    assert run(SCHEDULED)["mode"] == "full"
    assert "labels.json does not exist" in caplog.text


def test_the_schedule_without_any_dataset_starts_nothing(world, caplog, capsys):
    world.client("s3").put_object(Bucket=TRAINING, Key="datasets/half/labels.json", Body=b"[]")
    assert run(SCHEDULED) == {"started": False}
    assert world.executions() == []
    assert "no dataset under datasets/ has a manifest.json" in caplog.text
    assert metric_values(emf_objects(capsys.readouterr().out), trigger.SKIPPED) == [1.0]


def test_newest_dataset_reads_only_each_dataset_s_manifest(world):
    world.upload("a", at=T0)
    world.upload("b", at=T0 + dt.timedelta(hours=1))
    s3 = world.client("s3")
    s3.put_object(Bucket=TRAINING, Key="datasets/c/manifest.json.bak", Body=b"{}")
    calls = []
    s3.meta.events.register(
        "provide-client-params.s3.ListObjectsV2", lambda params, **_: calls.append(params)
    )
    newest = newest_dataset(s3, TRAINING)
    assert newest.prefix == "datasets/b/"
    assert newest.name == "b"
    assert [c.get("Delimiter") for c in calls] == ["/", None, None, None]
    assert {c["Prefix"] for c in calls[1:]} == {f"datasets/{n}/manifest.json" for n in "abc"}


def test_no_release_record_reads_as_nothing_released(world, caplog):
    world.client("ssm").delete_parameter(Name=PARAMETER)
    world.upload("grocery-2027-01")
    assert run(SCHEDULED)["mode"] == "full"
    assert "no version is released yet" in caplog.text


# --- refused starts -----------------------------------------------------------------------------


def test_a_refused_start_is_counted_and_notified(world, capsys):
    prefix = world.upload("grocery-2027-01")
    event = manifest_event(f"{prefix}manifest.json")
    name = "retrain-dataset-20270104T091500Z-full-grocery-2027-01"
    # The name is taken by an execution with another input: StartExecution refuses.
    world.client("stepfunctions").start_execution(
        stateMachineArn=world.machine_arn, name=name, input='{"dataset": "datasets/other/"}'
    )

    result = run(event)

    assert result == {
        "trigger": "dataset",
        "dataset": prefix,
        "mode": "full",
        "started": False,
        "execution_name": name,
        "error": "ExecutionAlreadyExists",
    }
    output = capsys.readouterr().out
    assert metric_values(emf_objects(output), trigger.REFUSED, Trigger="dataset") == [1.0]
    assert metric_values(emf_objects(output), trigger.STARTED) == []
    [notification] = world.notifications()
    assert notification["Subject"] == "Retraining not started (dataset trigger)"
    message = notification["Message"]
    assert "did not start a training of grocery-training" in message
    assert f"Dataset: {prefix} (full training)" in message
    assert "ExecutionAlreadyExists" in message
    assert "already handled" in message
    assert f"python -m grocery train --dataset {prefix}" in message


def test_a_throttled_start_is_notified_with_its_code(world, monkeypatch):
    world.upload("grocery-2027-01")
    version = world.release()

    class Throttled:
        def start_execution(self, **_):
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "StartExecution",
            )

    monkeypatch.setattr(trigger.CLIENTS, "stepfunctions", Throttled())
    result = run(SCHEDULED)
    assert (result["started"], result["error"]) == (False, "ThrottlingException")
    [notification] = world.notifications()
    assert f"(incremental training, from version {version})" in notification["Message"]
    assert "Step Functions throttled the start" in notification["Message"]


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_an_unknown_event_fails_the_invocation(monkeypatch):
    for name in ("TRAINING_BUCKET", "STATE_MACHINE_ARN", "RELEASE_PARAMETER", "TOPIC_ARN"):
        monkeypatch.setenv(name, "x")
    with pytest.raises(ValueError, match="not a retraining event"):
        run({"hello": "world"})


# --- names and inputs ---------------------------------------------------------------------------


def test_execution_names_are_valid_and_at_most_80_characters():
    plan = Plan(
        "schedule", "datasets/" + "x" * 100 + " (copy)/", "why", version="12", model_data="s3://a/b"
    )
    name = plan.execution_name(event_time("2027-01-11T03:00:00Z"))
    assert len(name) == 80
    assert name.startswith("retrain-schedule-20270111T030000Z-incremental-v12-xxx")
    odd = Plan("dataset", "datasets/ä b:c/", "why").execution_name(
        event_time("2027-01-11T03:00:00")
    )
    assert odd == "retrain-dataset-20270111T030000Z-full-b-c"
    shape = botocore.session.get_session().get_service_model("stepfunctions")
    request = {
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        "name": name,
    }
    report = ParamValidator().validate(request, shape.operation_model("StartExecution").input_shape)
    assert not report.has_errors(), report.generate_report()


def test_an_event_without_a_readable_time_is_named_after_now():
    before = dt.datetime.now(dt.UTC)
    assert event_time(None) >= before.replace(microsecond=0)


def test_unusable_dataset_labels_mean_a_full_training(world, caplog):
    prefix = world.upload("grocery-2027-01")
    world.client("s3").put_object(Bucket=TRAINING, Key=f"{prefix}labels.json", Body=b"[oops")
    world.release()
    assert run(SCHEDULED)["mode"] == "full"
    assert "labels cannot be compared" in caplog.text
    assert "is not valid JSON" in caplog.text


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(("service", "method"), [("s3", "get_object"), ("ssm", "get_parameter")])
def test_access_errors_are_not_taken_for_missing_data(world, monkeypatch, service, method):
    world.upload("grocery-2027-01")
    world.release()
    real = getattr(trigger.CLIENTS, service)

    class Denied:
        """The real client, except that `method` answers AccessDenied."""

        def __getattr__(self, name):
            if name != method:
                return getattr(real, name)

            def refuse(**_):
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, method)

            return refuse

    monkeypatch.setattr(trigger.CLIENTS, service, Denied())
    with pytest.raises(ClientError, match="AccessDenied"):
        run(SCHEDULED)
    assert world.executions() == []
