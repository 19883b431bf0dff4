"""The error types operator commands raise for user mistakes and failed runs.

Exit codes of `python -m grocery` (docs/operations.md, "Exit codes"):
0 success; 1 the command ran and its outcome is a failure (a pipeline or job failed, an
image was not classified, the endpoint does not serve the promoted model, preflight found
a blocker, AWS refused a request); 2 something must be fixed before it can run (a bad
argument, value or file, no AWS credentials/region/profile, a stack not deployed);
130 interrupted.
"""

FAILED = 1
USER_ERROR = 2
INTERRUPTED = 130


class CommandError(Exception):
    """Printed as one line (no traceback) and turned into a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = USER_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class FatalError(CommandError):
    """An error that would come back for every remaining item (credentials refused, endpoint
    not found, API unreachable): a command that loops over items stops at the first one."""
