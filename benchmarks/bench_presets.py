"""Benchmark: what the tiny and small presets reach on FLORES-200 devtest after their time budgets.

    .venv/bin/python benchmarks/bench_presets.py --preset tiny  --minutes 6  --data sample
    .venv/bin/python benchmarks/bench_presets.py --preset small --minutes 60 --data ml50-4

`sample`: the embedded sample (quickstart conditions). `ml50-4`: all of ml50-mini's
German, Russian, Japanese and Korean bitext (about 113k pairs) from ../shared/data.
Both: FLORES-200 devtest removed from training; 8 directions (4 languages <-> English);
evaluation on all 1,012 devtest lines, beam 5, CTranslate2 int8, chrF (and BLEU with
the target language's tokenizer) per direction; plus the in-domain held-out test split.
The trained bundle is kept (work/bench_presets/<preset>) for the translation benchmark.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import BIN, REPO, SHARED, machine, run, update_results  # noqa: E402

LANGS = ("de_DE", "ja_XX", "ko_KR", "ru_RU")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--minutes", type=float, default=6)
    parser.add_argument("--data", choices=["sample", "ml50-4"], default="sample")
    parser.add_argument("--work", type=Path, default=REPO / "work" / "bench_presets")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run of the same preset (the time budget counts training "
                             "time across resumes) instead of starting over")
    parser.add_argument("--skip-train", action="store_true",
                        help="only export and evaluate the bundle that an earlier run finished training")
    args = parser.parse_args()
    from nmt import langs
    from nmt import metrics
    from nmt.translate.backends import DecodeOptions
    from nmt.translate.translator import Translator

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    flores = REPO / "data_prep" / "sample" / "flores200" / "devtest"
    if args.data == "sample":
        raw, data, pairs = REPO / "data_prep" / "sample" / "ml50" / "raw", work / "data-sample", "all"
        vocab = 4000
    else:
        raw, data = SHARED / "ml50-mini" / "raw", work / "data-ml50-4"
        pairs = ",".join(f"{x}-en_XX,en_XX-{x}" for x in LANGS)
        vocab = 16000
    run([BIN / "nmt", "prepare", "--raw", raw, "--eval-set", flores, "--out", data, "--pairs", pairs,
         "--vocab-size", vocab])
    model = work / args.preset
    config = REPO / "recipes" / "configs" / "quickstart.yaml"
    sets = [f"model.preset={args.preset}", f"training.max_time_minutes={args.minutes}",
            "training.max_updates=1000000", "validation.every_updates=1000", "checkpoint.every_updates=1000"]
    t0 = time.perf_counter()
    if not args.skip_train:
        run([BIN / "nmt", "train", "--config", config, "--data", data, "--output", model,
             *([] if args.resume else ["--reset"]), *[x for s in sets for x in ("--set", s)]])
    train_wall = time.perf_counter() - t0
    run([BIN / "nmt", "export", "-m", model, "--quantization", "int8", "--force"])
    manifest = json.loads((model / "training.json").read_text())
    translator = Translator(model, backend="ctranslate2", quantization="int8")
    rows = []
    options = DecodeOptions(beam=5)
    for src, tgt in [(x, "en_XX") for x in LANGS] + [("en_XX", x) for x in LANGS]:
        source = (flores / f"{langs.get(src).flores}.devtest").read_text(encoding="utf-8").splitlines()
        refs = (flores / f"{langs.get(tgt).flores}.devtest").read_text(encoding="utf-8").splitlines()
        hyps = translator.translate_text(source, src, tgt, options=options)
        test_name = f"{src}-{tgt}" if src != "en_XX" else f"{tgt}-{src}"
        f_chrf, f_bleu = metrics.chrf(hyps, refs), metrics.bleu(hyps, refs, tgt)
        test_src, test_ref = (data / "clean" / f"test.{test_name}.{x}" for x in (src, tgt))
        if test_src.exists() and test_ref.exists():
            test_lines = test_src.read_text(encoding="utf-8").splitlines()
            refs_in = test_ref.read_text(encoding="utf-8").splitlines()
            t_chrf = metrics.chrf(translator.translate_text(test_lines, src, tgt, options=options), refs_in)
            in_domain = f"{t_chrf.score:.1f} ({len(refs_in)} lines)"
        else:
            in_domain = "n/a (the corpus has no test split)"
        rows.append(f"| {src}-{tgt} | {manifest['directions'][f'{src}-{tgt}']['train']:,} | {f_chrf.score:.1f} | "
                    f"{f_bleu.score:.1f} | {in_domain} |")
    best = manifest["best"]
    restarts = [str(x["update"]) for x in manifest.get("starts", [])[1:]]
    resumed_from = ", ".join(restarts) if restarts else None
    resume_note = (f" The run was interrupted and resumed with `--resume` from its last checkpoint (update "
                   f"{resumed_from}); the budget counts training time across both parts."
                   if resumed_from is not None else "")
    wall_note = (f"; wall time incl. validation {train_wall / 60:.1f} min" if not args.skip_train and resumed_from is None
                 else f"; {manifest['training_seconds'] / 60:.1f} min of training time in all")
    import yaml

    train_cfg = yaml.safe_load((model / "config.yaml").read_text())["training"]
    optimiser = (f"Optimiser settings from `recipes/configs/quickstart.yaml`: lr {train_cfg['lr']}, warmup "
                 f"{train_cfg['warmup_updates']}, {train_cfg['max_tokens']} tokens per batch, update_freq "
                 f"{train_cfg['update_freq']}, sampling temperature {train_cfg['sampling_temperature']}.")
    body = f"""
Machine: {machine()}.
Command: `.venv/bin/python benchmarks/bench_presets.py --preset {args.preset} --minutes {args.minutes} --data {args.data}{' --resume' if args.resume else ''}{' --skip-train' if args.skip_train else ''}`
({time.strftime('%Y-%m-%d')}). Budget: {args.minutes} min of training ({manifest['updates']} updates,
{manifest['parameters']:,} parameters{wall_note}; best validation
chrF {best['score']} at update {best['update']}).{resume_note} FLORES-200 devtest, all 1,012 lines, beam 5, CTranslate2 int8.
{optimiser}
Signatures: chrF `{f_chrf.signature}`; BLEU `{f_bleu.signature}` (tokenizer per target language).

| direction | training pairs | FLORES chrF | FLORES BLEU | in-domain test chrF |
|---|---:|---:|---:|---:|
""" + "\n".join(rows) + "\n"
    update_results(f"Preset {args.preset} after {args.minutes:g} min on {args.data}", body)
    print(body)


if __name__ == "__main__":
    main()
