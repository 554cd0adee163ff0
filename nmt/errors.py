"""User-facing errors.

An ``NmtError`` is a mistake the user can fix (bad input, a wrong option, a
missing file). The CLI prints its message on one line and exits non-zero,
without a traceback. Anything else is a bug and keeps its traceback.
"""


class NmtError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2
    transient = False  # True: the same command may succeed later (see NetworkError)


class NetworkError(NmtError):
    """A failure that may pass by itself: a host that cannot be reached, a transfer that broke off,
    a server answering 5xx. Rerunning the command resumes; any other NmtError needs a fix first."""

    transient = True
