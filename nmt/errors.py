"""User-facing errors.

An ``NmtError`` is a mistake the user can fix (bad input, a wrong option, a
missing file). The CLI prints its message on one line and exits non-zero,
without a traceback. Anything else is a bug and keeps its traceback.
"""


class NmtError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2
