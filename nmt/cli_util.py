"""Helpers shared by every click command module (kept apart from nmt.cli so that
command modules such as nmt.wmt.cli can import them without a circular import)."""
from __future__ import annotations

import dataclasses
import errno
import functools
import re
import sys
import typing

import click

from nmt.errors import NmtError
from nmt.translate.backends import DecodeOptions, EngineOptions
from nmt.translate.sentences import SPLIT_MODES


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


# option parameter -> (which options object, its field); the click options themselves are in _OPTIONS
_SAMPLING = ("nbest", "sampling", "sampling_topk", "sampling_topp", "epsilon", "temperature", "seed")
_COMMON = ("beam", "lenpen", "max_len_a", "max_len_b", "split_sentences", "batch_tokens", "batch_sentences", "backend", "quantization",
           "device", "threads", "shortlist")
_FIELDS = {name: ("decode", name) for name in _SAMPLING + ("beam", "max_len_a", "max_len_b", "split_sentences")}
_FIELDS["lenpen"] = ("decode", "len_penalty")
_FIELDS.update({name: ("engine", name) for name in _COMMON[5:]})

_d, _e = DecodeOptions, EngineOptions  # the defaults are the classes' own
_OPTIONS = {
    "nbest": click.option("--nbest", default=_d.nbest, show_default=True,
                          help="Hypotheses per line (jsonl output); with --sampling, that many samples."),
    "sampling": click.option("--sampling", is_flag=True, default=_d.sampling,
                             help="Sample instead of beam search (off by default)."),
    "sampling_topk": click.option("--sampling-topk", default=_d.sampling_topk, show_default=True,
                                  help="Sample from the k most likely tokens (-1: all)."),
    "sampling_topp": click.option("--sampling-topp", default=_d.sampling_topp, show_default=True,
                                  help="Nucleus sampling: the most likely tokens holding this much probability."),
    "epsilon": click.option("--epsilon", default=_d.epsilon, show_default=True,
                            help="Epsilon sampling: never draw a token under this probability (0.02 for MBR "
                                 "candidates, Freitag et al. 2023); fairseq checkpoint, CTranslate2 lacks it."),
    "temperature": click.option("--temperature", default=_d.temperature, show_default=True),
    "seed": click.option("--seed", type=int, default=_d.seed, help="Random seed (sampling)."),
    "beam": click.option("--beam", default=_d.beam, show_default=True, type=click.IntRange(min=1)),
    "lenpen": click.option("--lenpen", default=_d.len_penalty, show_default=True, help="Length penalty."),
    "max_len_a": click.option("--max-len-a", default=_d.max_len_a, show_default=True,
                              help="Output cap: a * source tokens + b."),
    "max_len_b": click.option("--max-len-b", default=_d.max_len_b, show_default=True),
    "split_sentences": click.option("--split-sentences", type=click.Choice(SPLIT_MODES), default=_d.split_sentences,
                                    show_default=True, help="Lines with several sentences: auto (split those), "
                                    "always (every sentence the splitter finds), never (the whole line at once). "
                                    "Each line's translations are joined back into one line."),
    "batch_tokens": click.option("--batch-tokens", default=_e.batch_tokens, show_default=True,
                                 type=click.IntRange(min=1), help="Tokens per batch."),
    "batch_sentences": click.option("--batch-sentences", type=click.IntRange(min=0), default=_e.batch_sentences or 0,
                                    show_default=True, help="Sentences per batch (0: the backend's choice; "
                                    "CTranslate2 on CPU picks by model width and beam)."),
    "backend": click.option("--backend", type=click.Choice(["auto", "fairseq", "ctranslate2"]), default=_e.backend,
                            show_default=True),
    "quantization": click.option("--quantization", default=_e.quantization,
                                 help="Which CTranslate2 export to use (int8, float32, ...)."),
    "device": click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=_e.device,
                           show_default=True),
    "threads": click.option("--threads", default=_e.threads, show_default=True, type=click.IntRange(min=0),
                            help="CPU threads (0: all cores); CTranslate2 decodes up to 4 batches in parallel "
                                 "with them."),
    "shortlist": click.option("--shortlist/--no-shortlist", default=_e.shortlist, show_default=True,
                              help="CTranslate2: restrict the output vocabulary with the export's shortlists, "
                                   "when it has them."),
}


