"""CLI commands for corpus-scale and document translation: ``nmt translate-corpus`` and
``nmt translate-file`` (registered by nmt.cli)."""
from __future__ import annotations

import click

from nmt.cli_util import decoding_options, friendly_errors, options_from
from nmt.translate.files import MAX_FILE_BYTES
from nmt.translate.options import QualityOptions


@click.command("translate-corpus")
@click.option("--model", "-m", required=True, type=click.Path(), help="Model bundle directory.")
@click.option("--src", "-s", required=True, help="Source language (ML50 code).")
@click.option("--tgt", "-t", required=True, help="Target language (ML50 code).")
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False), help="Input text file.")
@click.option("--output", "-o", "output_path", required=True, type=click.Path(dir_okay=False),
              help="Output file, assembled when every chunk is translated.")
@click.option("--work", type=click.Path(file_okay=False), help="Work directory for the chunks (default OUTPUT.parts).")
@click.option("--chunk-lines", default=50_000, show_default=True, type=click.IntRange(min=1),
              help="Lines per chunk: the unit of resuming and of sharding.")
@click.option("--shard", default="1/1", show_default=True, help="Translate only shard i of N (e.g. 2/4).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes, each with its own model (--device cuda: one per GPU).")
@click.option("--scores", is_flag=True, help="Also write OUTPUT.scores: the best hypothesis' score per line.")
@click.option("--merge-only", is_flag=True, help="Only assemble the output from the translated chunks.")
@click.option("--restart", is_flag=True, help="Discard the chunks of a different earlier job in the work directory.")
@decoding_options(sampling=True, without=("nbest",))
@options_from(QualityOptions, "quality")
@click.option("--too-long", type=click.Choice(["skip", "truncate"]), default="truncate", show_default=True,
              help="A line longer than the model's limit: truncate it, or leave its output empty (warned).")
@friendly_errors
def translate_corpus(model, src, tgt, input_path, output_path, work, chunk_lines, shard, workers, scores,
                     merge_only, restart, decode, engine, quality, too_long):
    """Translate a whole corpus: resumable chunks, shards across machines, a deterministic merge."""
    # imported here, not at the top: nmt.cli loads every command module at start-up
    from nmt.translate.corpus import CorpusJob, translate_corpus as run

    job = CorpusJob(model=model, src=src, tgt=tgt, input=input_path, chunk_lines=chunk_lines, options=decode,
                    batch_tokens=engine.batch_tokens, batch_sentences=engine.batch_sentences, too_long=too_long,
                    backend=engine.backend, quantization=engine.quantization, shortlist=engine.shortlist,
                    scores=scores, quality=quality)
    summary = run(job, output_path, work=work, shard=shard, workers=workers, device=engine.device,
                  threads=engine.threads, merge_only=merge_only, restart=restart)
    state = f"written to {output_path}" if summary["merged"] else "other shards still to run"
    click.echo(f"translate-corpus: {summary['lines']:,} lines in {summary['chunks']} chunks; shard "
               f"{summary['shard']}: {summary['chunks_translated']} translated now, {summary['chunks_done_before']} "
               f"done before; {state}", err=True)


@click.command("translate-file")
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--model", "-m", required=True, type=click.Path(), help="Model bundle directory.")
@click.option("--src", "-s", required=True, help="Source language (ML50 code).")
@click.option("--tgt", "-t", required=True, help="Target language (ML50 code).")
@decoding_options(sampling=True, without=("nbest", "batch_sentences"))
@options_from(QualityOptions, "quality")
@click.option("--too-long", type=click.Choice(["skip", "truncate"]), default="truncate", show_default=True,
              help="A sentence longer than the model's limit: translate its beginning, or leave it out (warned).")
@click.option("--max-bytes", default=MAX_FILE_BYTES, show_default=True, type=click.IntRange(min=1),
              help="Refuse larger files.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@friendly_errors
def translate_file(input_path, output_path, model, src, tgt, decode, engine, quality, too_long, max_bytes, force):
    """Translate a document (.txt, .html, .docx, .srt) into OUT of the same kind, structure kept."""
    from nmt.translate.cli_run import run_translate_file

    run_translate_file(input_path, output_path, model, src, tgt, decode, engine, too_long, max_bytes, force, quality)


COMMANDS = [translate_corpus, translate_file]
