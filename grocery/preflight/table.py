"""The preflight table: one row per check, then the commands that fix what they can."""

from __future__ import annotations

from collections.abc import Sequence

from grocery.preflight.checks import Check, Status

HEADER = ("CHECK", "STATUS", "DETAIL")


def render(checks: Sequence[Check]) -> str:
    rows = [HEADER, *((check.name, str(check.status), check.detail) for check in checks)]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [
        f"{name:<{widths[0]}}  {status:<{widths[1]}}  {detail}" for name, status, detail in rows
    ]
    fixes = [check.fix for check in checks if check.fix]
    if fixes:
        lines += ["", "To fix:", *(f"  {fix}" for fix in fixes)]
    return "\n".join(lines)


def verdict(checks: Sequence[Check]) -> str:
    blockers = sum(check.status is Status.BLOCKER for check in checks)
    warnings = sum(check.status is Status.WARNING for check in checks)
    if blockers:
        return (
            f"{blockers} blocker(s), {warnings} warning(s): fix the blockers before "
            "`make deploy` or a training run"
        )
    if warnings:
        return f"no blockers, {warnings} warning(s): read them before `make deploy`"
    return "ready: no blockers, no warnings"
