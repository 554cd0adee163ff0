"""The translation commands (registered by nmt.cli): ``nmt translate``, ``nmt translate-corpus``,
``nmt translate-file`` and ``nmt export``. Options are built from the typed classes they fill; the engines are imported inside
the commands (nmt.cli loads every command module at start-up)."""
from __future__ import annotations

import dataclasses

import click

from nmt.bundle import QUANTIZATIONS
from nmt.cli_util import decoding_options, friendly_errors, opt, option, options_from, typed_options
from nmt.export import export_ctranslate2
from nmt.translate.cli_run import FileTranslation, TranslateRun
from nmt.translate.corpus import CorpusJob, translate_corpus as run_corpus
from nmt.translate.options import QualityOptions
from nmt.translate.shortlist import ShortlistOptions
from nmt.translate.translator import TOO_LONG as TOO_LONG_CHOICES

TOO_LONG = click.Choice(TOO_LONG_CHOICES)


@click.command()
@typed_options(
    TranslateRun, "run",
    opt("model", "--model", "-m", required=True, type=click.Path(), help="Model bundle directory."),
    opt("src", "--src", "-s", help="Source language (ML50 code), e.g. de_DE."),
    opt("tgt", "--tgt", "-t", help="Target language(s), comma-separated: one output per target."),
    opt("input_path", "--input", "-i", help="Input file, or - for stdin."),
    opt("output_path", "--output", "-o",
        help="Output file or - for stdout; with several targets, {tgt} in the name or a .TGT suffix."),
    opt("tsv", "--tsv", is_flag=True, help="Input lines are 'src<TAB>tgt<TAB>text' (mixed directions)."),
    opt("fmt", "--format", type=click.Choice(["text", "jsonl", "html"]),
        help="text: a line in, a line out; jsonl: a JSON object out per line (scores, n-best); html: each line is "
             "HTML, its text translated and its markup kept."),
    opt("too_long", "--too-long", type=TOO_LONG,
        help="A line longer than the model's limit: empty output + warning, or truncate it."),
)
@decoding_options(sampling=True, checkpoint=True)
@options_from(QualityOptions, "quality")
@friendly_errors
def translate(run: TranslateRun, decode, engine, quality):
    """Translate line by line: N input lines give N output lines, always.

    \b
    Decoding for quality (any translating command has these options):
    nmt translate -m B -s de_DE -t en_XX --mbr chrf --candidates 16 --sampling --sampling-topp 0.9
    nmt translate -m B -s de_DE -t en_XX --rerank builtin --candidates 8
    nmt translate -m B -s de_DE -t ja_XX --pivot en_XX       # through English
    """
    from nmt.translate.cli_run import run_translate

    run_translate(dataclasses.replace(run, decode=decode, engine=engine, quality=quality))


@click.command("translate-corpus")
@typed_options(
    CorpusJob, "job",
    opt("model", "--model", "-m", required=True, type=click.Path(), help="Model bundle directory."),
    opt("src", "--src", "-s", required=True, help="Source language (ML50 code)."),
    opt("tgt", "--tgt", "-t", required=True, help="Target language (ML50 code)."),
    opt("input", "--input", "-i", required=True, type=click.Path(dir_okay=False), help="Input text file."),
    opt("chunk_lines", "--chunk-lines", type=click.IntRange(min=1),
        help="Lines per chunk: the unit of resuming and of sharding."),
    opt("scores", "--scores", is_flag=True, help="Also write OUTPUT.scores: the best hypothesis' score per line."),
    opt("too_long", "--too-long", type=TOO_LONG,
        help="A line longer than the model's limit: truncate it, or leave its output empty (warned)."),
)
@option(run_corpus, "output", "--output", "-o", required=True, type=click.Path(dir_okay=False),
        help="Output file, assembled when every chunk is translated.")
@option(run_corpus, "work", "--work", type=click.Path(file_okay=False),
        help="Work directory for the chunks (default OUTPUT.parts).")
