"""CLI commands of the WMT packaging tools (registered by nmt.cli): ``nmt package`` and ``nmt unwrap``."""
from __future__ import annotations

import dataclasses

import click

from nmt.cli_util import decoding_options, friendly_errors, opt, option, options_from, typed_options
from nmt.translate.options import QualityOptions
from nmt.translate.translator import TOO_LONG
from nmt.wmt.package import SUBMISSION_FORMATS, PackageConfig
from nmt.wmt.unwrap import unwrap_file


@click.command("package")
@click.argument("test_sets", nargs=-1, required=True, metavar="TEST_SET...")
@typed_options(
    PackageConfig, "cfg",
    opt("output", "--output", "-o", required=True, type=click.Path(), help="Archive to write (.tar.gz)."),
    opt("team", "--team", required=True, help="Team name (letters, digits, . _ + -)."),
    opt("system", "--system", required=True, help="System name; also the <hyp system=...> attribute."),
    opt("primary", "--primary/--contrastive", help="Primary or contrastive submission."),
    opt("constrained", "--constrained/--unconstrained",
        help="Whether the system follows the constrained track's data rules (required)."),
    opt("model", "--model", "-m", type=click.Path(), help="Model bundle to translate the test sets with."),
    opt("hyps", "--hyps", multiple=True, type=click.Path(),
        help="Existing hypotheses instead of --model: one file per test set, in order (plain text one line per "
             "segment, WMT XML with <hyp>, or JSONL with 'hypothesis')."),
    opt("hyp_system", "--hyp-system", help="Which system's <hyp> to take from an XML --hyps file with several."),
    opt("docs", "--docs", type=click.Path(),
        help="Document file of a txt test set (default: found next to it or in ../documents/)."),
    opt("src_lang", "--src-lang", help="Source language (WMT/ISO code, e.g. en) when the test set does not say."),
    opt("tgt_lang", "--tgt-lang", help="Target language (e.g. de) when the test set does not say."),
    opt("fmt", "--format", type=click.Choice(SUBMISSION_FORMATS),
        help="Submission format (same: the test set's)."),
    opt("too_long", "--too-long", type=click.Choice(TOO_LONG),
        help="A unit longer than the model's limit: translate its beginning, or leave it empty."),
    opt("allow_empty", "--allow-empty", is_flag=True, help="Accept empty hypotheses for non-empty sources (warned)."),
    opt("description", "--description", help="A sentence about the system for the model card."),
    opt("force", "--force", is_flag=True, help="Overwrite an existing archive."),
)
@decoding_options(sampling=True, without=("nbest", "batch_sentences", "quantization", "shortlist"))
@options_from(QualityOptions, "quality")
@friendly_errors
def package(test_sets, cfg: PackageConfig, decode, engine, quality):
    """Translate WMT test sets (XML, txt + docs, JSONL) and write a submission archive.

    The archive holds the submission file(s), metadata.json and MODEL_CARD.md.
    Every segment gets exactly one hypothesis; canary lines are copied unchanged.
    """
    # imported here, not at the top: nmt.cli loads every command module at start-up
    from nmt.wmt.package import build_package

    result = build_package(dataclasses.replace(cfg, test_sets=list(test_sets), options=decode, engine=engine,
                                                     quality=quality))
    files = ", ".join(f"{f.path} ({f.segments} segments)" for f in result.files)
    click.echo(f"submission archive: {result.archive} | {files} | {len(result.warnings)} warnings", err=True)


@click.command("unwrap")
@click.argument("xml_file", type=click.Path())
@option(unwrap_file, "output_dir", "--output-dir", "-o", type=click.Path(file_okay=False),
        help="Directory for the text files.")
@option(unwrap_file, "prefix", "--prefix", help="File name prefix (default: the XML file's name without .xml).")
@option(unwrap_file, "skip_testsuites", "--skip-testsuites", is_flag=True,
        help="Leave out test-suite documents (as sacrebleu does).")
@option(unwrap_file, "force", "--force", is_flag=True, help="Overwrite existing files.")
@friendly_errors
def unwrap(xml_file, **settings):
    """Extract plain text from a WMT XML file: PREFIX.src.LANG, PREFIX.docs, PREFIX.ref.TRANSLATOR.LANG and
    PREFIX.hyp.SYSTEM.LANG, one line per source segment, so any scorer can read them."""
    result = unwrap_file(xml_file, **settings)
    notes = [f"{n} empty lines in {k} (segments it lacks)" for k, n in result.missing.items()]
    if result.line_breaks:
        notes.append(f"{result.line_breaks} segments had line breaks, replaced by spaces")
    click.echo(f"{result.segments} segments -> " + ", ".join(str(f) for f in result.files)
               + (" | " + "; ".join(notes) if notes else ""), err=True)


COMMANDS = [package, unwrap]
