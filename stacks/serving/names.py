"""Names of the serving side, importable without aws_cdk (the operator commands use them)."""

from __future__ import annotations

VARIANT_NAME = "AllTraffic"


def endpoint_name(prefix: str) -> str:
    """Fixed, so that alarms, the dashboard and IAM can name it before it exists."""
    return f"{prefix}-classifier"