@option(run_corpus, "shard", "--shard", help="Translate only shard i of N (e.g. 2/4).")
@option(run_corpus, "workers", "--workers", type=click.IntRange(min=1),
        help="Worker processes, each with its own model (--device cuda: one per GPU).")
@option(run_corpus, "merge_only", "--merge-only", is_flag=True,
        help="Only assemble the output from the translated chunks.")
@option(run_corpus, "restart", "--restart", is_flag=True,
        help="Discard the chunks of a different earlier job in the work directory.")
@decoding_options(sampling=True, without=("nbest",))
@options_from(QualityOptions, "quality")
@friendly_errors
def translate_corpus(job: CorpusJob, decode, engine, quality, **run):
    """Translate a whole corpus: resumable chunks, shards across machines, a deterministic merge."""
    summary = run_corpus(dataclasses.replace(job, options=decode, engine=engine, quality=quality), **run)
    state = f"written to {run['output']}" if summary.merged else "other shards still to run"
    click.echo(f"translate-corpus: {summary.lines:,} lines in {summary.chunks} chunks; shard {summary.shard}: "
               f"{summary.chunks_translated} translated now, {summary.chunks_done_before} done before; {state}",
               err=True)


@click.command("translate-file")
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False))
@typed_options(
    FileTranslation, "job",
    opt("model", "--model", "-m", required=True, type=click.Path(), help="Model bundle directory."),
    opt("src", "--src", "-s", required=True, help="Source language (ML50 code)."),
    opt("tgt", "--tgt", "-t", required=True, help="Target language (ML50 code)."),
    opt("too_long", "--too-long", type=TOO_LONG,
        help="A sentence longer than the model's limit: translate its beginning, or leave it out (warned)."),
    opt("max_bytes", "--max-bytes", type=click.IntRange(min=1), help="Refuse larger files."),
    opt("force", "--force", is_flag=True, help="Overwrite OUT if it exists."),
)
@decoding_options(sampling=True, without=("nbest", "batch_sentences"))
@options_from(QualityOptions, "quality")
@friendly_errors
def translate_file(input_path, output_path, job: FileTranslation, decode, engine, quality):
    """Translate a document (.txt, .html, .docx, .srt) into OUT of the same kind, structure kept."""
    from nmt.translate.cli_run import run_translate_file

    run_translate_file(input_path, output_path, dataclasses.replace(job, decode=decode, engine=engine,
                                                                    quality=quality))


@click.command()
@option(export_ctranslate2, "model", "--model", "-m", required=True, type=click.Path(), help="Model bundle directory.")
@click.option("--format", "fmt", type=click.Choice(["ctranslate2"]), help="Export format (ctranslate2, the only one).")
@option(export_ctranslate2, "quantization", "--quantization", type=click.Choice(QUANTIZATIONS))
@option(export_ctranslate2, "force", "--force", is_flag=True, help="Replace an existing export.")
@option(export_ctranslate2, "shortlist", "--shortlist", type=click.Path(file_okay=False),
        help="Data directory of nmt prepare: restrict each target language's output to the tokens of its "
             "training text (faster CPU decoding; nmt translate --no-shortlist switches it off).")
@typed_options(
    ShortlistOptions, "shortlist_options",
    opt("min_count", "--shortlist-min-count",
        help="Occurrences in the target language's training text for a token to be kept."),
    opt("max_lines", "--shortlist-max-lines", help="Training lines read per corpus file."),
)
@friendly_errors
def export(model, fmt, quantization, force, shortlist, shortlist_options: ShortlistOptions):
    """Convert the bundle's checkpoint for a fast inference engine (written into the bundle)."""
    out = export_ctranslate2(model, quantization, force, shortlist=shortlist, shortlist_options=shortlist_options)
    click.echo(f"exported {out}" + (" with vocabulary shortlists" if shortlist else ""), err=True)


COMMANDS = [translate, translate_corpus, translate_file, export]
