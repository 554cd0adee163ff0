"""CLI command of the translation server: ``nmt serve`` (registered by nmt.cli)."""
from __future__ import annotations

import click

from nmt.cli_util import friendly_errors, options_from
from nmt.errors import NmtError
from nmt.serve.limits import Limits
from nmt.translate.backends import DecodeOptions
from nmt.translate.files import MAX_FILE_BYTES
from nmt.translate.options import QualityOptions
from nmt.translate.sentences import SPLIT_MODES


@click.command("serve")
@click.option("--model", "-m", "models", multiple=True, required=True, metavar="[ID=]PATH",
              help="Model bundle to serve (repeatable; a request goes to the first model with both languages).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option("--beam", default=DecodeOptions.beam, show_default=True, type=click.IntRange(min=1),
              help="Beam when a request gives none.")
@click.option("--max-beam", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--max-len-a", default=DecodeOptions.max_len_a, show_default=True, help="Output cap: a * source tokens + b (as translate).")
@click.option("--max-len-b", default=DecodeOptions.max_len_b, show_default=True)
@click.option("--max-lines", default=128, show_default=True, type=click.IntRange(min=1),
              help="Texts per request (more: 413).")
@click.option("--max-chars", default=20000, show_default=True, type=click.IntRange(min=1),
              help="Characters per request, all texts together (more: 413).")
@click.option("--queue-lines", default=2048, show_default=True, type=click.IntRange(min=1),
              help="Lines waiting per model before requests are refused with 503 + Retry-After.")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds per request, waiting included (then 504).")
@click.option("--batch-window-ms", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="How long an idle server waits for concurrent requests to merge into one batch.")
@click.option("--header-timeout", default=Limits.header_timeout_s, show_default=True,
              type=click.FloatRange(min=0.1), help="Seconds a client has to send a request's headers, and then "
                                                   "its body (else the connection is closed, or 408).")
@click.option("--keep-alive", default=Limits.keep_alive_s, show_default=True, type=click.IntRange(min=1),
              help="Seconds an idle keep-alive connection stays open.")
@click.option("--max-connections", default=Limits.max_connections, show_default=True, type=click.IntRange(min=1),
              help="Open connections at most (more: 503 and closed; kept below the open-file limit).")
@click.option("--split-sentences", type=click.Choice(SPLIT_MODES), default=DecodeOptions.split_sentences,
              show_default=True, help="Texts with several sentences: auto (split those), always, never (as nmt "
                                      "translate); each text's translations are joined back into one.")
@click.option("--max-file-bytes", default=MAX_FILE_BYTES, show_default=True, type=click.IntRange(min=1),
              help="Largest file POST /translate_file accepts.")
@click.option("--cors-origins", default="*", show_default=True,
              help="Origins whose web pages may call the API (comma-separated, * for any, '' for none).")
@click.option("--api-keys", "api_key_file", type=click.Path(dir_okay=False),
              help="File with one API key per line: requests must carry one (health and metrics stay open).")
@click.option("--backend", type=click.Choice(["auto", "fairseq", "ctranslate2"]), default="auto", show_default=True)
@click.option("--quantization", help="Which CTranslate2 export to use (int8, float32, ...).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", default=0, show_default=True, type=click.IntRange(min=0),
              help="CPU threads per model (0: all cores).")
@options_from(QualityOptions, "quality")
@friendly_errors
def serve(models, host, port, beam, max_beam, max_len_a, max_len_b, max_lines, max_chars, queue_lines, timeout,
          batch_window_ms, header_timeout, keep_alive, max_connections, split_sentences, max_file_bytes, cors_origins,
          api_key_file, backend, quantization, device, threads, quality):
    """Serve bundles over HTTP: a translation page (/), nmt's JSON API, a LibreTranslate-compatible API, /health,
    /metrics.

    The decoding-for-quality options (--mbr, --rerank, --pivot, ...) apply to every request; a
    /v1/translate request may choose its own pivot language ("pivot": "en_XX", or "none")."""
    from nmt.serve.server import run_serve
    from nmt.translate.backends import DecodeOptions

    if beam > max_beam:
        raise NmtError(f"--beam {beam} is above --max-beam {max_beam}")
    if queue_lines < max_lines:
        raise NmtError(f"--queue-lines ({queue_lines}) must be at least --max-lines ({max_lines}), or a full-size "
                       "request could never be queued")
    DecodeOptions(beam=beam, max_len_a=max_len_a, max_len_b=max_len_b).check()
    quality.check()
    limits = Limits(max_lines=max_lines, max_chars=max_chars, max_beam=max_beam, default_beam=beam,
                    max_len_a=max_len_a, max_len_b=max_len_b,
                    timeout_s=timeout, queue_lines=queue_lines, batch_window_ms=batch_window_ms,
                    header_timeout_s=header_timeout, keep_alive_s=keep_alive, max_connections=max_connections,
                    split_sentences=split_sentences, max_file_bytes=max_file_bytes)
    origins = tuple(o.strip() for o in cors_origins.split(",") if o.strip())
    run_serve(models, host, port, limits, api_key_file=api_key_file, backend=backend, quantization=quantization,
              device=device, threads=threads, cors_origins=origins, quality=quality)


COMMANDS = [serve]
