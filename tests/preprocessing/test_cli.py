"""The prepare command line: exit codes, one-line messages, --help, summary line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from preprocessing.cli import main

from .conftest import write_jpeg

ROOT = Path(__file__).resolve().parents[2]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    return err


def test_prepare_prints_the_summary_line(grocery, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["prepare", str(grocery), str(out), "--workers", "1", "--no-progress"]) == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    assert len(stdout) == 1
    line = stdout[0]
    assert "train 12, validation 4, test 9" in line
    assert "copied 25, converted 0" in line
    assert "rejected 0, excluded 0" in line
    assert "leakage pairs 0" in line


@pytest.mark.parametrize(
    "case",
    [
        (["--split", "70/20"], 2, "unknown split '70/20'"),
        (["--size", "12"], 2, "--size 12 is out of range"),
        (["--size", "big"], 2, "argument --size: invalid int value: 'big'"),
        (["--split", "official", "--pool", "train"], 2, "--pool only applies"),
        (["--frobnicate"], 2, "unrecognized arguments: --frobnicate"),
    ],
)
def test_prepare_usage_errors(grocery, tmp_path, capsys, case):
    args, code, message = case
    assert main(["prepare", str(grocery), str(tmp_path / "out"), *args]) == code
    assert message in _one_line_error(capsys)


def test_missing_source_folder(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys)
    assert f"source folder {tmp_path / 'nope'} does not exist" in err


def test_empty_class_folder(folders, tmp_path, capsys):
    (folders / "zebra").mkdir()
    assert main(["prepare", str(folders), str(tmp_path / "out")]) == 2
    assert "class folder" in _one_line_error(capsys)
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_help_explains_every_option(capsys):
    assert main(["prepare", "--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--split",
        "--size",
        "--seed",
        "--min-side",
        "--pool",
        "--quality",
        "--workers",
        "--overwrite",
    ):
        assert option in text
    assert main(["upload", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--bucket", "--stack", "--prefix", "--dry-run", "--delete-stale", "--jobs"):
        assert option in text


def test_upload_needs_a_bucket_or_a_stack(tmp_path, capsys):
    assert main(["upload", str(tmp_path)]) == 2
    assert "one of the arguments --bucket --stack is required" in _one_line_error(capsys)


def test_module_entry_point_exit_code(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "preprocessing",
            "prepare",
            str(tmp_path / "nope"),
            str(tmp_path / "o"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: source folder {tmp_path / 'nope'} does not exist; pass the folder holding your photos"
    ]


def test_single_class_dataset_is_one_line_exit_2(tmp_path, capsys):
    source = tmp_path / "photos"
    for i in range(3):
        write_jpeg(source / "cat" / f"{i}.jpg")
    assert main(["prepare", str(source), str(tmp_path / "out"), "--workers", "1"]) == 2
    err = _one_line_error(capsys)
    assert f"error: {source} has a single class folder ('cat')" in err
    assert "needs at least 2 classes" in err


def test_whole_run_failure_names_rejected_csv(folders, tmp_path, capsys):
    for path in (folders / "ant").iterdir():
        path.write_bytes(b"")
    out = tmp_path / "out"
    assert main(["prepare", str(folders), str(out), "--workers", "1", "--no-progress"]) == 2
    err = _one_line_error(capsys)
    assert "class 'ant' has no usable training images" in err
    assert f"5 input file(s) were not used (empty_file 5): {out / 'rejected.csv'}" in err


@pytest.mark.parametrize(
    "case",
    [
        (KeyboardInterrupt(), 130, "error: interrupted"),
        (OSError(28, "No space left on device", "/tmp/out/x.jpg"), 1, "error: /tmp/out/x.jpg:"),
    ],
)
def test_exit_codes_of_runtime_failures(grocery, tmp_path, capsys, monkeypatch, case):
    raised, code, message = case

    def fail(opts):
        raise raised

    monkeypatch.setattr("preprocessing.cli.prepare", fail)
    assert main(["prepare", str(grocery), str(tmp_path / "out")]) == code
    assert _one_line_error(capsys).startswith(message)


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [([], "eu-west-2", "eu-west-2"), (["--region", "us-west-2"], "eu-west-2", "us-west-2")],
)
def test_upload_region_from_aws_region(tmp_path, monkeypatch, flag, env, expected):
    import boto3

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", env)
    seen: list[str | None] = []

    class StopError(Exception):
        pass

    def session(**kwargs):
        seen.append(kwargs.get("region_name"))
        raise StopError

    monkeypatch.setattr(boto3.session, "Session", session)
    (tmp_path / "out").mkdir()
    with pytest.raises(StopError):
        main(["upload", str(tmp_path / "out"), "--bucket", "b", *flag])
    assert seen == [expected]
