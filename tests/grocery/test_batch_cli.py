"""`python -m grocery batch`: arguments are checked before anything reaches AWS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grocery import batch as batch_cli
from grocery.__main__ import main as cli_main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_aws(monkeypatch):
    """No region, no credentials, and any stack lookup fails the test."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)

    def reached_aws(*args, **kwargs):
        raise AssertionError("the batch id must be checked before AWS is reached")

    monkeypatch.setattr(batch_cli, "stack_output", reached_aws)


@pytest.mark.parametrize("action", ["status", "rerun"])
@pytest.mark.parametrize(
    "batch_id", ["nonsense", "20261125-132557", "20261125-132557-0123456789AB", "results/x.jsonl"]
)
def test_a_bad_batch_id_is_one_line_and_exit_2_without_aws(no_aws, capsys, action, batch_id):
    assert cli_main(["batch", action, batch_id]) == 2

    error = capsys.readouterr().err
    assert error.startswith(f"error: {batch_id!r} is not a batch id (like 20261125-132557-")
    assert error.count("\n") == 1


def test_the_module_entry_point_says_so_too():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "grocery", "batch", "status", "nonsense"],
        cwd=REPO,
        env={**env, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'lambdas'}"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: 'nonsense' is not a batch id")
    assert done.stderr.count("\n") == 1


def test_aws_region_is_honoured(no_aws, monkeypatch):
    # This boto3 reads only AWS_DEFAULT_REGION; the CLI passes AWS_REGION itself.
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    seen: list[str] = []

    def region_of_the_session(_stack, _output, *, session):
        seen.append(session.region_name)
        return "value"

    monkeypatch.setattr(batch_cli, "stack_output", region_of_the_session)
    store = batch_cli.BatchStore("grocery")
    assert seen == ["eu-west-2", "eu-west-2"]
    assert store.s3.meta.region_name == "eu-west-2"


def test_an_unknown_profile_is_one_line(no_aws, monkeypatch, capsys):
    monkeypatch.setenv("AWS_PROFILE", "nosuch")
    assert cli_main(["batch", "status", "20261125-132557-3a16300e9d82"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: AWS profile 'nosuch' not found")
    assert error.count("\n") == 1
