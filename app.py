#!/usr/bin/env python3
"""CDK entry point: `make synth` / `npx cdk synth --all`."""

import os
import sys

# Node 20 is what this project is tested on (Node 22 and 24 are the versions jsii supports
# past 2026-10-30); jsii prints an 11-line end-of-life banner for it on every cdk command.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.application import build
from stacks.config import ConfigError, config_from_context


def main() -> None:
    app = App()
    try:
        config = config_from_context(app.node.try_get_context, app.node.get_all_context())
    except ConfigError as error:
        sys.exit(f"Configuration error: {error}")
    build(app, config)
    # cdk-nag 3 runs as a policy-validation plugin: synth fails on any unacknowledged finding.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
        sys.exit(
            "cdk-nag found unacknowledged findings: see the report above and cdk.out/validation-report.json"
        )


if __name__ == "__main__":
    main()
