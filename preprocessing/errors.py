"""The exception types for user mistakes: the CLI prints their message on one line."""

from __future__ import annotations

from collections.abc import Sequence


class UserError(Exception):
    """A problem the user can fix (bad option, missing folder, empty class, unknown bucket).

    The message must name the file / key / value at fault and say what to do; the CLI
    prints it as a single ``error: ...`` line and exits non-zero, never with a traceback.
    """


class DatasetError(UserError):
    """The dataset as a whole cannot be prepared (an empty class, a single class...).

    ``rejected`` holds the rows of rejected.csv known so far, ``(path, reason, detail)``:
    prepare writes them to OUT/rejected.csv anyway, so the user sees which files failed.
    """

    def __init__(self, message: str, rejected: Sequence[tuple[str, str, str]] = ()) -> None:
        super().__init__(message)
        self.rejected = list(rejected)
