"""The one error type operator commands raise for user mistakes and failed runs."""


class CommandError(Exception):
    """Printed as one line (no traceback) and turned into a non-zero exit code."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
