"""Benchmark: `nmt prepare` vs the ML50 reference pipeline, on the full ml50-mini data.

    .venv/bin/python benchmarks/bench_prepare.py [--shared ../shared/data] [--workers 2]

1. `nmt prepare` on all 20 languages <-> English (clean, sentencepiece, binarize),
   timed as a whole and stage by stage.
2. The reference that the ML50 scripts use, on the *same* cleaned text, sentencepiece
   model and dictionary: `spm_encode` per file (sentencepiece's own encoder, run per
   line as the spm_encode tool does; one process per file, `--workers` at a time), then
   `fairseq-preprocess --srcdict --tgtdict --workers N` once per language pair.
3. Our binarize stage again alone (bin/ removed, clean/ and spm/ kept), same run.
4. Every .bin/.idx file of both is compared byte for byte.
Results go to benchmarks/RESULTS.md.
"""
import argparse
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import BIN, REPO, SHARED, machine, run, update_results  # noqa: E402


def spm_encode(args):
    """What `spm_encode --model M --output_format piece < in > out` does."""
    model, src, dst = args
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line in fin:
            fout.write(" ".join(sp.encode(line.rstrip("\n"), out_type=str)) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(SHARED))
    parser.add_argument("--work", default=str(REPO / "work" / "bench_prepare"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=32000)
    args = parser.parse_args()
    raw = Path(args.shared) / "ml50-mini" / "raw"
    flores = Path(args.shared) / "flores200" / "devtest"
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ours = work / "ours"
    cmd = [BIN / "nmt", "prepare", "--raw", raw, "--eval-set", flores, "--out", ours, "--vocab-size",
           args.vocab_size, "--workers", args.workers]
    t_full, _ = run(cmd)
    import json

    manifest = json.loads((ours / "manifest.json").read_text())
    stage_secs = {s: json.loads((ours / s / "stage.json").read_text())["seconds"] for s in ("clean", "spm", "bin")}
    pairs = sorted(manifest["pairs"])
    n_pairs = sum(p["train"]["kept"] + p["valid"]["lines"] + p["test"]["lines"] for p in manifest["pairs"].values())

    # reference: spm_encode, then fairseq-preprocess per pair, from the same clean text / spm / dict
    ref = work / "reference"
    enc = ref / "spm"
    enc.mkdir(parents=True)
    model = ours / "spm" / "spm.model"
    jobs = []
    for name in pairs:
        for split in ("train", "valid", "test"):
            for lang in name.split("-"):
                src = ours / "clean" / f"{split}.{name}.{lang}"
                if src.exists():
                    jobs.append((model, src, enc / src.name))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(spm_encode, jobs))
    t_encode = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name in pairs:
        a, b = name.split("-")
        cmd = [BIN / "fairseq-preprocess", "--source-lang", a, "--target-lang", b, "--trainpref",
               enc / f"train.{name}", "--validpref", enc / f"valid.{name}", "--destdir", ref / "bin",
               "--srcdict", ours / "bin" / "dict.txt", "--tgtdict", ours / "bin" / "dict.txt",
               "--workers", args.workers, "--dataset-impl", "mmap"]
        if (enc / f"test.{name}.{a}").exists():
            cmd += ["--testpref", enc / f"test.{name}"]
        run(cmd)
    t_preprocess = time.perf_counter() - t0
    t_reference = t_encode + t_preprocess

    # our binarize stage alone, on the same clean text / spm / dict
    shutil.rmtree(ours / "bin")
    cmd = [BIN / "nmt", "prepare", "--raw", raw, "--eval-set", flores, "--out", ours, "--vocab-size",
           args.vocab_size, "--workers", args.workers]
    t_again, _ = run(cmd)
    t_bin = json.loads((ours / "bin" / "stage.json").read_text())["seconds"]

    compared = identical = 0
    for path in sorted((ref / "bin").glob("*.bin")) + sorted((ref / "bin").glob("*.idx")):
        compared += 1
        identical += path.read_bytes() == (ours / "bin" / path.name).read_bytes()
    body = f"""
Machine: {machine()}.
Command: `.venv/bin/python benchmarks/bench_prepare.py --workers {args.workers} --vocab-size {args.vocab_size}`
({time.strftime('%Y-%m-%d')}). Data: `ml50-mini/raw`, {len(pairs)} language pairs (both directions each),
{n_pairs:,} sentence pairs after cleaning; FLORES-200 devtest removed from training.

| step | seconds |
|---|---:|
| `nmt prepare`, all stages (clean {stage_secs['clean']:.1f} s, spm {stage_secs['spm']:.1f} s, binarize {stage_secs['bin']:.1f} s) | {t_full:.1f} |
| reference: `spm_encode` per file ({args.workers} processes) | {t_encode:.1f} |
| reference: `fairseq-preprocess` per pair (`--workers {args.workers}`) | {t_preprocess:.1f} |
| **reference total (encode + binarize)** | **{t_reference:.1f}** |
| **`nmt prepare` binarize stage, same clean text / spm / dict** | **{t_bin:.1f}** (whole command incl. start-up: {t_again:.1f}) |

Speed-up of our binarization over the reference: **{t_reference / t_bin:.1f}x** (whole command: {t_reference / t_again:.1f}x; target 1.5x).
Identical output: {identical} of {compared} `.bin`/`.idx` files are byte-for-byte equal to fairseq-preprocess's.
"""
    update_results("Data preparation (`nmt prepare` vs spm_encode + fairseq-preprocess)", body)
    print(body)
    if identical != compared:
        raise SystemExit("binarized data differs from the reference")


if __name__ == "__main__":
    main()
