"""The `python -m grocery` dispatcher: one-line errors, exit codes, every command registered."""

from __future__ import annotations

import argparse

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

import grocery.__main__ as cli
from grocery.errors import CommandError


def test_every_command_module_registers_a_subcommand():
    parser = cli.build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(subparsers.choices) >= len(cli.COMMAND_MODULES)


def test_command_error_is_one_line_on_stderr(monkeypatch, capsys):
    def failing(_args):
        raise CommandError("bucket 'x' not found: check --bucket", exit_code=3)

    parser = argparse.ArgumentParser()
    parser.set_defaults(run=failing)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 3
    assert capsys.readouterr().err == "error: bucket 'x' not found: check --bucket\n"


def test_exit_code_of_the_command_is_returned(monkeypatch):
    parser = argparse.ArgumentParser()
    parser.set_defaults(run=lambda _args: 0)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 0


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "Operate a deployed grocery classifier" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (NoRegionError(), 2, "You must specify a region: set AWS_REGION (or AWS_DEFAULT_REGION)"),
        (NoCredentialsError(), 2, "Unable to locate credentials: set AWS_REGION"),
        (ProfileNotFound(profile="nosuch"), 2, "AWS profile 'nosuch' not found"),
        (EndpointConnectionError(endpoint_url="https://x"), 1, "AWS could not be reached"),
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "StartExecution"),
            1,
            "AWS refused the request: An error occurred (AccessDenied)",
        ),
    ],
)
def test_aws_setup_problems_are_one_line(monkeypatch, capsys, error, code, message):
    def failing(_args):
        raise error

    parser = argparse.ArgumentParser()
    parser.set_defaults(run=failing)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == code
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}")
    assert err.count("\n") == 1


def test_a_usage_mistake_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["classify"])  # no IMAGE
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "error: the following arguments are required: IMAGE "
        "(see 'python -m grocery classify --help')\n"
    )
