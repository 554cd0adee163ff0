"""Benchmark: translation speed, FLORES-200 devtest (1,012 sentences), beam 5, 2 CPU threads.

    .venv/bin/python benchmarks/bench_translate.py --small-model BUNDLE [--src en_XX --tgt de_DE]

Two models: a trained small-preset bundle (given), and a transformer-base-sized model
(6+6 layers, 512 dims) with random weights, built here from the same prepared data
(1 update of `nmt train --preset base`: speed does not depend on the weights, and a
random model runs every sentence to the length cap, the worst case).
For each, in the same run: `fairseq-interactive` (fairseq's own CLI, with the checkpoint
allow-list), `nmt translate --backend fairseq`, `nmt translate --backend ctranslate2`
(int8), and the same with the export's vocabulary shortlists (built from the small model's
training data, `nmt export --shortlist`). Reported: sentences/s and output tokens/s (end to end, start-up included),
start-up time (a one-line input), peak memory (GNU time), BLEU / chrF of each output.
"""
import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import BIN, PY, REPO, gnu_time, machine, run, update_results  # noqa: E402

INTERACTIVE = ("import sys; from nmt.fairseq_backend import install_safe_globals; install_safe_globals(); "
               "from fairseq_cli.interactive import cli_main; sys.argv[0] = 'fairseq-interactive'; cli_main()")


def fairseq_interactive_cmd(bundle: Path, data_bin: Path, src: str, tgt: str, beam: int, ckpt: Path):
    meta = json.loads((bundle / "bundle.json").read_text())
    directions = meta["directions"]
    return [PY, "-c", INTERACTIVE, data_bin, "--path", ckpt, "--task", "translation_multi_simple_epoch",
            "--lang-dict", data_bin / "lang_dict.txt", "--lang-pairs", ",".join(directions),
            "--source-lang", src, "--target-lang", tgt, "--encoder-langtok", "src", "--decoder-langtok",
            "--lang-tok-style", meta["lang_tok_style"], "--bpe", "sentencepiece", "--sentencepiece-model",
            bundle / "spm.model", "--beam", str(beam), "--max-len-a", "1.5", "--max-len-b", "10",
            "--buffer-size", "2048", "--max-tokens", "4000", "--cpu", "--no-progress-bar"]


def parse_interactive(stdout: str, n: int) -> list[str]:
    out = {}
    for line in stdout.splitlines():
        if line.startswith("D-"):
            head, _, text = line.partition("\t")
            text = text.partition("\t")[2]
            out[int(head[2:])] = text
    return [out.get(i, "") for i in range(n)]


CT2 = "nmt translate --backend ctranslate2 (int8)"
CT2_AVX512 = CT2 + ", CT2_FORCE_CPU_ISA=AVX512"
CT2_SHORTLIST = CT2 + " + vocabulary shortlist"


def _ct2_batch(bundle: Path, beam: int) -> int:
    """The sentences per batch that ``nmt translate`` picks for this bundle's int8 export."""
    from nmt.translate.backends import CTranslate2Backend, DecodeOptions
    from nmt.translate.translator import Translator

    backend = Translator(bundle, backend="ctranslate2", quantization="int8", threads=2, shortlist=False).backend
    assert isinstance(backend, CTranslate2Backend)
    return backend.batch_sentences(DecodeOptions(beam=beam))


def verdict(small: dict, large: dict) -> str:
    """The result sentence, from the measured rows."""
    ct2, fi = CT2, "fairseq-interactive"
    ratio = large[ct2]["ratio"]
    text = (f"Result: with nmt's defaults, CTranslate2 int8 is {ratio:.2f}x fairseq-interactive at transformer-base "
            f"size ({'meets' if ratio >= 4 else 'below'} the 4x target) and {small[ct2]['ratio']:.2f}x on the "
            f"trained small model, whose BLEU is {small[ct2]['bleu']:.1f} against {small[fi]['bleu']:.1f} "
            f"({'within' if abs(small[ct2]['bleu'] - small[fi]['bleu']) <= 0.5 else 'outside'} 0.5).")
    if CT2_SHORTLIST in large:
        text += (f" With the export's vocabulary shortlists (`nmt export --shortlist`) it is "
                 f"{large[CT2_SHORTLIST]['ratio']:.2f}x at base size and {small[CT2_SHORTLIST]['ratio']:.2f}x on the "
                 f"small model (BLEU {small[CT2_SHORTLIST]['bleu']:.1f}).")
    if CT2_AVX512 in large:
        text += (f" Opting in to AVX-512 (`CT2_FORCE_CPU_ISA=AVX512`, which CTranslate2 never selects by itself) "
                 f"gives {large[CT2_AVX512]['ratio']:.2f}x at base size and {small[CT2_AVX512]['ratio']:.2f}x on the "
                 f"small model (BLEU {small[CT2_AVX512]['bleu']:.1f}).")
    return text