def decoding_options(func=None, *, sampling: bool = False, without: tuple = ()):
    """The decoding and engine options of every command that translates, with the defaults of
    ``DecodeOptions`` and ``EngineOptions``, so that the commands cannot drift apart.

    The command receives them as two objects, ``decode`` (``DecodeOptions``) and ``engine``
    (``EngineOptions``), instead of one parameter each. ``sampling`` adds n-best and sampling
    (``nmt translate``; the other commands leave out ``nbest``); ``without`` leaves out options (by
    parameter name, e.g. ``"shortlist"``), whose defaults then apply."""
    if func is None:
        return functools.partial(decoding_options, sampling=sampling, without=without)
    unknown = set(without) - set(_COMMON) - (set(_SAMPLING) if sampling else set())
    if unknown:
        raise ValueError(f"decoding_options: no option {sorted(unknown)}")
    names = [n for n in (_SAMPLING if sampling else ()) + _COMMON if n not in without]

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        values: dict = {"decode": {}, "engine": {}}
        for name in names:
            owner, field = _FIELDS[name]
            values[owner][field] = kwargs.pop(name)
        if "batch_sentences" in values["engine"]:
            values["engine"]["batch_sentences"] = values["engine"]["batch_sentences"] or None
        return func(*args, decode=DecodeOptions(**values["decode"]), engine=EngineOptions(**values["engine"]),
                    **kwargs)

    for name in reversed(names):
        wrapper = _OPTIONS[name](wrapper)
    return wrapper


def options_from(cls, param: str, *, rename: dict | None = None, without: tuple = ()):
    """Click options for the fields of the dataclass ``cls``, declared once there: each field's
    default, type and metadata (``help``, ``choices``, ``min``, ``max``, ``metavar``) make its
    option ``--field-name`` (``rename`` maps a field to another flag). The command receives one
    ``cls`` object as ``param`` instead of one parameter per field."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name not in without]
    rename = rename or {}
    unknown = (set(rename) | set(without)) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"options_from({cls.__name__}): no field {sorted(unknown)}")
    prefix = f"{param}__"

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            values = {f.name: kwargs.pop(prefix + f.name) for f in fields}
            return func(*args, **{param: cls(**values)}, **kwargs)

        for spec in reversed(fields):
            kwargs = _click_kwargs(spec, hints[spec.name])
            for name, flag in rename.items():  # the help of every option names the renamed flags
                kwargs["help"] = re.sub(rf"(?<![\w-])--{name.replace('_', '-')}(?![\w-])", flag, kwargs["help"] or "")
            wrapper = click.option(rename.get(spec.name, "--" + spec.name.replace("_", "-")), prefix + spec.name,
                                   **kwargs)(wrapper)
        return wrapper

    return decorate


def _click_kwargs(spec, hint) -> dict:
    meta = spec.metadata
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    kind = kinds[0]
    kwargs: dict = {"default": spec.default, "help": meta.get("help"), "show_default": spec.default is not None}
    if "choices" in meta:
        kwargs["type"] = click.Choice(list(meta["choices"]))
    elif kind is bool:
        kwargs["is_flag"] = True
    elif kind in (int, float) and ("min" in meta or "max" in meta):
        ranged = click.IntRange if kind is int else click.FloatRange
        kwargs["type"] = ranged(min=meta.get("min"), max=meta.get("max"))
    else:
        kwargs["type"] = kind
    if "metavar" in meta:
        kwargs["metavar"] = meta["metavar"]
    return kwargs
