"""The `python -m grocery` dispatcher: one-line errors, exit codes, every command registered."""

from __future__ import annotations

import argparse

import pytest

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
