"""Command-line values checked before any AWS call: argparse `type=` functions."""

from __future__ import annotations

import argparse
import re

# Equal to stacks.config's rule for `prefix` (not imported: that module loads aws_cdk, which
# takes seconds); tests/grocery/test_arguments.py keeps the two in step.
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,19}$")


def prefix(value: str) -> str:
    """The app's prefix, as `-c prefix=...` accepts it (`grocery`, `shop-2`)."""
    if not _PREFIX.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an app prefix: use the prefix you deployed with (-c prefix=...), "
            "2-20 characters: lowercase letters, digits and '-', starting with a letter"
        )
    return value


def add_prefix_option(
    parser: argparse.ArgumentParser, *, help: str = "the app's prefix (default: grocery)"
) -> None:
    """`--prefix`, validated as `prefix` does; every command that finds the stacks takes it."""
    parser.add_argument("--prefix", default="grocery", type=prefix, help=help)
