"""One shared SentencePiece model for all languages.

Languages are mixed by temperature sampling before training, as XLM and mBART
do for their vocabularies: language ``l`` with ``n_l`` sentences gets a share
proportional to ``n_l ** (1 / T)``. T=1 keeps the natural proportions; larger T
flattens them so that low-resource languages get pieces of their own (their
sentences are repeated when their share exceeds what they have).

sentencepiece's own normalisation is switched off (``identity``): the text was
normalised by ``nmt prepare`` already, and NFKC inside the model would turn
full-width CJK punctuation into ASCII in every output. So decoding a training
line's pieces gives the line back exactly.

The model's special ids follow fairseq's dictionary (``<s>``=0, ``<pad>``=1,
``</s>``=2, ``<unk>``=3), so a piece's sentencepiece id equals its fairseq id.
"""
from __future__ import annotations

import io
import random
from pathlib import Path

from nmt.data import readers
from nmt.data.sample import Reservoir
from nmt.errors import NmtError


def temperature_ratios(counts: dict[str, int], temperature: float) -> dict[str, float]:
    if temperature <= 0:
        raise NmtError(f"sampling temperature must be > 0, got {temperature}")
    weights = {k: (n ** (1.0 / temperature) if n > 0 else 0.0) for k, n in counts.items()}
    total = sum(weights.values())
    if total <= 0:
        raise NmtError("no sentences to sample from")
    return {k: w / total for k, w in weights.items()}


def sample_by_temperature(files: dict[str, list], counts: dict[str, int], budget: int, temperature: float,
                          seed: int, chunk_lines: int = 10_000) -> tuple[list[str], dict[str, int]]:
    """Draw about ``min(budget, total)`` lines from text files, languages mixed by temperature.

    ``files[lang]`` are the files holding language ``lang`` (``counts[lang]`` lines in
    all). One pass over the files: a language's quota is a reservoir sample of its
    lines, or all of them plus draws with replacement when the quota exceeds them,
    so memory is bounded by the budget, not by the data.
    """
    ratios = temperature_ratios(counts, temperature)
    size = min(budget, sum(counts.values()))
    rng = random.Random(seed)
    sample: list[str] = []
    taken: dict[str, int] = {}
    for lang in sorted(files):
        n = counts[lang]
        want = max(1, round(ratios[lang] * size)) if n else 0
        reservoir = Reservoir(min(want, n), f"{seed}:{lang}")
        for path in files[lang]:
            for chunk in readers.iter_chunks(path, chunk_lines):
                reservoir.offer(chunk)
        chosen = [line.decode("utf-8") for _, line in reservoir.sample()]
        if want > len(chosen) and chosen:  # upsample: every line once, the rest drawn with replacement
            chosen += rng.choices(chosen, k=want - len(chosen))
        taken[lang] = len(chosen)
        sample.extend(chosen)
    rng.shuffle(sample)
    return sample, taken


def train(sentences: list[str], model_prefix: Path, vocab_size: int, model_type: str = "unigram",
          character_coverage: float = 0.9995, byte_fallback: bool = False, seed: int = 1,
          threads: int = 1) -> Path:
    import sentencepiece as spm

    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
        # model_writer instead of model_prefix: the output path would otherwise be recorded in the
        # model (trainer_spec), and the same data in another directory would give different bytes
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            byte_fallback=byte_fallback,
            input_sentence_size=len(sentences),
            shuffle_input_sentence=False,  # already shuffled, with our seed
            bos_id=0, pad_id=1, eos_id=2, unk_id=3,
            # nmt prepare has normalised the text already (NFC by default); sentencepiece's own
            # NFKC would rewrite e.g. full-width CJK punctuation in every translation.
            normalization_rule_name="identity",
            num_threads=max(1, threads),
            train_extremely_large_corpus=False,
            minloglevel=2,
        )
    except RuntimeError as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        if "smaller than required_chars" in message:
            raise NmtError(
                f"a vocabulary of {vocab_size} pieces cannot hold all the characters this data needs "
                f"({message.split('Vocabulary size is smaller than required_chars.')[-1].split('.')[0].strip()}); "
                "raise --vocab-size or lower --character-coverage"
            ) from None
        if "Vocabulary size" in message or "vocab_size" in message:
            raise NmtError(
                f"sentencepiece cannot build {vocab_size} pieces from this data ({message}); "
                "lower --vocab-size"
            ) from None
        raise NmtError(f"sentencepiece training failed: {message}") from None
    path = Path(f"{model_prefix}.model")
    path.write_bytes(model.getvalue())
    return path
