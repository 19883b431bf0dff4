"""`python -m grocery <command>`: operate a deployed grocery classifier.

Exit codes (grocery/errors.py, docs/operations.md): 0 success, 1 the command ran and its
outcome is a failure, 2 something must be fixed before it can run (usage, input, AWS
setup), 130 interrupted. Every error is one `error: ...` line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from grocery.aws import SETUP_HINT, is_setup_error, profile_not_found
from grocery.errors import FAILED, INTERRUPTED, USER_ERROR, CommandError

# Each module defines `register(subparsers)`, which adds its parser and sets
# `run=<callable(args) -> int>` as a default.
COMMAND_MODULES: tuple[str, ...] = (
    "evaluate",
    "batch",
    "classify",
    "cost",
    "models",
    "preflight",
    "promote",
    "review.command",
    "train",
    "training_report.command",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake on one line (exit 2), not usage + error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(USER_ERROR, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m grocery", description="Operate a deployed grocery classifier.")
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for name in COMMAND_MODULES:
        importlib.import_module(f"grocery.{name}").register(subparsers)
    return parser


def describe_failure(error: Exception) -> tuple[str, int]:
    """The one line and the exit code for an error a command did not handle itself."""
    if isinstance(error, CommandError):
        return str(error), error.exit_code
    if isinstance(error, ProfileNotFound):
        return profile_not_found(error), USER_ERROR
    if isinstance(error, BotoCoreError):
        if is_setup_error(error):
            return f"{str(error).rstrip('.')}: {SETUP_HINT}.", USER_ERROR
        return f"AWS could not be reached: {error}", FAILED
    if isinstance(error, ClientError):
        return f"AWS refused the request: {error}", FAILED
    raise error


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, BotoCoreError, ClientError) as error:
        message, code = describe_failure(error)
        print(f"error: {message}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
