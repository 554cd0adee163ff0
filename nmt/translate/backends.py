"""Decoding backends. Each takes batches of dictionary ids and returns n-best lists of
``(dictionary ids, score)``; the target-language token is forced on every backend.
``Backend`` is the interface ``Translator`` relies on; a new backend implements it."""
from __future__ import annotations

import logging
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

from nmt import langs
from nmt.errors import NmtError
from nmt.fairseq_backend.inference import FairseqGenerator
from nmt.translate.sentences import SPLIT_MODES
from nmt.translate.shortlist import SHORTLIST_DIR

log = logging.getLogger("nmt.translate")

# A sentence's source length is rounded up to a multiple of this many tokens before its output
# cap is computed, so that sentences of similar length share a cap and can share a batch.
CAP_STEP = 8
# beams wider than this only allocate memory (a beam of 1e11 made CTranslate2's allocator fail)
MAX_BEAM = 256


@dataclass
class DecodeOptions:
    beam: int = 5
    nbest: int = 1
    # output length cap of each sentence: a * (its source tokens, counting its language token and
    # </s>, rounded up to a multiple of CAP_STEP) + b tokens, the target-language token included
    max_len_a: float = 1.5
    max_len_b: int = 10
    len_penalty: float = 1.0
    # sampling: nbest independent samples per line (the beam is not used)
    sampling: bool = False
    sampling_topk: int = -1  # sample from the k most likely tokens (-1 or 0: all)
    sampling_topp: float = 1.0  # nucleus: the smallest set of tokens with this much probability (1: all)
    epsilon: float = 0.0  # epsilon sampling (Hewitt et al. 2022; for MBR, Freitag et al. 2023): drop tokens under
    #                       this probability (0: off; fairseq backend only, CTranslate2 has no such cut)
    temperature: float = 1.0
    seed: int | None = None
    # lines with several sentences: auto (split a line when it holds more than one sentence),
    # always (every sentence the splitter finds, however short), never (the whole line at once);
    # see nmt.translate.sentences
    split_sentences: str = "auto"

    def check(self) -> None:
        if self.split_sentences not in SPLIT_MODES:
            raise NmtError(f"--split-sentences must be one of {', '.join(SPLIT_MODES)}, got {self.split_sentences!r}")
        for name, value in (("--lenpen", self.len_penalty), ("--max-len-a", self.max_len_a),
                            ("--temperature", self.temperature), ("--sampling-topp", self.sampling_topp),
                            ("--epsilon", self.epsilon)):
            if not math.isfinite(value):
                raise NmtError(f"{name} must be a finite number, got {value}")
        if not (1 <= self.beam <= MAX_BEAM and 1 <= self.nbest <= MAX_BEAM):
            raise NmtError(f"--beam and --nbest must be between 1 and {MAX_BEAM}, got {self.beam} and {self.nbest}")
        if self.seed is not None and not 0 <= self.seed < 2 ** 32:
            raise NmtError(f"--seed must be between 0 and {2 ** 32 - 1}, got {self.seed}")
        if self.nbest > self.beam and not self.sampling:
            raise NmtError(f"--nbest ({self.nbest}) cannot exceed --beam ({self.beam}) (with --sampling it can: "
                           "that many samples)")
        if not 0 < self.sampling_topp <= 1 or not 0 <= self.epsilon < 1:
            raise NmtError(f"--sampling-topp must be in (0, 1] (got {self.sampling_topp}) and --epsilon in [0, 1) "
                           f"(got {self.epsilon})")
        if not self.sampling and (self.sampling_topk > 0 or self.sampling_topp < 1 or self.epsilon > 0):
            raise NmtError("--sampling-topk, --sampling-topp and --epsilon shape sampling: add --sampling")
        if self.max_len_a < 0 or self.max_len_b < 1:
            raise NmtError("--max-len-a must be >= 0 and --max-len-b >= 1")
        if self.temperature <= 0:
            raise NmtError(f"--temperature must be > 0, got {self.temperature}")

    def max_len(self, source_tokens: int, max_positions: int) -> int:
        """The output cap of one sentence whose source has ``source_tokens`` tokens (language token and
        </s> counted): fairseq's rule, a * tokens + b, with the tokens rounded up to a multiple of
        ``CAP_STEP``, at most ``max_positions - 1``. It depends on the sentence alone, never on the other
        sentences of its batch (batches never mix caps), so batching cannot change a translation."""
        width = -(-source_tokens // CAP_STEP) * CAP_STEP
        return int(min(self.max_len_a * width + self.max_len_b, max_positions - 1))


BACKENDS = ("auto", "fairseq", "ctranslate2")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class EngineOptions:
    """How a ``Translator`` runs and batches (everything but the search, which is ``DecodeOptions``)."""

    backend: str = "auto"  # auto | fairseq | ctranslate2
    quantization: str | None = None  # which CTranslate2 export (None: the preferred one)
    device: str = "cpu"  # auto | cpu | cuda
    threads: int = 0  # CPU threads (0: all cores)
    shortlist: bool = True  # CTranslate2: the export's vocabulary shortlists, when it has them
    checkpoint: str | None = None  # fairseq: this checkpoint instead of the bundle's
    batch_tokens: int = 4000  # source tokens per batch
    batch_sentences: int | None = None  # sentences per batch (None: the backend's choice)

    def translator_kwargs(self) -> dict:
        """The keyword arguments of ``Translator(model, ...)``."""
        return dict(backend=self.backend, device=self.device, threads=self.threads, checkpoint=self.checkpoint,
                    quantization=self.quantization, shortlist=self.shortlist)

    def batching_kwargs(self) -> dict:
        """The batching keyword arguments of ``Translator.translate``."""
        return dict(batch_tokens=self.batch_tokens, max_batch_sentences=self.batch_sentences)


# one decoded batch: per sentence, the n-best (dictionary ids, score), best first
Output = list[list[tuple[list[int], float]]]


class Backend(Protocol):
    """What ``Translator`` needs of a decoding backend."""

    name: str  # reported as the translator's backend_name
    parallel: int  # batches ``generate_many`` decodes at a time

    def max_source_tokens(self) -> int:
        """The longest source (dictionary ids, without language token and </s>) the model takes."""

    def output_cap(self, n_ids: int, opts: DecodeOptions) -> int:
        """The output cap of a sentence of ``n_ids`` dictionary ids (``DecodeOptions.max_len``)."""

    def batch_sentences(self, opts: DecodeOptions) -> int:
        """Sentences per batch when the caller does not say."""

    def generate(self, batch: Sequence[list[int]], src: str, tgt: str, opts: DecodeOptions) -> Output:
        """Decode one batch."""

    def generate_many(self, batches: Iterable[Sequence[list[int]]], src: str, tgt: str,
                      opts: DecodeOptions) -> Iterator[Output]:
        """Decode batches; the outputs in the batches' order."""

    def supports(self, opts: DecodeOptions) -> str | None:
        """Why this backend cannot decode with ``opts`` (``Translator`` then uses the fairseq checkpoint), or None."""

    def score(self, sources, targets, src: str, tgt: str) -> list[float]:
        """Forced decoding: the model's score of each target given its source."""


class FairseqBackend:
    name = "fairseq"
    # sentences per batch when the caller does not say (fairseq-interactive batches by tokens alone)
    max_batch_sentences = 128
    parallel = 1  # batches decoded at a time (torch parallelises inside a batch)

    def __init__(self, bundle, checkpoint: Path, device: str, precision: str = "fp32"):
        self.generator = FairseqGenerator.from_checkpoint(
            checkpoint, bundle.dict_path, bundle.languages, bundle.lang_tok_style, bundle.encoder_langtok,
            bundle.decoder_langtok, device=device, precision=precision, add_mask=bundle.add_mask)

    @classmethod
    def from_generator(cls, generator) -> "FairseqBackend":
        self = cls.__new__(cls)
        self.generator = generator
        return self

    def max_source_tokens(self) -> int:
        return self.generator.max_source_tokens()

    def output_cap(self, n_ids: int, opts: DecodeOptions) -> int:
        """The output cap of a sentence of ``n_ids`` dictionary ids (see ``DecodeOptions.max_len``)."""
        langtok = 1 if self.generator.encoder_langtok else 0
        return opts.max_len(n_ids + langtok + 1, self.generator.max_source_positions)

    def batch_sentences(self, opts: DecodeOptions) -> int:
        return self.max_batch_sentences

    def supports(self, opts: DecodeOptions) -> str | None:
        """Why this backend cannot decode with ``opts`` (None: it can)."""
        return None

    def generate(self, batch, src: str, tgt: str, opts: DecodeOptions):
        cap = max(self.output_cap(len(ids), opts) for ids in batch)
        # sampling draws nbest independent samples, one per beam slot (as fairseq-generate --sampling does)
        beam = opts.nbest if opts.sampling else opts.beam
        results = self.generator.generate(
            batch, src, tgt, beam=beam, nbest=opts.nbest, max_len_a=0, max_len_b=cap,
            len_penalty=opts.len_penalty, sampling=opts.sampling, sampling_topk=opts.sampling_topk,
            sampling_topp=opts.sampling_topp, epsilon=opts.epsilon, temperature=opts.temperature, seed=opts.seed)
        return [[(h.tokens, h.score) for h in hyps] for hyps in results]

    def score(self, sources, targets, src: str, tgt: str) -> list[float]:
        """Mean log-probability per target token (its </s> included, the forced language token not) of
        each ``targets[i]`` given ``sources[i]`` (dictionary ids)."""
        return self.generator.score(sources, targets, src, tgt)

    def generate_many(self, batches, src: str, tgt: str, opts: DecodeOptions):
        """``generate`` for each batch, in order."""
        for batch in batches:
            yield self.generate(batch, src, tgt, opts)


def ctranslate2_threads(threads: int) -> tuple[int, int]:
    """How CTranslate2 splits ``threads`` CPU threads: (batches decoded in parallel, threads per batch).

    Measured on 2 cores (benchmarks/RESULTS.md, translation speed): two 16-sentence batches
    on one thread each decode faster than one batch on two intra-op threads. Up to 4
    parallel batches, the rest as intra-op threads."""
    parallel = max(1, min(threads, 4))
    return parallel, max(1, threads // parallel)


class CTranslate2Backend:
    """A model converted by ``nmt export --format ctranslate2``, run by CTranslate2."""

    name = "ctranslate2"
    # On CPU, CTranslate2 decoded fastest when a batch's decoder rows (sentences x beam)
    # times the squared model width stayed near this: 8 sentences at beam 5 and 4 at beam 10
    # for the small preset (width 256), 2 and 1 at transformer-base width (512); measured
    # by benchmarks/bench_ct2_batch.py (benchmarks/RESULTS.md).
    cpu_batch_budget = 40 * 256 * 256
    max_cpu_batch_sentences = 64
    gpu_batch_sentences = 64  # not measured on a GPU yet

    def __init__(self, bundle, model_dir: Path, codec, device: str, threads: int, compute_type: str = "default",
                 shortlist: bool = True):
        self.bundle = bundle
        self.codec = codec
        self.device = device
        self.model_dir = Path(model_dir)
        self.compute_type = compute_type
        self.model_dim = bundle.export_model_dim(model_dir)
        self.parallel, self.intra = ctranslate2_threads(threads) if device == "cpu" else (1, 0)
        # vocabulary shortlists (nmt export --shortlist), one per target language
        lists = self.model_dir / SHORTLIST_DIR
        self.shortlists = {p.stem: p for p in sorted(lists.glob("*.txt"))} if shortlist and lists.is_dir() else {}
        self._loaded: dict = {}  # target language with a shortlist (or None) -> ctranslate2.Translator
        if not self.shortlists:
            self._load(None)  # a broken export fails here, not at the first batch
        self.lang_tokens = {code: langs.lang_token(code, bundle.lang_tok_style) for code in bundle.languages}
        self.strip = set(self.lang_tokens.values()) | set(bundle.tags)
        # never generated: CTranslate2's padding and start symbols (fairseq masks them; sampled, they would
        # decode as <unk>), the reserved source-side tags (tagged back-translation) and the language tokens
        # after the forced one (stripped from the output, a weak model's run of them was an empty translation)
        self.suppress = [["<blank>"], ["<s>"]] + [[token] for token in sorted(self.strip)]
        self.max_positions = int(bundle.max_source_positions or 1024)

    def _load(self, tgt: str | None):
        """The CTranslate2 model, restricted to ``tgt``'s shortlist when there is one.

        CTranslate2 reads a vocabulary map from the model directory (``vmap.txt``), so a
        target language's shortlist is loaded through a temporary directory of links to
        the export's files; the last two models stay loaded (a TSV input may alternate)."""
        key = tgt if tgt in self.shortlists else None
        if key in self._loaded:
            self._loaded[key] = self._loaded.pop(key)  # most recently used last
            return self._loaded[key]
        translator = self._open(key, self.parallel, self.intra)
        if len(self._loaded) >= 2:
            self._loaded.pop(next(iter(self._loaded)))
        self._loaded[key] = translator
        if key is not None:
            log.info("CTranslate2: vocabulary shortlist for %s (%s)", key, self.shortlists[key])
        return translator

    def _open(self, key: str | None, inter: int, intra: int):
        import ctranslate2

        with tempfile.TemporaryDirectory(prefix="nmt-ct2-view-") as view:
            path = self.model_dir
            if key is not None:
                path = Path(view)
                files = [f for f in self.model_dir.iterdir() if f.is_file() and f.name != "vmap.txt"]
                for source, name in [(f, f.name) for f in files] + [(self.shortlists[key], "vmap.txt")]:
                    try:
                        (path / name).symlink_to(source.resolve())
                    except OSError:  # no symbolic links on this file system
                        shutil.copyfile(source, path / name)
            try:
                return ctranslate2.Translator(str(path), device=self.device, compute_type=self.compute_type,
                                              inter_threads=inter, intra_threads=intra)
            except (RuntimeError, ValueError) as exc:
                raise NmtError(f"cannot load the CTranslate2 model in {self.model_dir}: {exc}; "
                               "re-run nmt export") from None

    def uses_shortlist(self, tgt: str) -> bool:
        return tgt in self.shortlists

    def supports(self, opts: DecodeOptions) -> str | None:
        """Why this backend cannot decode with ``opts`` (None: it can)."""
        if opts.sampling and opts.epsilon > 0:
            return "CTranslate2 has no epsilon cut-off for sampling (it has top-k, top-p and temperature)"
        return None

    def max_source_tokens(self) -> int:
        return self.max_positions - 1 - (1 if self.bundle.encoder_langtok else 0)

    def output_cap(self, n_ids: int, opts: DecodeOptions) -> int:
        """The output cap of a sentence of ``n_ids`` dictionary ids (see ``DecodeOptions.max_len``)."""
        return opts.max_len(n_ids + (1 if self.bundle.encoder_langtok else 0) + 1, self.max_positions)

    def batch_sentences(self, opts: DecodeOptions) -> int:
        """Sentences per batch when the caller does not say."""
        if self.device != "cpu":
            return self.gpu_batch_sentences
        rows = opts.nbest if opts.sampling else opts.beam
        return max(1, min(self.max_cpu_batch_sentences, self.cpu_batch_budget // (rows * self.model_dim ** 2)))

    def _request(self, batch, src: str, tgt: str, opts: DecodeOptions):
        sources = []
        for ids in batch:
            pieces = self.codec.ids_to_pieces(ids)
            if self.bundle.encoder_langtok:
                pieces = [self.lang_tokens[src if self.bundle.encoder_langtok == "src" else tgt]] + pieces
            sources.append(pieces)
        prefix = [[self.lang_tokens[tgt]] for _ in batch] if self.bundle.decoder_langtok else None
        # the same per-sentence cap as fairseq's (a batch holds sentences of one cap)
        cap = max(self.output_cap(len(ids), opts) for ids in batch)
        kwargs = dict(beam_size=opts.beam, num_hypotheses=opts.nbest, length_penalty=opts.len_penalty,
                      max_decoding_length=cap, return_scores=True, target_prefix=prefix,
                      use_vmap=tgt in self.shortlists, disable_unk=True, max_input_length=self.max_positions,
                      # never an empty translation: </s> is barred from the first free step (the length
                      # counts the forced language token), as the fairseq backend does
                      min_decoding_length=1 + (prefix is not None))
        kwargs["suppress_sequences"] = self.suppress
        if opts.sampling:  # nbest independent samples
            kwargs.update(sampling_topk=opts.sampling_topk if opts.sampling_topk > 0 else 0,
                          sampling_topp=opts.sampling_topp, sampling_temperature=opts.temperature, beam_size=1)
        return sources, kwargs

    def _convert(self, result):
        return [(self.codec.pieces_to_ids([p for p in pieces if p not in self.strip]), float(score))
                for pieces, score in zip(result.hypotheses, result.scores)]

    def score(self, sources, targets, src: str, tgt: str) -> list[float]:
        """Mean log-probability per target token (its </s> included, the forced language token not) of
        each ``targets[i]`` given ``sources[i]`` (dictionary ids), as ``FairseqBackend.score``."""
        if not sources:
            return []
        pieces, _ = self._request(sources, src, tgt, DecodeOptions())
        prefix = [self.lang_tokens[tgt]] if self.bundle.decoder_langtok else []
        wanted = [prefix + self.codec.ids_to_pieces(ids) for ids in targets]
        # the full vocabulary: a shortlist could lack a token of the text being scored
        results = self._load(None).score_batch(pieces, wanted, max_input_length=0)
        return [sum(r.log_probs[len(prefix):]) / max(1, len(r.log_probs) - len(prefix)) for r in results]

    def _seeded(self, tgt: str, seed: int):
        """A model whose one decoding thread starts its random generator at ``seed``.

        ``ctranslate2.set_random_seed`` does not reach the decoding threads of a model loaded
        before it (measured with 4.8.5: two seeded runs of one model sampled differently; see
        also OpenNMT/CTranslate2#1757): their generators are seeded when the thread first
        samples. So a seeded call loads the model anew, with one decoding thread, after setting
        the seed, and decodes its batches in order: the same lines give the same samples."""
        import ctranslate2

        ctranslate2.set_random_seed(seed)
        return self._open(tgt if tgt in self.shortlists else None, 1, self.parallel * max(1, self.intra))

    def generate(self, batch, src: str, tgt: str, opts: DecodeOptions):
        return next(iter(self.generate_many([batch], src, tgt, opts)))

    def generate_many(self, batches, src: str, tgt: str, opts: DecodeOptions):
        """The batches' outputs in order, ``self.parallel`` batches decoding at a time.

        Sampling with a seed decodes one batch at a time in a model of its own (``_seeded``)."""
        if opts.sampling and opts.seed is not None:
            translator = self._seeded(tgt, opts.seed)
            for batch in batches:
                sources, kwargs = self._request(batch, src, tgt, opts)
                yield [self._convert(result) for result in translator.translate_batch(sources, **kwargs)]
            return
        if self.parallel == 1:
            translator = self._load(tgt)
            for batch in batches:
                sources, kwargs = self._request(batch, src, tgt, opts)
                yield [self._convert(result) for result in translator.translate_batch(sources, **kwargs)]
            return
        translator = self._load(tgt)
        window = 2 * self.parallel  # queued ahead, so that no worker waits for the next batch
        pending = []
        for batch in batches:
            sources, kwargs = self._request(batch, src, tgt, opts)
            pending.append(translator.translate_batch(sources, asynchronous=True, **kwargs))
            while len(pending) > window:
                yield [self._convert(r.result()) for r in pending.pop(0)]
        for futures in pending:
            yield [self._convert(r.result()) for r in futures]

