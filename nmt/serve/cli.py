"""CLI command of the translation server: ``nmt serve`` (registered by nmt.cli)."""
from __future__ import annotations

import dataclasses

import click

from nmt.cli_util import engine_options, friendly_errors, opt, options_from, typed_options
from nmt.serve.config import Limits, ServeConfig
from nmt.translate.options import QualityOptions
from nmt.translate.sentences import SPLIT_MODES


@click.command("serve")
@typed_options(
    ServeConfig, "cfg",
    opt("models", "--model", "-m", multiple=True, required=True, metavar="[ID=]PATH",
        help="Model bundle to serve (repeatable; a request goes to the first model with both languages)."),
    opt("host", "--host", help="Address to listen on."),
    opt("port", "--port", type=click.IntRange(0, 65535), help="0: any free port."),
    opt("cors_origins", "--cors-origins",
        help="Origins whose web pages may call the API (comma-separated, * for any, '' for none)."),
    opt("api_key_file", "--api-keys", type=click.Path(dir_okay=False),
        help="File with one API key per line: requests must carry one (health and metrics stay open)."),
)
@typed_options(
    Limits, "limits",
    opt("default_beam", "--beam", type=click.IntRange(min=1), help="Beam when a request gives none."),
    opt("max_beam", "--max-beam", type=click.IntRange(min=1)),
    opt("max_len_a", "--max-len-a", help="Output cap: a * source tokens + b (as translate)."),
    opt("max_len_b", "--max-len-b"),
    opt("max_lines", "--max-lines", type=click.IntRange(min=1), help="Texts per request (more: 413)."),
    opt("max_chars", "--max-chars", type=click.IntRange(min=1),
        help="Characters per request, all texts together (more: 413)."),
    opt("queue_lines", "--queue-lines", type=click.IntRange(min=1),
        help="Lines waiting per model before requests are refused with 503 + Retry-After."),
    opt("timeout_s", "--timeout", type=click.FloatRange(min=0.1),
        help="Seconds per request, waiting included (then 504)."),
    opt("batch_window_ms", "--batch-window-ms", type=click.FloatRange(min=0),
        help="How long an idle server waits for concurrent requests to merge into one batch."),
    opt("header_timeout_s", "--header-timeout", type=click.FloatRange(min=0.1),
        help="Seconds a client has to send a request's headers, and then its body (else the connection is "
             "closed, or 408)."),
    opt("keep_alive_s", "--keep-alive", type=click.IntRange(min=1),
        help="Seconds an idle keep-alive connection stays open."),
    opt("max_connections", "--max-connections", type=click.IntRange(min=1),
        help="Open connections at most (more: 503 and closed; kept below the open-file limit)."),
    opt("split_sentences", "--split-sentences", type=click.Choice(SPLIT_MODES),
        help="Texts with several sentences: auto (split those), always, never (as nmt translate); each text's "
             "translations are joined back into one."),
    opt("max_file_bytes", "--max-file-bytes", type=click.IntRange(min=1),
        help="Largest file POST /translate_file accepts."),
)
@engine_options("backend", "quantization", "device", "threads")
@options_from(QualityOptions, "quality")
@friendly_errors
def serve(cfg: ServeConfig, limits: Limits, engine, quality):
    """Serve bundles over HTTP: a translation page (/), nmt's JSON API, a LibreTranslate-compatible API, /health,
    /metrics.

    The decoding-for-quality options (--mbr, --rerank, --pivot, ...) apply to every request; a
    /v1/translate request may choose its own pivot language ("pivot": "en_XX", or "none")."""
    from nmt.serve.server import run_serve

    run_serve(dataclasses.replace(cfg, limits=limits, engine=engine, quality=quality))


COMMANDS = [serve]
