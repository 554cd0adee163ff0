"""CLI commands of evaluation (registered by nmt.cli): ``nmt evaluate``."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from nmt.cli_util import decoding_options, friendly_errors, options_from
from nmt.errors import NmtError
from nmt.translate.options import QualityOptions


@click.command("evaluate")
@click.argument("systems", nargs=-1, metavar="[SYSTEM]...")
@click.option("--model", "-m", type=click.Path(), help="Model bundle: translate the test sets, then score.")
@click.option("--hyp", type=click.Path(), help="Existing hypotheses: a directory of SRC-TGT.hyp files (or an "
              "earlier report directory), or one file with --direction.")
@click.option("--compare", is_flag=True, help="Compare the SYSTEM arguments (bundles, bundle checkpoints, "
              "hypothesis directories; NAME=PATH to name one); the first is the baseline.")
@click.option("--directions", "--direction", "-d", "directions",
              help="SRC-TGT list (de_DE-en_XX,en_XX-ja_XX) or trained | all | to-en | from-en | non-en. "
                   "Default: the model's trained directions, or every direction with hypothesis files.")
@click.option("--testset", type=click.Choice(["flores200", "ml50", "files"]),
              help="Test set kind. Default: files with --src/--ref, ml50 with --ml50-dir, else flores200.")
@click.option("--flores-dir", type=click.Path(), envvar="NMT_FLORES_DIR", show_envvar=True,
              help="FLORES-200 directory of {flores_code}.devtest files [default: the embedded sample].")
@click.option("--ml50-dir", type=click.Path(), help="ML50 raw directory (test.xx_XX-en_XX.* files).")
@click.option("--split", default="test", show_default=True, help="Split of --ml50-dir to use.")
@click.option("--src", "src_file", help="Source file, or a pattern with {src} {tgt} {src_iso} {tgt_iso} "
              "{src_flores} {tgt_flores} for several directions (e.g. wmt/newstest2021.{src_iso}-{tgt_iso}.{src_iso}).")
@click.option("--ref", "ref_file", help="Reference file or pattern (as --src).")
@click.option("--testset-name", help="Name of a --src/--ref test set in the report (e.g. newstest2021).")
@click.option("--lines", help="1-based inclusive line ranges of every test file, e.g. 1-500 or 1-100,301-400 "
              "[default: all lines].")
@click.option("--out-dir", "-o", required=True, type=click.Path(file_okay=False),
              help="Report directory: report.md/.csv/.json, hyps/, segments/, heatmaps.")
@click.option("--tokenize", help="BLEU tokenizer for every target (13a) and/or per target (ja_XX=char,zh_CN=zh) "
              "[default: per language: zh, ja-mecab, ko-mecab, flores200 (else char), 13a].")
@click.option("--comet-model", default="Unbabel/wmt22-comet-da", show_default=True,
              help="COMET model: hub name (from the local HF cache) or path to a local COMET model directory.")
@click.option("--no-comet", is_flag=True, help="Skip COMET.")
@click.option("--comet-encoder", type=click.Path(), help="Local directory with the COMET encoder's tokenizer and "
              "config.json (for a checkpoint whose encoder is not in the HF cache).")
@click.option("--comet-batch-size", default=16, show_default=True)
@click.option("--comet-gpus", default=0, show_default=True, help="0: COMET on CPU; 1: on one GPU.")
@click.option("--comet-cache", type=click.Path(file_okay=False), help="Segment-score cache directory "
              "[default: $NMT_CACHE_DIR/comet or ~/.cache/nmt/comet].")
@click.option("--comet-download", is_flag=True, help="Allow downloading the COMET model and its encoder "
              "(off by default: everything is read from local files).")
@click.option("--require-comet", is_flag=True, help="Fail (exit 2) instead of reporting COMET as n/a.")
@click.option("--paired-test", type=click.Choice(["bs", "ar", "both"]), default="bs", show_default=True,
              help="With --compare: paired bootstrap resampling, approximate randomization, or both.")
@click.option("--bootstrap-samples", default=1000, show_default=True)
@click.option("--ar-trials", default=10000, show_default=True)
@click.option("--alpha", default=0.05, show_default=True, help="Significance level for the * marks.")
@click.option("--train-counts", type=click.Path(), help="Training counts for resource buckets: a bundle, its "
              "training.json or a prepared-data manifest.json [default: the model's training.json].")
@click.option("--resource-buckets", help="Bucket thresholds in training pairs "
              "[default: high=1000000,medium=100000,low=10000,very-low=0].")
@click.option("--heatmap", "heatmap_metric", default="chrF", show_default=True,
              type=click.Choice(["chrF", "BLEU", "chrF++", "COMET", "none"]),
              help="Metric of the source x target heatmap PNG (drawn when there are >= 2 sources and targets).")
@click.option("--decimals", default=1, show_default=True, help="Decimals of BLEU/chrF in report.md.")
@click.option("--no-segments", is_flag=True, help="Do not write per-segment scores (segments/*.jsonl).")
@decoding_options(sampling=True, without=("nbest", "batch_sentences", "quantization", "shortlist"))
@options_from(QualityOptions, "quality", rename={"comet_model": "--mbr-comet-model", "comet_encoder":
                                                 "--mbr-comet-encoder"}, without=("comet_batch_size", "comet_gpus"))
@click.option("--system-option", "system_options", multiple=True, metavar="NAME:KEY=VALUE",
              help="A decoding-for-quality option of one --compare system (repeatable), e.g. pivot:pivot=en_XX "
                   "or mbr:mbr=chrf; KEY: mbr, rerank, candidates, pseudo-refs, comet-model, comet-encoder, "
                   "qe-model, qe-encoder, pivot, or beam, len-penalty, sampling, sampling-topk, sampling-topp, "
                   "epsilon, temperature, seed.")
@friendly_errors
def evaluate(systems, model, hyp, compare, directions, testset, flores_dir, ml50_dir, split, src_file, ref_file,
             testset_name, lines, out_dir, tokenize, comet_model, no_comet, comet_encoder, comet_batch_size,
             comet_gpus, comet_cache, comet_download, require_comet, paired_test, bootstrap_samples, ar_trials,
             alpha, train_counts, resource_buckets, heatmap_metric, decimals, no_segments, decode, engine, quality,
             system_options):
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
    from nmt.evaluate.runner import EvalConfig, evaluate as run_evaluation
    from nmt.evaluate.systems import parse_system
    from nmt.evaluate.testsets import LineRange, TestSetSource

    chosen = [name for name, value in (("--model", model), ("--hyp", hyp), ("--compare", compare)) if value]
    if len(chosen) != 1:
        raise NmtError("give exactly one of --model BUNDLE, --hyp PATH or --compare SYSTEM SYSTEM ..."
                       + (f" (got {' and '.join(chosen)})" if chosen else ""))
    if systems and not compare:
        raise NmtError(f"unexpected argument(s) {' '.join(systems)}: system arguments need --compare")
    if compare and len(systems) < 2:
        raise NmtError("--compare needs at least two systems (the first is the baseline)")
    if model:
        if not (Path(model) / "bundle.json").is_file():
            raise NmtError(f"--model {model} is not a model bundle (no bundle.json); for hypothesis files use --hyp")
        specs = [model]
    else:
        specs = [hyp] if hyp else list(systems)
    parsed = [parse_system(spec) for spec in specs]
    if hyp and parsed[0].translates:
        raise NmtError(f"--hyp {hyp} is a model bundle; use --model to translate with it")
    quality = dataclasses.replace(quality, comet_batch_size=comet_batch_size, comet_gpus=comet_gpus)
    quality.check()
    decode.check()
    apply_system_options(parsed, decode, quality, system_options)

    kind = testset or ("files" if (src_file or ref_file) else "ml50" if ml50_dir else "flores200")
    if (src_file or ref_file) and kind != "files":
        raise NmtError(f"--src/--ref give a plain-file test set; they cannot be combined with --testset {kind}")
    source = TestSetSource(kind, LineRange.parse(lines), flores_dir=flores_dir, ml50_dir=ml50_dir, split=split,
                           src_pattern=src_file, ref_pattern=ref_file, name=testset_name)
    cfg = EvalConfig(
        systems=parsed, out_dir=Path(out_dir), testset=source, directions=directions, tokenize=tokenize,
        comet=not no_comet, comet_model=comet_model, comet_encoder=comet_encoder, comet_batch_size=comet_batch_size,
        comet_gpus=comet_gpus, comet_cache=comet_cache, comet_download=comet_download, require_comet=require_comet,
        paired_tests=("bs", "ar") if paired_test == "both" else (paired_test,), bootstrap_samples=bootstrap_samples,
        ar_trials=ar_trials, alpha=alpha, train_counts=train_counts, buckets=resource_buckets,
        heatmap_metric=None if heatmap_metric == "none" else heatmap_metric, decimals=decimals,
        segments=not no_segments, decode=decode, backend=engine.backend, device=engine.device,
        threads=engine.threads, batch_tokens=engine.batch_tokens, command={
            "argv": ["nmt", "evaluate", *sys.argv[2:]] if sys.argv[1:2] == ["evaluate"] else None,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in click.get_current_context().params.items()}},
    )
    if bootstrap_samples < 1 or ar_trials < 1 or not 0 < alpha < 1 or decimals < 0:
        raise NmtError("--bootstrap-samples and --ar-trials must be >= 1, --alpha in (0, 1), --decimals >= 0")
    evaluation = run_evaluation(cfg)
    outputs = write_report(evaluation)
    click.echo(Path(outputs["markdown"]).read_text(encoding="utf-8"), nl=False)
    extra = [Path(p).name for p in outputs.get("heatmaps", [])]
    click.echo(f"report: {outputs['markdown']} (also report.csv, report.json"
               + (f", {', '.join(extra)}" if extra else "") + ")", err=True)


def apply_system_options(systems, decode, quality: QualityOptions, specs) -> None:
    """Every translating system decodes with ``decode`` and ``quality``, changed per system by
    ``NAME:KEY=VALUE`` (a field of ``QualityOptions``, or one of ``SYSTEM_DECODE_KEYS``)."""
    from nmt.translate.options import SYSTEM_DECODE_KEYS, with_values

    per_system: dict = {}
    for spec in specs:
        name, sep, setting = spec.partition(":")
        key, eq, value = setting.partition("=")
        if not sep or not eq or not key.strip():
            raise NmtError(f"--system-option {spec!r}: write NAME:KEY=VALUE, e.g. pivot:pivot=en_XX")
        per_system.setdefault(name.strip(), {})[key.strip()] = value.strip()
    names = {s.name: s for s in systems}
    for name, values in per_system.items():
        if name not in names:
            raise NmtError(f"--system-option: no system named {name!r}; the systems are {', '.join(names)}")
        if not names[name].translates:
            raise NmtError(f"--system-option: system {name} reads hypothesis files; only a model bundle decodes")
    quality_keys = {f.name for f in dataclasses.fields(QualityOptions)}
    for system in systems:  # hypothesis files were decoded elsewhere: nothing to apply
        if system.translates:
            values = per_system.get(system.name, {})
            own = {k: v for k, v in values.items() if k.replace("-", "_") not in quality_keys}
            system.quality = quality.with_values({k: v for k, v in values.items() if k not in own})
            system.decode = with_values(decode, own, SYSTEM_DECODE_KEYS)
            system.decode.check()


COMMANDS = [evaluate]
