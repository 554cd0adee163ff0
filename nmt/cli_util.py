"""Helpers shared by every click command module (kept apart from nmt.cli so that
command modules such as nmt.wmt.cli can import them without a circular import)."""
from __future__ import annotations

import functools
import sys

import click

from nmt.errors import NmtError


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
            if exc.errno == 28:  # ENOSPC
                where = f" while writing {exc.filename}" if exc.filename else ""
                click.echo(f"nmt: error: no space left on device{where}; free some space and rerun the same "
                           "command (finished work is kept)", err=True)
                sys.exit(3)
            raise

    return wrapper
