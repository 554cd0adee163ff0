"""Helpers shared by every click command module (kept apart from nmt.cli so that
command modules such as nmt.wmt.cli can import them without a circular import)."""
from __future__ import annotations

import errno
import functools
import sys

import click

from nmt.errors import NmtError
from nmt.translate.backends import DecodeOptions


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


def decoding_options(func):
    """The decoding and engine options of every command that translates, with the defaults of
    ``DecodeOptions``, so that the commands cannot drift apart."""
    options = [
        click.option("--beam", default=DecodeOptions.beam, show_default=True, type=click.IntRange(min=1)),
        click.option("--lenpen", default=DecodeOptions.len_penalty, show_default=True, help="Length penalty."),
        click.option("--max-len-a", default=DecodeOptions.max_len_a, show_default=True,
                     help="Output cap: a * source tokens + b."),
        click.option("--max-len-b", default=DecodeOptions.max_len_b, show_default=True),
        click.option("--batch-tokens", default=4000, show_default=True, type=click.IntRange(min=1),
                     help="Tokens per batch."),
        click.option("--batch-sentences", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Sentences per batch (0: the backend's choice; CTranslate2 on CPU picks by model width "
                          "and beam)."),
        click.option("--backend", type=click.Choice(["auto", "fairseq", "ctranslate2"]), default="auto",
                     show_default=True),
        click.option("--quantization", help="Which CTranslate2 export to use (int8, float32, ...)."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True),
        click.option("--threads", default=0, show_default=True, type=click.IntRange(min=0),
                     help="CPU threads (0: all cores); CTranslate2 decodes up to 4 batches in parallel with them."),
        click.option("--shortlist/--no-shortlist", default=True, show_default=True,
                     help="CTranslate2: restrict the output vocabulary with the export's shortlists, when it has "
                          "them."),
    ]
    for option in reversed(options):
        func = option(func)
    return func
