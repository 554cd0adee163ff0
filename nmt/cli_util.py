"""What every click command module shares: one-line errors, and options built from typed classes.

An option's default is declared once, in the dataclass (or function) that uses it:
``opt(field, *flags, **click_attrs)`` names the field, and ``typed_options(Cls, "name",
opt(...), ...)`` adds the options to a command with ``Cls``'s own defaults and hands the
command one ``Cls`` object instead of a parameter per option. ``option(owner, name, ...)``
is the same for a single option whose value the command receives as it is (its default
being a field or a keyword argument of ``owner``). Each such option remembers where its
default comes from (``SourcedOption.source``), so a test can check every command's
defaults against their classes. ``options_from(Cls, "name")`` makes an option of every
field of a class that keeps each option's help in its fields' metadata
(``QualityOptions``: the same options on every translating command).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import inspect
import logging
import re
import signal
import sys
import typing
from dataclasses import dataclass, field
from typing import Iterator

import click

from nmt.errors import NmtError
from nmt.stopping import StopRequest
from nmt.translate.backends import BACKENDS, DEVICES, DecodeOptions, EngineOptions
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


# -- options from typed classes -------------------------------------------------------------------

def declared_default(owner, name: str):
    """The default of field ``name`` of dataclass ``owner``, or of keyword ``name`` of function ``owner``
    (``dataclasses.MISSING`` when it has none)."""
    if dataclasses.is_dataclass(owner):
        spec = {f.name: f for f in dataclasses.fields(owner)}.get(name)
        if spec is None:
            raise ValueError(f"{owner.__name__} has no field {name!r}")
        if spec.default_factory is not dataclasses.MISSING:
            return spec.default_factory()
        return spec.default
    parameter = inspect.signature(owner).parameters.get(name)
    if parameter is None:
        raise ValueError(f"{owner.__name__}() has no parameter {name!r}")
    return dataclasses.MISSING if parameter.default is parameter.empty else parameter.default


class SourcedOption(click.Option):
    """A click option whose default is ``source`` = (class or function, name); ``none_as``: the value
    the command line uses for the class's None (e.g. 0 for "the backend's choice")."""

    def __init__(self, *args, source: tuple, none_as=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source
        self.none_as = none_as


def _as_declared(owner, name: str, value, attrs: dict):
    """A command-line value as ``owner`` takes it: ``none_as`` is None, a repeated option's tuple a list
    (unless the field's default is a tuple)."""
    if attrs.get("none_as") is not None and value == attrs["none_as"]:
        return None
    if attrs.get("multiple") and not isinstance(declared_default(owner, name), tuple):
        return list(value)
    return value


def option(owner, name: str, *decls, none_as=None, **attrs):
    """A click option for field / keyword ``name`` of ``owner``, with its default; the command receives
    the value as parameter ``name`` (or the one ``decls`` names)."""
    if all(d.startswith("-") for d in decls):
        decls = (*decls, name)
    default = declared_default(owner, name)
    if "default" in attrs:
        raise ValueError(f"option {decls}: the default is {owner.__name__}.{name}'s, not given here")
    if default is not dataclasses.MISSING:
        cli_default = none_as if default is None and none_as is not None else default
        attrs["default"] = tuple(cli_default) if isinstance(cli_default, list) else cli_default
        if cli_default not in (None, False, ()) and not attrs.get("is_flag"):
            attrs.setdefault("show_default", True)
    return click.option(*decls, cls=SourcedOption, source=(owner, name), none_as=none_as, **attrs)


@dataclass(frozen=True)
class Opt:
    """One option of ``typed_options``: the field it sets, click's declarations and settings."""

    field: str
    decls: tuple
    attrs: dict = field(default_factory=dict)


def opt(field_name: str, *decls, **attrs) -> Opt:
    return Opt(field_name, decls, attrs)


def typed_options(cls, into: str, *opts: Opt):
    """Options for fields of dataclass ``cls`` (defaults: ``cls``'s); the command gets ``into=cls(...)``.
    Fields without an option keep their defaults."""
    names = {o.field: f"{into}__{o.field}" for o in opts}

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            values = {o.field: _as_declared(cls, o.field, kwargs.pop(names[o.field]), o.attrs) for o in opts}
            return func(*args, **{into: cls(**values)}, **kwargs)

        for o in reversed(opts):
            wrapper = option(cls, o.field, *o.decls, names[o.field], **o.attrs)(wrapper)
        return wrapper

    return decorate


# -- the decoding and engine options of every command that translates -----------------------------

_DECODE = {
    "nbest": opt("nbest", "--nbest", help="Hypotheses per line (jsonl output); with --sampling, that many samples."),
    "sampling": opt("sampling", "--sampling", is_flag=True, help="Sample instead of beam search (off by default)."),
    "sampling_topk": opt("sampling_topk", "--sampling-topk", help="Sample from the k most likely tokens (-1: all)."),
    "sampling_topp": opt("sampling_topp", "--sampling-topp",
                         help="Nucleus sampling: the most likely tokens holding this much probability."),
    "epsilon": opt("epsilon", "--epsilon",
                   help="Epsilon sampling: never draw a token under this probability (0.02 for MBR candidates, "
                        "Freitag et al. 2023); fairseq checkpoint, CTranslate2 lacks it."),
    "temperature": opt("temperature", "--temperature"),
    "seed": opt("seed", "--seed", type=int, help="Random seed (sampling)."),
    "beam": opt("beam", "--beam", type=click.IntRange(min=1)),
    "lenpen": opt("len_penalty", "--lenpen", help="Length penalty."),
    "max_len_a": opt("max_len_a", "--max-len-a", help="Output cap: a * source tokens + b."),
    "max_len_b": opt("max_len_b", "--max-len-b"),
    "split_sentences": opt("split_sentences", "--split-sentences", type=click.Choice(SPLIT_MODES),
                           help="Lines with several sentences: auto (split those), always (every sentence the "
                                "splitter finds), never (the whole line at once). Each line's translations are "
                                "joined back into one line."),
}
_ENGINE = {
    "batch_tokens": opt("batch_tokens", "--batch-tokens", type=click.IntRange(min=1), help="Tokens per batch."),
    "batch_sentences": opt("batch_sentences", "--batch-sentences", type=click.IntRange(min=0), none_as=0,
                           help="Sentences per batch (0: the backend's choice; CTranslate2 on CPU picks by model "
                                "width and beam)."),
    "backend": opt("backend", "--backend", type=click.Choice(BACKENDS)),
    "quantization": opt("quantization", "--quantization", help="Which CTranslate2 export to use (int8, float32, ...)."),
    "device": opt("device", "--device", type=click.Choice(DEVICES)),
    "threads": opt("threads", "--threads", type=click.IntRange(min=0),
                   help="CPU threads (0: all cores); CTranslate2 decodes up to 4 batches in parallel with them."),
    "shortlist": opt("shortlist", "--shortlist/--no-shortlist",
                     help="CTranslate2: restrict the output vocabulary with the export's shortlists, when it has "
                          "them."),
    "checkpoint": opt("checkpoint", "--checkpoint", type=click.Path(exists=True, dir_okay=False),
                      help="Use this checkpoint instead of the bundle's (fairseq backend)."),
}
_SAMPLING = ("nbest", "sampling", "sampling_topk", "sampling_topp", "epsilon", "temperature", "seed")
_SEARCH = ("beam", "lenpen", "max_len_a", "max_len_b", "split_sentences")


def engine_options(*names: str):
    """Some of the engine options (``EngineOptions``), received as ``engine``."""
    unknown = set(names) - set(_ENGINE)
    if unknown:
        raise ValueError(f"engine_options: no option {sorted(unknown)}")
    return typed_options(EngineOptions, "engine", *(_ENGINE[n] for n in names))


def decoding_options(func=None, *, sampling: bool = False, checkpoint: bool = False, without: tuple = ()):
    """The decoding and engine options of every command that translates, with the defaults of
    ``DecodeOptions`` and ``EngineOptions``, so that the commands cannot drift apart.

    The command receives them as two objects, ``decode`` (``DecodeOptions``) and ``engine``
    (``EngineOptions``), instead of one parameter each. ``sampling`` adds n-best and sampling,
    ``checkpoint`` the fairseq checkpoint (``nmt translate``); ``without`` leaves out engine options
    or, with ``sampling``, sampling options (by name, e.g. ``"shortlist"``, ``"nbest"``), whose defaults
    then apply."""
    if func is None:
        return functools.partial(decoding_options, sampling=sampling, checkpoint=checkpoint, without=without)
    unknown = set(without) - set(_ENGINE) - (set(_SAMPLING) if sampling else set())
    if unknown:
        raise ValueError(f"decoding_options: no option {sorted(unknown)}")
    decode = [_DECODE[n] for n in (_SAMPLING if sampling else ()) + _SEARCH if n not in without]
    leave_out = set(without) | (set() if checkpoint else {"checkpoint"})
    func = engine_options(*(n for n in _ENGINE if n not in leave_out))(func)
    return typed_options(DecodeOptions, "decode", *decode)(func)


def options_from(cls, param: str, *, rename: dict | None = None, without: tuple = ()):
    """Options for every field of dataclass ``cls`` (but ``without``), each declared once there: the
    field's default, type and metadata (``help``, ``choices``, ``min``, ``max``, ``metavar``) make its
    option ``--field-name`` (``rename`` maps a field to another flag). The command receives one ``cls``
    object as ``param``; like ``typed_options``, each option remembers its source."""
    hints = typing.get_type_hints(cls)
    rename = rename or {}
    unknown = (set(rename) | set(without)) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"options_from({cls.__name__}): no field {sorted(unknown)}")
    opts = []
    for spec in dataclasses.fields(cls):
        if spec.name in without:
            continue
        attrs = _click_attrs(spec, hints[spec.name])
        for name, flag in rename.items():  # the help of every option names the renamed flags
            attrs["help"] = re.sub(rf"(?<![\w-])--{name.replace('_', '-')}(?![\w-])", flag, attrs["help"] or "")
        opts.append(opt(spec.name, rename.get(spec.name, "--" + spec.name.replace("_", "-")), **attrs))
    return typed_options(cls, param, *opts)


