"""The one error type of the handler: an HTTP status with a message the caller can act on."""

from __future__ import annotations


class HttpError(Exception):
    """Becomes a JSON error response; never carries a stack trace to the caller."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.retryable = retryable or retry_after is not None
