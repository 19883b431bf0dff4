"""Names of the serving side, importable without aws_cdk (the operator commands use them)."""

from __future__ import annotations

VARIANT_NAME = "AllTraffic"


def endpoint_name(prefix: str) -> str:
    """Fixed, so that alarms, the dashboard and IAM can name it before it exists."""
    return f"{prefix}-classifier"


def classify_function_name(prefix: str) -> str:
    """Fixed, so that the dashboard names it instead of importing an export from Serving."""
    return f"{prefix}-classify-api"


def classify_errors_alarm_name(prefix: str) -> str:
    return f"{classify_function_name(prefix)}-errors"
