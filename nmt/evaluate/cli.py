"""CLI command of evaluation (registered by nmt.cli): ``nmt evaluate``."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from nmt.cli_util import decoding_options, friendly_errors, opt, option, options_from, typed_options
from nmt.evaluate.groups import DEFAULT_BUCKETS
from nmt.evaluate.runner import HEATMAP_METRICS, PAIRED_TESTS, EvalConfig
from nmt.evaluate.testsets import KINDS, testset_source
from nmt.translate.options import QualityOptions


@click.command("evaluate")
@click.argument("systems", nargs=-1, metavar="[SYSTEM]...")
@click.option("--model", "-m", type=click.Path(), help="Model bundle: translate the test sets, then score.")
@click.option("--hyp", type=click.Path(), help="Existing hypotheses: a directory of SRC-TGT.hyp files (or an "
              "earlier report directory), or one file with --direction.")
@click.option("--compare", is_flag=True, help="Compare the SYSTEM arguments (bundles, bundle checkpoints, "
              "hypothesis directories; NAME=PATH to name one); the first is the baseline.")
@typed_options(
    EvalConfig, "cfg",
    opt("directions", "--directions", "--direction", "-d",
        help="SRC-TGT list (de_DE-en_XX,en_XX-ja_XX) or trained | all | to-en | from-en | non-en. "
             "Default: the model's trained directions, or every direction with hypothesis files."),
    opt("out_dir", "--out-dir", "-o", required=True, type=click.Path(file_okay=False),
        help="Report directory: report.md/.csv/.json, hyps/, segments/, heatmaps."),
    opt("tokenize", "--tokenize", help="BLEU tokenizer for every target (13a) and/or per target (ja_XX=char,"
        "zh_CN=zh) [default: per language: zh, ja-mecab, ko-mecab, flores200 (else char), 13a]."),
    opt("comet", "--comet/--no-comet", help="Score with COMET (n/a with the reason when no model is there)."),
    opt("comet_model", "--comet-model",
        help="COMET model: hub name (from the local HF cache) or path to a local COMET model directory."),
    opt("comet_encoder", "--comet-encoder", type=click.Path(), help="Local directory with the COMET encoder's "
        "tokenizer and config.json (for a checkpoint whose encoder is not in the HF cache)."),
    opt("comet_batch_size", "--comet-batch-size"),
    opt("comet_gpus", "--comet-gpus", help="0: COMET on CPU; 1: on one GPU."),
    opt("comet_cache", "--comet-cache", type=click.Path(file_okay=False),
        help="Segment-score cache directory [default: $NMT_CACHE_DIR/comet or ~/.cache/nmt/comet]."),
    opt("comet_download", "--comet-download", is_flag=True,
        help="Allow downloading the COMET model and its encoder (off by default: everything is read from local "
             "files)."),
    opt("require_comet", "--require-comet", is_flag=True, help="Fail (exit 2) instead of reporting COMET as n/a."),
    opt("paired_test", "--paired-test", type=click.Choice(PAIRED_TESTS),
        help="With --compare: paired bootstrap resampling, approximate randomization, or both."),
    opt("bootstrap_samples", "--bootstrap-samples"),
    opt("ar_trials", "--ar-trials"),
    opt("alpha", "--alpha", help="Significance level for the * marks."),
    opt("train_counts", "--train-counts", type=click.Path(), help="Training counts for resource buckets: a "
        "bundle, its training.json or a prepared-data manifest.json [default: the model's training.json]."),
    opt("buckets", "--resource-buckets", help=f"Bucket thresholds in training pairs [default: {DEFAULT_BUCKETS}]."),
    opt("heatmap_metric", "--heatmap", type=click.Choice(HEATMAP_METRICS),
        help="Metric of the source x target heatmap PNG (drawn when there are >= 2 sources and targets)."),
    opt("decimals", "--decimals", help="Decimals of BLEU/chrF in report.md."),
    opt("segments", "--segments/--no-segments", help="Write per-segment scores (segments/*.jsonl)."),
)
@option(testset_source, "kind", "--testset", type=click.Choice(KINDS),
        help="Test set kind. Default: files with --src/--ref, ml50 with --ml50-dir, else flores200.")
@option(testset_source, "flores_dir", "--flores-dir", type=click.Path(), envvar="NMT_FLORES_DIR", show_envvar=True,
        help="FLORES-200 directory of {flores_code}.devtest files [default: the embedded sample].")
@option(testset_source, "ml50_dir", "--ml50-dir", type=click.Path(), help="ML50 raw directory (test.xx_XX-en_XX.* "
        "files).")
@option(testset_source, "split", "--split", help="Split of --ml50-dir to use.")
@option(testset_source, "src", "--src", help="Source file, or a pattern with {src} {tgt} {src_iso} {tgt_iso} "
        "{src_flores} {tgt_flores} for several directions (e.g. wmt/newstest2021.{src_iso}-{tgt_iso}.{src_iso}).")
@option(testset_source, "ref", "--ref", help="Reference file or pattern (as --src).")
@option(testset_source, "name", "--testset-name", help="Name of a --src/--ref test set in the report "
        "(e.g. newstest2021).")
@option(testset_source, "lines", "--lines", help="1-based inclusive line ranges of every test file, e.g. 1-500 "
        "or 1-100,301-400 [default: all lines].")
@decoding_options(sampling=True, without=("nbest", "batch_sentences", "quantization", "shortlist"))
@options_from(QualityOptions, "quality", rename={"comet_model": "--mbr-comet-model", "comet_encoder":
                                                 "--mbr-comet-encoder"}, without=("comet_batch_size", "comet_gpus"))
@click.option("--system-option", "system_options", multiple=True, metavar="NAME:KEY=VALUE",
              help="A decoding-for-quality option of one --compare system (repeatable), e.g. pivot:pivot=en_XX "
                   "or mbr:mbr=chrf; KEY: mbr, rerank, candidates, pseudo-refs, comet-model, comet-encoder, "
                   "qe-model, qe-encoder, pivot, or beam, len-penalty, sampling, sampling-topk, sampling-topp, "
                   "epsilon, temperature, seed.")
@friendly_errors
def evaluate(systems, model, hyp, compare, cfg: EvalConfig, decode, engine, quality, system_options, **testset):
    """Score translations per direction: BLEU, chrF, chrF++ and COMET, with signatures.

    \b
    nmt evaluate -m BUNDLE -d all --lines 1-500 -o report/        # FLORES-200 sample
    nmt evaluate --hyp hyps/ --testset ml50 --ml50-dir raw/ -o report/
    nmt evaluate --hyp out.txt --src src.de --ref ref.en -d de_DE-en_XX -o report/
    nmt evaluate --compare base=runA/ runB/checkpoints/checkpoint_300.pt -o cmp/
    nmt evaluate --compare direct=B pivot=B --system-option pivot:pivot=en_XX -d non-en -o piv/
    nmt evaluate --compare beam=B mbr=B --system-option mbr:mbr=chrf -o mbr/

    Writes report.md (also printed), report.csv, report.json (signatures, versions,
    test-set files and line ranges, hypothesis paths), segments/*.jsonl and a
    heatmap PNG. COMET is read from local files only; when no model is there,
    its column says n/a and the report says why.
    """
    # imported here, not at the top: nmt.cli loads every command module at start-up
    from nmt.evaluate.report import write_report
    from nmt.evaluate.runner import evaluate as run_evaluation
    from nmt.evaluate.systems import apply_system_options, choose_systems

    context = click.get_current_context()
    command = {"argv": ["nmt", "evaluate", *sys.argv[2:]] if sys.argv[1:2] == ["evaluate"] else None,
               # by field name; the MBR options keep their prefix (quality__comet_model is not --comet-model)
               "options": {k if k.startswith("quality__") else k.split("__")[-1]: list(v) if isinstance(v, tuple)
                           else v for k, v in context.params.items()}}
    # the MBR utility model runs with the evaluation's COMET batch size and device
    quality = dataclasses.replace(quality, comet_batch_size=cfg.comet_batch_size, comet_gpus=cfg.comet_gpus)
    quality.check()
    decode.check()
    chosen = choose_systems(model, hyp, compare, systems)
    apply_system_options(chosen, decode, quality, system_options)
    cfg = dataclasses.replace(cfg, systems=chosen, decode=decode,
                              engine=engine, testset=testset_source(**testset), command=command)
    files = write_report(run_evaluation(cfg))
    click.echo(Path(files.markdown).read_text(encoding="utf-8"), nl=False)
    extra = [Path(p).name for p in files.heatmaps]
    click.echo(f"report: {files.markdown} (also report.csv, report.json"
               + (f", {', '.join(extra)}" if extra else "") + ")", err=True)


COMMANDS = [evaluate]
