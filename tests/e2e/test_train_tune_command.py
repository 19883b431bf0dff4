"""`python -m grocery train --tune` against the real training definition in moto: the
worst-case cost read from the deployed definition, the confirmation, the execution input."""

from __future__ import annotations

import io
import json

import boto3
import pytest

from grocery import train, train_tuning
from grocery.errors import CommandError
from tests.e2e.conftest import DATASET
from tests.e2e.test_train_command import _args, deployed  # noqa: F401 - the fixture

# Config defaults: 12 jobs (2 at a time) of at most 4 h on 1 x ml.p3.2xlarge at $3.825/h.
COST_12 = "12 x 4 h x 1 x $3.825/h = $183.60 on demand, about $55.08 with managed spot"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _executions(pipeline) -> list[dict]:
    return pipeline.sfn.list_executions(stateMachineArn=pipeline.arn)["executions"]


def test_tune_with_yes_prints_the_worst_case_and_starts(deployed):  # noqa: F811
    deployed.upload_dataset()
    out = io.StringIO()
    args = _args("--dataset", DATASET, "--tune", "--max-jobs", "4", "--yes", "--no-wait")

    assert train.run(args, session=boto3.Session(), out=out) == 0

    text = out.getvalue()
    assert "tuning run: up to 4 training jobs, 2 at a time, each on 1 x ml.p3.2xlarge" in text
    assert "4 x 4 h x 1 x $3.825/h = $61.20 on demand, about $18.36 with managed spot" in text
    (execution,) = _executions(deployed)
    started = deployed.sfn.describe_execution(executionArn=execution["executionArn"])["input"]
    assert json.loads(started) == {"dataset": DATASET, "tuning": {"max_jobs": 4}}


def test_without_a_terminal_or_yes_nothing_starts(deployed):  # noqa: F811
    deployed.upload_dataset()
    out = io.StringIO()

    with pytest.raises(CommandError) as refused:
        train.run(
            _args("--dataset", DATASET, "--tune"),
            session=boto3.Session(),
            out=out,
            stdin=io.StringIO(),
        )

    assert refused.value.exit_code == 2
    assert "pass --yes to start the tuning run" in str(refused.value)
    assert COST_12 in out.getvalue()  # the config's defaults, read from the deployed definition
    assert _executions(deployed) == []


def test_the_answer_decides(deployed):  # noqa: F811
    deployed.upload_dataset()
    args = _args("--dataset", DATASET, "--tune", "--max-parallel-jobs", "3", "--no-wait")
    for answer in ("no", ""):
        with pytest.raises(CommandError, match="tuning run not started") as declined:
            train.run(
                args,
                session=boto3.Session(),
                out=io.StringIO(),
                stdin=_Terminal(),
                ask=lambda _, given=answer: given,
            )
        assert declined.value.exit_code == 1
        assert _executions(deployed) == []
    asked = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "y"

    assert (
        train.run(args, session=boto3.Session(), out=io.StringIO(), stdin=_Terminal(), ask=ask) == 0
    )
    assert asked == ["start the tuning run? [y/N] "]
    assert len(_executions(deployed)) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-jobs", "4"], "--max-jobs needs --tune"),
        (["--tune", "--max-jobs", "0"], "--max-jobs 0: use 1-100"),
        (["--tune", "--max-parallel-jobs", "11"], "--max-parallel-jobs 11: use 1-10"),
        (["--tune", "--max-jobs", "2", "--max-parallel-jobs", "3"], r"at most --max-jobs \(2\)"),
    ],
)
def test_tuning_arguments_are_checked(argv, message):
    with pytest.raises(CommandError, match=message):
        train.execution_input(_args("--dataset", DATASET, *argv), None)


def test_warm_start_reaches_the_input():
    args = _args("--dataset", DATASET, "--tune", "--warm-start-from", "grocery-t-000000001")
    assert train.execution_input(args, None)["tuning"] == {"warm_start_from": "grocery-t-000000001"}


def test_an_unknown_price_still_states_the_instance_hours():
    settings = train_tuning.Deployed(12, 2, 7200, "ml.p3.2xlarge", 2, spot=False)
    text = train_tuning.worst_case(settings, {"max_jobs": 3}, "ml.p4d.24xlarge")
    assert "worst case: 12 instance-hours of ml.p4d.24xlarge (no price known" in text
    text = train_tuning.worst_case(settings, {}, None)
    assert "12 x 2 h x 2 x $3.825/h = $183.60 on demand" in text
    assert "this deployment trains on demand" in text


class _OldMachine:
    def describe_state_machine(self, stateMachineArn):  # noqa: N803 - boto3's name
        return {"definition": json.dumps({"States": {"Train": {}}})}


def test_a_stack_deployed_before_tuning_is_named():
    with pytest.raises(CommandError, match="the deployed training stack cannot tune: redeploy"):
        train_tuning.deployed(_OldMachine(), "arn")


def test_the_summary_names_the_tuning_summary_and_the_source_version():
    output = {
        "model_package": {"version": "4"},
        "validation_accuracy": 0.9,
        "accuracy_threshold": 0.8,
        "training_job": "grocery-t-1-001-a",
        "artifact": "s3://a/m.tar.gz",
        "labels_uri": "s3://a/l.json",
        "provenance": {"trained_from_version": "3", "tuning_summary": "s3://a/t.json"},
    }
    text = train.summary(output)
    assert "trained from version: 3" in text
    assert "tuning summary: s3://a/t.json" in text
    output["provenance"] = {"trained_from_version": "none", "tuning_summary": "none"}
    assert "tuning summary" not in train.summary(output)


class _History:
    def get_execution_history(self, **_):
        parameters = json.dumps({"HyperParameterTuningJobName": "grocery-t-000000001"})
        resource = "createHyperParameterTuningJob.sync"
        return {
            "events": [
                {"taskScheduledEventDetails": {"resource": resource, "parameters": parameters}}
            ]
        }

    def describe_execution(self, **_):
        return {"status": "RUNNING"}


def test_following_a_run_names_its_tuning_job():
    out = io.StringIO()
    train.Follower(_History(), None, "arn", out=out).poll()
    assert "tuning job: grocery-t-000000001" in out.getvalue()


@pytest.mark.parametrize(
    ("row", "jobs", "instance"),
    [
        ("| 12 jobs x 4 h x ml.p3.2xlarge ($3.825/h), the defaults |", 12, "ml.p3.2xlarge"),
        ("| 4 jobs (`--max-jobs 4`) |", 4, "ml.p3.2xlarge"),
        ("| 12 jobs x 4 h x ml.g4dn.xlarge ($0.736/h) |", 12, "ml.g4dn.xlarge"),
    ],
)
def test_the_costs_table_shows_what_the_command_prints(row, jobs, instance):
    from pathlib import Path

    costs = (Path(__file__).parents[2] / "docs" / "costs.md").read_text()
    (line,) = [text for text in costs.splitlines() if text.startswith(row)]
    settings = train_tuning.Deployed(12, 2, 4 * 3600, "ml.p3.2xlarge", 1, spot=True)
    printed = train_tuning.worst_case(settings, {"max_jobs": jobs}, instance)
    on_demand, spot = line.split("|")[2].strip(), line.split("|")[3].strip()
    assert f"= {on_demand} on demand, about {spot} with managed spot" in printed
