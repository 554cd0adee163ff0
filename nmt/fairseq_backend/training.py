"""Training through fairseq: arguments from nmt's config, and the start of the training loop.

``fairseq_train_args`` (translation) and ``denoising_args`` (mBART-style
pretraining) turn an nmt ``TrainConfig`` into the argument list of
``fairseq-train`` (the same list the benchmark passes to ``fairseq-train``
itself, so the two can be compared like for like). ``run`` parses them with
fairseq's own parser and starts the loop of ``nmt.fairseq_backend.loop`` in
every rank (fairseq's ``distributed_utils.call_main``).
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from nmt.errors import NmtError
from nmt.fairseq_backend import install_safe_globals
from nmt.fairseq_backend.settings import Hooks, LoopResult, LoopSettings


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise NmtError("training.device is cuda but no CUDA GPU is visible; use cpu or auto")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX): bf16 autocast then trains about
    1.8x faster at the small preset's width (benchmarks/RESULTS.md); elsewhere it is emulated and slow."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bf16 autocast on a CPU with native bfloat16, fp32 everywhere else (GPUs included: mixed
    precision was slower than fp32 at 8k-token batches on an H200, benchmarks/RESULTS.md)."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cpu" and cpu_has_native_bf16() else "fp32"


def model_args(m, arch: str = "transformer") -> list[str]:
    """Architecture arguments for a preset-shaped model (``m``: a ``ModelShape``, ModelConfig.resolved())."""
    args = [
        "--arch", arch,
        "--encoder-embed-dim", str(m.embed_dim), "--decoder-embed-dim", str(m.embed_dim),
        "--encoder-ffn-embed-dim", str(m.ffn_dim), "--decoder-ffn-embed-dim", str(m.ffn_dim),
        "--encoder-attention-heads", str(m.heads), "--decoder-attention-heads", str(m.heads),
        "--encoder-layers", str(m.encoder_layers), "--decoder-layers", str(m.decoder_layers),
        "--max-source-positions", str(m.max_positions), "--max-target-positions", str(m.max_positions),
    ]
    if m.share_all_embeddings:
        args.append("--share-all-embeddings")
    if m.normalize_before:
        args += ["--encoder-normalize-before", "--decoder-normalize-before"]
    if arch.startswith("mbart"):  # the mBART layout: learned positions, embedding layer norm, GELU
        args += ["--layernorm-embedding", "--encoder-learned-pos", "--decoder-learned-pos",
                 "--activation-fn", "gelu"]
    return args


def optimization_args(t, adam_eps: str = "1e-08") -> list[str]:
    # the budget schedule is nmt's (the loop sets the rate before every update): fairseq's is left fixed
    schedule = (["--lr-scheduler", "inverse_sqrt", "--warmup-updates", str(t.warmup_updates),
                 "--warmup-init-lr", "1e-07"] if t.lr_schedule == "inverse_sqrt" else ["--lr-scheduler", "fixed"])
    return [
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--adam-eps", adam_eps,
        "--lr", str(t.lr), *schedule,
        "--weight-decay", str(t.weight_decay), "--clip-norm", str(t.clip_norm),
        "--max-tokens", str(t.max_tokens), "--update-freq", str(t.update_freq),
        "--max-update", str(t.max_updates), "--seed", str(t.seed),
    ] + (["--max-epoch", str(t.max_epochs)] if t.max_epochs else [])


def runtime_args(cfg, save_dir: str, device: str) -> list[str]:
    t, d = cfg.training, cfg.distributed
    args = ["--save-dir", str(save_dir), "--num-workers", "0", "--skip-invalid-size-inputs-valid-test",
            "--log-format", "simple", "--log-interval", str(t.log_every), "--no-progress-bar",
            "--distributed-world-size", str(d.world_size)]
    if device == "cpu":
        args.append("--cpu")
    elif t.precision == "fp16":
        args.append("--fp16")
    elif t.precision == "bf16":
        args.append("--bf16")
    if d.world_size > 1:
        backend = d.backend if d.backend != "auto" else ("gloo" if device == "cpu" else "nccl")
        args += ["--distributed-backend", backend]
        if d.init_method:  # one process per rank, started by the user (or SLURM): no spawning
            args += ["--distributed-init-method", d.init_method, "--distributed-rank", str(d.rank),
                     "--distributed-no-spawn"]
            if device != "cpu":  # which GPU this rank drives
                import torch

                local = os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID")
                gpus = max(1, torch.cuda.device_count())
                args += ["--device-id", str(int(local) if local is not None else d.rank % gpus)]
        # no init_method: on GPUs fairseq spawns one process per GPU itself, or reads torchrun's /
        # SLURM's environment
        # fairseq's pytorch_ddp wraps the model with device_ids=[0], which fails on CPU
        args += ["--ddp-backend", "legacy_ddp" if device == "cpu" else "pytorch_ddp"]
    return args


def fairseq_train_args(cfg, data_bin: str, directions, lang_tok_style: str, save_dir: str,
                       device: str, finetune_from: str | None = None, arch_args: list | None = None) -> list[str]:
    """The ``fairseq-train`` arguments equivalent to an nmt ``TrainConfig`` (translation).

    ``arch_args`` replaces the preset's architecture (fine-tuning a pretrained model
    must reproduce that model's architecture exactly).
    """
    m = cfg.model.resolved()
    t = cfg.training
    args = [
        str(data_bin),
        "--task", "translation_multi_simple_epoch",
        "--lang-dict", str(Path(data_bin.split(":")[0]) / "lang_dict.txt"),  # shards: all hold the same
        "--lang-pairs", ",".join(f"{s}-{g}" for s, g in directions),
        "--lang-tok-style", lang_tok_style,
        "--encoder-langtok", t.encoder_langtok,
        "--sampling-method", "temperature",
        "--sampling-temperature", str(t.sampling_temperature),
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", str(t.label_smoothing),
        "--dropout", str(m.dropout), "--attention-dropout", str(m.attention_dropout),
    ]
    if t.decoder_langtok:
        args.append("--decoder-langtok")
    if arch_args is None:
        arch_args = model_args(m, arch="mbart_large" if m.arch == "mbart" else "transformer")
    args += arch_args
    args += optimization_args(t, adam_eps="1e-06" if finetune_from else "1e-08")
    args += runtime_args(cfg, save_dir, device)
    if finetune_from:
        args += ["--finetune-from-model", str(finetune_from)]
    return args


def denoising_args(cfg, data_dir: str, languages, spm_model: str, save_dir: str, device: str) -> list[str]:
    """``fairseq-train`` arguments for mBART-style multilingual denoising pretraining."""
    m = cfg.model.resolved()
    n = cfg.denoising
    args = [
        str(data_dir), "--task", "multilingual_denoising", "--langs", ",".join(languages), "--add-lang-token",
        # no --bpe: fairseq 0.12's multilingual_denoising passes the bpe *name* where its whole-word
        # mask helper wants a config ("file ??? not found"), so spans are masked at subword level
        "--mask", str(n.mask), "--mask-random", str(n.mask_random), "--mask-length", "span-poisson",
        "--poisson-lambda", str(n.poisson_lambda), "--replace-length", "1", "--rotate", "0",
        "--permute-sentences", str(n.permute_sentences), "--insert", "0",
        "--tokens-per-sample", str(min(n.tokens_per_sample, m.max_positions)),
        "--sample-break-mode", "complete", "--multilang-sampling-alpha", str(n.sampling_alpha),
        "--criterion", "cross_entropy",
        "--dropout", str(m.dropout), "--attention-dropout", str(m.attention_dropout),
    ]
    args += model_args(m, arch="mbart_large")
    args += optimization_args(cfg.training)
    args += runtime_args(cfg, save_dir, device)
    return args


def run(argv: list[str], hooks: Hooks, settings: LoopSettings, stop=None) -> LoopResult | None:
    """Parse fairseq arguments and run the training loop (spawning ranks if fairseq needs to); how
    training ended, or None when fairseq ran it in processes of its own (one per GPU). ``stop``
    (an ``nmt.stopping.StopRequest``) asks the loop to save and return early."""
    install_safe_globals()
    from fairseq.distributed import utils as distributed_utils

    from nmt.fairseq_backend import loop

    cfg = parse_fairseq_args(argv)
    outcome: list = []
    distributed_utils.call_main(cfg, loop.main, hooks=hooks, settings=settings, outcome=outcome, stop=stop)
    return outcome[0] if outcome else None


def parse_fairseq_args(argv: list[str]):
    """fairseq's parser on our generated arguments; its usage dump becomes one error line."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            args = options.parse_args_and_arch(parser, input_args=argv)
    except SystemExit:
        last = [line for line in captured.getvalue().splitlines() if line.strip()][-1:]
        raise RuntimeError(f"fairseq rejected the generated arguments: {last[0] if last else '?'}") from None
    if args.bf16 and not args.cpu:
        # fairseq 0.12 takes --bf16 to mean a TPU (options.py sets tpu=True; facebookresearch/fairseq#4696),
        # and its Trainer then asks torch_xla for the device. On a GPU, bf16 is the same mixed
        # precision as --fp16 (bf16 model, fp32 master weights) without loss scaling.
        args.tpu = False
    return convert_namespace_to_omegaconf(args)
