"""`python -m grocery <command>`: operate a deployed grocery classifier."""

from __future__ import annotations

import argparse
import importlib
import sys

from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from grocery.errors import CommandError

# Each module defines `register(subparsers)`, which adds its parser and sets
# `run=<callable(args) -> int>` as a default.
COMMAND_MODULES: tuple[str, ...] = ("evaluate", "batch", "classify", "promote", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grocery", description="Operate a deployed grocery classifier."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"grocery.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except (NoRegionError, NoCredentialsError) as error:
        print(
            f"error: {error} Set AWS_REGION (or AWS_DEFAULT_REGION) and AWS credentials "
            "(aws configure, or AWS_PROFILE) for the account the stacks are deployed in.",
            file=sys.stderr,
        )
        return 2
    except ClientError as error:
        print(f"error: AWS refused the request: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
