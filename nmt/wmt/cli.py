"""CLI commands of the WMT packaging tools (registered by nmt.cli): ``nmt package`` and ``nmt unwrap``."""
from __future__ import annotations

from pathlib import Path

import click

from nmt.cli_util import decoding_options, friendly_errors, options_from
from nmt.errors import NmtError
from nmt.translate.options import QualityOptions
from nmt.fileio import write_lines


@click.command("package")
@click.argument("test_sets", nargs=-1, required=True, metavar="TEST_SET...")
@click.option("--output", "-o", required=True, type=click.Path(), help="Archive to write (.tar.gz).")
@click.option("--team", required=True, help="Team name (letters, digits, . _ + -).")
@click.option("--system", required=True, help="System name; also the <hyp system=...> attribute.")
@click.option("--primary/--contrastive", default=True, show_default=True, help="Primary or contrastive submission.")
@click.option("--constrained/--unconstrained", default=None, help="Whether the system follows the constrained "
                                                                  "track's data rules (required).")
@click.option("--model", "-m", type=click.Path(), help="Model bundle to translate the test sets with.")
@click.option("--hyps", multiple=True, type=click.Path(),
              help="Existing hypotheses instead of --model: one file per test set, in order (plain text one "
                   "line per segment, WMT XML with <hyp>, or JSONL with 'hypothesis').")
@click.option("--hyp-system", help="Which system's <hyp> to take from an XML --hyps file with several.")
@click.option("--docs", type=click.Path(), help="Document file of a txt test set (default: found next to it or "
                                                "in ../documents/).")
@click.option("--src-lang", help="Source language (WMT/ISO code, e.g. en) when the test set does not say.")
@click.option("--tgt-lang", help="Target language (e.g. de) when the test set does not say.")
@click.option("--format", "fmt", type=click.Choice(["same", "xml", "txt", "jsonl"]), default="same",
              show_default=True, help="Submission format (same: the test set's).")
@decoding_options(sampling=True, without=("nbest", "batch_sentences", "quantization", "shortlist"))
@options_from(QualityOptions, "quality")
@click.option("--too-long", type=click.Choice(["truncate", "skip"]), default="truncate", show_default=True,
              help="A unit longer than the model's limit: translate its beginning, or leave it empty.")
@click.option("--allow-empty", is_flag=True, help="Accept empty hypotheses for non-empty sources (warned).")
@click.option("--description", help="A sentence about the system for the model card.")
@click.option("--force", is_flag=True, help="Overwrite an existing archive.")
@friendly_errors
def package(test_sets, output, team, system, primary, constrained, model, hyps, hyp_system, docs, src_lang,
            tgt_lang, fmt, decode, engine, quality, too_long, allow_empty, description, force):
    """Translate WMT test sets (XML, txt + docs, JSONL) and write a submission archive.

    The archive holds the submission file(s), metadata.json and MODEL_CARD.md.
    Every segment gets exactly one hypothesis; canary lines are copied unchanged.
    """
    # imported here, not at the top: nmt.cli loads every command module at start-up
    from nmt.wmt.package import PackageConfig, build_package

    cfg = PackageConfig(test_sets=list(test_sets), output=output, team=team, system=system, constrained=constrained,
                        primary=primary, model=model, hyps=list(hyps), docs=docs, src_lang=src_lang,
                        tgt_lang=tgt_lang, fmt=fmt, hyp_system=hyp_system, options=decode,
                        batch_tokens=engine.batch_tokens, too_long=too_long, backend=engine.backend,
                        device=engine.device, threads=engine.threads, allow_empty=allow_empty,
                        description=description, force=force, quality=quality)
    meta = build_package(cfg)
    files = ", ".join(f"{f['path']} ({f['segments']} segments)" for f in meta["files"])
    click.echo(f"submission archive: {output} | {files} | {meta['n_warnings']} warnings", err=True)


@click.command("unwrap")
@click.argument("xml_file", type=click.Path())
@click.option("--output-dir", "-o", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the text files.")
@click.option("--prefix", help="File name prefix (default: the XML file's name without .xml).")
@click.option("--skip-testsuites", is_flag=True, help="Leave out test-suite documents (as sacrebleu does).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@friendly_errors
def unwrap(xml_file, output_dir, prefix, skip_testsuites, force):
    """Extract plain text from a WMT XML file: PREFIX.src.LANG, PREFIX.docs, PREFIX.ref.TRANSLATOR.LANG and
    PREFIX.hyp.SYSTEM.LANG, one line per source segment, so any scorer can read them."""
    # imported here, not at the top: nmt.cli loads every command module at start-up
    from nmt.wmt.testset import detect_format
    from nmt.wmt.unwrap import unwrap as run_unwrap
    from nmt.wmt.xml_format import read_xml

    path = Path(xml_file)
    if not path.is_file():
        raise NmtError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    if detect_format(path) != "xml":
        raise NmtError(f"nmt unwrap reads WMT XML files (.xml); {path.name} is not one (txt is already plain text)")
    testset = read_xml(path)
    columns, counts = run_unwrap(testset, skip_testsuites)
    prefix = prefix or (path.name[:-4] if path.name.lower().endswith(".xml") else path.name)
    targets = {suffix: Path(output_dir) / f"{prefix}.{suffix}" for suffix in columns}
    existing = [str(t) for t in targets.values() if t.exists()]
    if existing and not force:
        raise NmtError(f"{existing[0]} already exists; pass --force to overwrite")
    for suffix, lines in columns.items():
        write_lines(targets[suffix], lines)
    notes = [f"{n} empty lines in {k} (segments it lacks)" for k, n in counts["missing"].items()]
    if counts["line_breaks"]:
        notes.append(f"{counts['line_breaks']} segments had line breaks, replaced by spaces")
    click.echo(f"{counts['segments']} segments -> " + ", ".join(str(t) for t in targets.values())
               + (" | " + "; ".join(notes) if notes else ""), err=True)


COMMANDS = [package, unwrap]
