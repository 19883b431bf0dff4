"""The one exception type for user mistakes: the CLI prints its message on one line."""


class UserError(Exception):
    """A problem the user can fix (bad option, missing folder, empty class, unknown bucket).

    The message must name the file / key / value at fault and say what to do; the CLI
    prints it as a single ``error: ...`` line and exits non-zero, never with a traceback.
    """