def avx512() -> bool:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return all(f in flags.split() for f in ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"))


def score(hyps, refs, tgt):
    from nmt import metrics

    return metrics.bleu(hyps, refs, tgt).score, metrics.chrf(hyps, refs).score


def bench_model(name, bundle, data_bin, src_file, ref_lines, src, tgt, beam, work, rows):
    import sentencepiece  # noqa: F401

    n = len(ref_lines)
    one = work / "one.txt"
    one.write_text(src_file.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    ckpt = bundle / json.loads((bundle / "bundle.json").read_text())["checkpoint"]
    systems = {
        "fairseq-interactive": lambda inp: fairseq_interactive_cmd(bundle, data_bin, src, tgt, beam, ckpt),
        "nmt translate --backend fairseq": lambda inp: [BIN / "nmt", "translate", "-m", bundle, "-s", src, "-t", tgt,
                                                         "-i", inp, "--beam", beam, "--backend", "fairseq",
                                                         "--threads", "2"],
        CT2: lambda inp: [BIN / "nmt", "translate", "-m", bundle, "-s", src, "-t", tgt, "-i", inp, "--beam", beam,
                          "--backend", "ctranslate2", "--quantization", "int8", "--threads", "2", "--no-shortlist"],
        CT2_SHORTLIST: lambda inp: [BIN / "nmt", "translate", "-m", bundle, "-s", src, "-t", tgt, "-i", inp, "--beam",
                                    beam, "--backend", "ctranslate2", "--quantization", "int8", "--threads", "2",
                                    "--shortlist"],
    }
    envs = {label: None for label in systems}
    if avx512():
        # CTranslate2 never picks AVX-512 by itself; CT2_FORCE_CPU_ISA opts in (a user's choice, not nmt's)
        systems[CT2_AVX512] = systems[CT2]
        envs[CT2_AVX512] = {**os.environ, "CT2_FORCE_CPU_ISA": "AVX512"}
    base_rate = None
    measured = {}
    for label, make in systems.items():
        stdin_mode = label == "fairseq-interactive"
        t_start, _, _ = gnu_time(make(one), env=envs[label], **({"input": one.read_text()} if stdin_mode else {}))
        t, peak, result = gnu_time(make(src_file), env=envs[label],
                                   **({"input": src_file.read_text()} if stdin_mode else {}))
        hyps = parse_interactive(result.stdout, n) if stdin_mode else result.stdout.split("\n")[:n]
        tokens = sum(len(h.split()) for h in hyps)
        bleu, chrf = score(hyps, ref_lines, tgt)
        rate = n / t
        base_rate = base_rate or rate
        measured[label] = {"ratio": rate / base_rate, "bleu": bleu}
        rows.append(f"| {name} | {label} | {rate:.2f} | {tokens / t:.0f} | {t_start:.1f} | {peak:.0f} | "
                    f"{bleu:.1f} / {chrf:.1f} | **{rate / base_rate:.2f}x** |")
        print(rows[-1], flush=True)
    return measured


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-model", required=True, type=Path)
    parser.add_argument("--small-data", required=True, type=Path, help="the prepared-data dir of the small model")
    parser.add_argument("--src", default="en_XX")
    parser.add_argument("--tgt", default="de_DE")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--flores-dir", type=Path, default=REPO / "data_prep" / "sample" / "flores200" / "devtest")
    parser.add_argument("--work", type=Path, default=REPO / "work" / "bench_translate")
    args = parser.parse_args()
    from nmt import langs
    from nmt.translate.backends import CTranslate2Backend, FairseqBackend, ctranslate2_threads

    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src_file = args.flores_dir / f"{langs.get(args.src).flores}.devtest"
    refs = (args.flores_dir / f"{langs.get(args.tgt).flores}.devtest").read_text(encoding="utf-8").splitlines()
    # transformer-base-sized model, random weights (one update), same data and vocabulary
    base = work / "base"
    run([BIN / "nmt", "train", "--data", args.small_data, "--output", base, "--set", "model.preset=base",
         "--set", "training.max_updates=1", "--set", "validation.every_updates=1000", "--set",
         "validation.max_sentences=1", "--set", "checkpoint.every_updates=1000"])
    for bundle in (args.small_model, base):  # with shortlists: the plain rows pass --no-shortlist
        run([BIN / "nmt", "export", "-m", bundle, "--quantization", "int8", "--force", "--shortlist", args.small_data])
    rows = []
    small = bench_model("small (trained)", args.small_model, args.small_data / "bin", src_file, refs, args.src, args.tgt,
                args.beam, work, rows)
    large = bench_model("base size (random weights)", base, args.small_data / "bin", src_file, refs, args.src, args.tgt,
                args.beam, work, rows)
    ct2_batches = ", ".join(f"{name}: {_ct2_batch(bundle, args.beam)}" for name, bundle in
                            (("small", args.small_model), ("base size", base)))
    body = f"""
Machine: {machine()}.
Command: `.venv/bin/python benchmarks/bench_translate.py --small-model {args.small_model} --small-data {args.small_data} --src {args.src} --tgt {args.tgt}`
({time.strftime('%Y-%m-%d')}). FLORES-200 devtest {args.src} -> {args.tgt}, {len(refs)} sentences, beam {args.beam},
2 CPU threads, output cap 1.5 x source + 10 tokens. Each command is timed end to end (process start to exit);
start-up = the same command on a one-line input; peak memory from GNU time.
Batching: fairseq-interactive `--max-tokens 4000 --buffer-size 2048`; `nmt translate` up to 4000 tokens and
{FairseqBackend.max_batch_sentences} sentences per batch on the fairseq backend; on CTranslate2 its CPU default,
{CTranslate2Backend.cpu_batch_budget:,} // (beam x model width²) sentences per batch ({ct2_batches}), decoded
{ctranslate2_threads(2)[0]} batches in parallel ({ctranslate2_threads(2)[1]} thread each) with `--threads 2`.

| model | system | sentences/s | tokens/s | start-up (s) | peak RSS (MiB) | BLEU / chrF | speed vs fairseq-interactive |
|---|---|---:|---:|---:|---:|---|---:|
""" + "\n".join(rows) + f"""

Target: CTranslate2 int8 at least 4x fairseq-interactive at transformer-base size, BLEU within 0.5
(for the random-weight model BLEU is meaningless: compare the trained small model's scores).

{verdict(small, large)}
"""
    update_results("Translation speed (FLORES-200 devtest, beam 5)", body)
    print(body)


if __name__ == "__main__":
    main()
