"""Helpers shared by every click command module (kept apart from nmt.cli so that
command modules such as nmt.wmt.cli can import them without a circular import)."""
from __future__ import annotations

import errno
import functools
import sys

import click

from nmt.errors import NmtError


_FILE_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EROFS,
                errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTEMPTY, errno.ETXTBSY}


def usage_error_line(exc: click.UsageError) -> str:
    """click's usage error as the project's one line: what was wrong and where the help is."""
    command = exc.ctx.command_path if exc.ctx is not None else "nmt"
    return f"nmt: error: {' '.join(exc.format_message().split())} (see '{command} --help')"


def friendly_errors(func):
    """Turn NmtError (and a few OS errors) into `nmt: error: ...` and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except NmtError as exc:
            click.echo(f"nmt: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("nmt: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(141)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                where = f" while writing {exc.filename}" if exc.filename else ""
                click.echo(f"nmt: error: no space left on device{where}; free some space and rerun the same "
                           "command (finished work is kept)", err=True)
                sys.exit(3)
            if exc.filename is not None and exc.errno in _FILE_ERRNOS:
                # the user's file system said no (permissions, a directory where a file belongs, ...)
                click.echo(f"nmt: error: {exc.filename}: {exc.strerror}; check the path and its permissions",
                           err=True)
                sys.exit(2)
            raise
        except RecursionError:
            click.echo("nmt: error: the input is nested too deeply to be read", err=True)
            sys.exit(2)

    return wrapper
