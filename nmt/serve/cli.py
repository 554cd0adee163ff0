"""CLI command of the translation server: ``nmt serve`` (registered by nmt.cli)."""
from __future__ import annotations

import dataclasses

import click

from nmt.cli_util import engine_options, friendly_errors, opt, typed_options
from nmt.serve.config import Limits, ServeConfig


@click.command("serve")
@typed_options(
    ServeConfig, "cfg",
    opt("models", "--model", "-m", multiple=True, required=True, metavar="[ID=]PATH",
        help="Model bundle to serve (repeatable; a request goes to the first model with both languages)."),
    opt("host", "--host", help="Address to listen on."),
    opt("port", "--port", type=click.IntRange(0, 65535), help="0: any free port."),
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
)
@engine_options("backend", "quantization", "device", "threads")
@friendly_errors
def serve(cfg: ServeConfig, limits: Limits, engine):
    """Serve bundles over HTTP: nmt's JSON API, a LibreTranslate-compatible API, /health, /metrics."""
    from nmt.serve.server import run_serve

    run_serve(dataclasses.replace(cfg, limits=limits, engine=engine))


COMMANDS = [serve]