def _click_attrs(spec, hint) -> dict:
    meta = spec.metadata
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    kind = kinds[0]
    attrs: dict = {"help": meta.get("help")}
    if "choices" in meta:
        attrs["type"] = click.Choice(list(meta["choices"]))
    elif kind is bool:
        attrs["is_flag"] = True
    elif kind in (int, float) and ("min" in meta or "max" in meta):
        ranged = click.IntRange if kind is int else click.FloatRange
        attrs["type"] = ranged(min=meta.get("min"), max=meta.get("max"))
    else:
        attrs["type"] = kind
    if "metavar" in meta:
        attrs["metavar"] = meta["metavar"]
    return attrs


log = logging.getLogger("nmt.train")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest | None = None) -> Iterator[StopRequest]:
    """For the commands that train: SIGINT / SIGTERM ask ``stop`` to stop (a second signal raises ``KeyboardInterrupt``) while the
    block runs; the handlers it replaced are put back afterwards. Only the main thread can install
    handlers: elsewhere the request is returned without them."""
    stop = stop if stop is not None else StopRequest()

    def handle(signum, frame) -> None:
        if stop.requested:  # second signal: stop now
            raise KeyboardInterrupt
        stop.request(signum)
        log.warning("received %s: finishing this update, saving a checkpoint, then stopping",
                    signal.Signals(signum).name)

    previous: dict = {}
    try:
        for sig in STOP_SIGNALS:
            try:
                previous[sig] = signal.signal(sig, handle)
            except ValueError:  # not the main thread
                break
        stop.rank_setup = stop_on_signals if previous else None  # spawned training ranks do the same
        yield stop
    finally:
        for sig, handler in previous.items():  # None: installed outside Python; the default stands in
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
