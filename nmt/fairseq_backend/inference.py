"""Generation with fairseq models, in process.

``FairseqGenerator`` holds one model built from a checkpoint plus the shared
dictionary (with the language tokens appended in the bundle's language order)
and translates batches of dictionary ids for any direction: the source gets
its language token (``--encoder-langtok src``: ``__src__ tokens </s>``) and the
decoder is forced to start with the target-language token, on every call, so
the output language is never left to chance.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

from nmt import langs
from nmt.errors import NmtError
from nmt.fairseq_backend import load_state

log = logging.getLogger("nmt.fairseq")


@dataclass
class Hypothesis:
    tokens: list  # dictionary ids, without language token and </s>
    score: float  # length-normalised log-probability (fairseq's score)


def build_dictionary(dict_path, languages: Sequence[str], lang_tok_style: str, add_mask: bool | None = None):
    """fairseq's dictionary for a multilingual model: dict.txt + one token per language (+ <mask> for mBART)."""
    from fairseq.data import Dictionary

    dictionary = Dictionary.load(str(dict_path))
    for lang in languages:
        dictionary.add_symbol(langs.lang_token(lang, lang_tok_style))
    if add_mask if add_mask is not None else lang_tok_style == "mbart":
        dictionary.add_symbol("<mask>")
    return dictionary


class _StubTask:
    """What fairseq's model builders read from a task: the dictionaries."""

    def __init__(self, dictionary):
        self.source_dictionary = dictionary
        self.target_dictionary = dictionary


def model_config_from_state(state: dict):
    from omegaconf import OmegaConf

    cfg = state.get("cfg")
    if cfg is None:
        raise NmtError("checkpoint has no 'cfg' entry (saved by a fairseq older than 0.10?); re-save it with nmt")
    if not OmegaConf.is_config(cfg):
        cfg = OmegaConf.create(cfg, flags={"allow_objects": True})
    return cfg.model


def build_model_from_state(state: dict, dictionary, source: str = "checkpoint"):
    """Build the model a checkpoint describes and load its weights (strict)."""
    from fairseq import models

    model_cfg = model_config_from_state(state)
    weights = state["model"]
    embed = weights.get("encoder.embed_tokens.weight")
    if embed is not None and embed.shape[0] != len(dictionary):
        raise NmtError(
            f"dictionary does not match {source}: the model has {embed.shape[0]} embedding rows but the "
            f"dictionary + language tokens give {len(dictionary)} symbols (wrong dict.txt, language list "
            "or language-token style)"
        )
    model = models.build_model(model_cfg, _StubTask(dictionary), from_checkpoint=True)
    try:
        model.load_state_dict(weights, strict=True, model_cfg=model_cfg)
    except RuntimeError as exc:
        from nmt.fairseq_backend.surgery import explain_missing_keys

        expected = set(model.state_dict())
        given = set(weights)
        if expected != given:
            reason = explain_missing_keys(sorted(expected - given), sorted(given - expected))
        else:
            reason = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line),
                          str(exc).splitlines()[0])[:300]
        raise NmtError(f"checkpoint weights do not fit the model it describes ({source}): {reason}") from None
    return model


class FairseqGenerator:
    def __init__(self, model, dictionary, languages, lang_tok_style: str = "multilingual",
                 encoder_langtok: str | None = "src", decoder_langtok: bool = True, device: str = "cpu",
                 precision: str = "fp32"):
        import torch

        self.torch = torch
        self.dictionary = dictionary
        self.languages = list(languages)
        self.lang_tok_style = lang_tok_style
        self.encoder_langtok = encoder_langtok
        self.decoder_langtok = decoder_langtok
        self.device = torch.device(device)
        model.eval()
        if precision == "fp16":
            model.half()
        elif precision == "bf16":
            model.to(torch.bfloat16)
        self.model = model.to(self.device)
        self.lang_ids = {lang: dictionary.index(langs.lang_token(lang, lang_tok_style)) for lang in self.languages}
        for lang, idx in self.lang_ids.items():
            if idx == dictionary.unk():
                raise NmtError(f"language token for {lang} is missing from the dictionary")
        self.max_source_positions = min(model.max_positions()[0], 100000) if isinstance(
            model.max_positions(), tuple) else model.max_positions()
        self._generators: dict = {}

    @classmethod
    def from_checkpoint(cls, checkpoint, dict_path, languages, lang_tok_style="multilingual",
                        encoder_langtok="src", decoder_langtok=True, device="cpu", precision="fp32",
                        add_mask: bool | None = None):
        state = load_state(checkpoint)
        dictionary = build_dictionary(dict_path, languages, lang_tok_style, add_mask)
        model = build_model_from_state(state, dictionary, source=str(checkpoint))
        return cls(model, dictionary, languages, lang_tok_style, encoder_langtok, decoder_langtok, device, precision)

    # -- token helpers --------------------------------------------------------
    def source_tokens(self, ids: Sequence[int], src_lang: str, tgt_lang: str) -> list:
        tokens = list(ids) + [self.dictionary.eos()]
        if self.encoder_langtok:
            lang = src_lang if self.encoder_langtok == "src" else tgt_lang
            tokens = [self.lang_ids[lang]] + tokens
        return tokens

    def max_source_tokens(self) -> int:
        """How many dictionary ids a source line may have (language token and </s> excluded)."""
        return self.max_source_positions - 1 - (1 if self.encoder_langtok else 0)

    def _generator(self, beam: int, max_len_a: float, max_len_b: int, len_penalty: float, sampling: bool,
                   sampling_topk: int, temperature: float, min_len: int = 1, sampling_topp: float = 1.0,
                   epsilon: float = 0.0):
        key = (beam, max_len_a, max_len_b, len_penalty, sampling, sampling_topk, temperature, min_len, sampling_topp,
               epsilon)
        if key not in self._generators:
            from fairseq.sequence_generator import SequenceGenerator

            from nmt.fairseq_backend.sampling import sampling_search

            strategy = sampling_search(self.dictionary, sampling_topk, sampling_topp, epsilon) if sampling else None
            # unk_penalty inf: <unk> is never generated (CTranslate2's disable_unk; README "Unknown words")
            self._generators[key] = SequenceGenerator(
                [self.model], self.dictionary, beam_size=beam, max_len_a=max_len_a, max_len_b=max_len_b,
                min_len=min_len, len_penalty=len_penalty, unk_penalty=math.inf, temperature=temperature,
                search_strategy=strategy,
                symbols_to_strip_from_output=set(self.lang_ids.values()),
                # after the forced one, a language token is never generated (it would be stripped: a weak
                # model's run of them was an empty translation); CTranslate2 suppresses them too
                tokens_to_suppress=[self.dictionary[i] for i in self.lang_ids.values()],
            )
        return self._generators[key]

    def generate(self, batch_ids: Sequence[Sequence[int]], src_lang: str, tgt_lang: str, beam: int = 5,
                 nbest: int = 1, max_len_a: float = 1.5, max_len_b: int = 10, len_penalty: float = 1.0,
                 sampling: bool = False, sampling_topk: int = -1, temperature: float = 1.0,
                 seed: int | None = None, sampling_topp: float = 1.0, epsilon: float = 0.0) -> list[list[Hypothesis]]:
        """Translate one batch (a list of dictionary-id lists); returns n-best lists in input order."""
        torch = self.torch
        if not batch_ids:
            return []
        for lang in (src_lang, tgt_lang):
            if lang not in self.lang_ids:
                raise NmtError(f"the model does not know {lang}; its languages are {', '.join(self.languages)}")
        if nbest > beam:
            raise NmtError(f"--nbest ({nbest}) cannot exceed --beam ({beam})")
        sample = {"net_input": self._net_source(batch_ids, src_lang, tgt_lang)}
        prefix = None
        if self.decoder_langtok:
            prefix = torch.full((len(batch_ids), 1), self.lang_ids[tgt_lang], dtype=torch.long, device=self.device)
        # a non-empty source never gets an empty translation: </s> is barred from the first free step
        # (fairseq's min_len counts the forced language token)
        generator = self._generator(beam, max_len_a, max_len_b, len_penalty, sampling, sampling_topk, temperature,
                                    min_len=1 + (prefix is not None), sampling_topp=sampling_topp, epsilon=epsilon)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            outputs = generator.generate([self.model], sample, prefix_tokens=prefix)
        eos = self.dictionary.eos()
        results = []
        for hyps in outputs:
            best = []
            for hyp in hyps[:nbest]:
                tokens = [t for t in hyp["tokens"].tolist() if t != eos]
                best.append(Hypothesis(tokens=tokens, score=float(hyp["score"])))
            results.append(best)
        return results

    def _net_source(self, batch_ids, src_lang: str, tgt_lang: str) -> dict:
        """``src_tokens`` (left-padded, as fairseq's translation tasks pad) and ``src_lengths``."""
        torch = self.torch
        sources = [self.source_tokens(ids, src_lang, tgt_lang) for ids in batch_ids]
        lengths = torch.tensor([len(s) for s in sources], dtype=torch.long)
        width = int(lengths.max())
        src = torch.full((len(sources), width), self.dictionary.pad(), dtype=torch.long)
        for i, tokens in enumerate(sources):
            src[i, width - len(tokens):] = torch.tensor(tokens, dtype=torch.long)
        return {"src_tokens": src.to(self.device), "src_lengths": lengths.to(self.device)}

    def score(self, batch_ids: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], src_lang: str,
              tgt_lang: str) -> list[float]:
        """Forced decoding: the mean log-probability per token of each target (dictionary ids, then
        </s>) given its source; the target-language token is forced and not counted."""
        torch = self.torch
        if not batch_ids:
            return []
        eos, pad = self.dictionary.eos(), self.dictionary.pad()
        prefix = [self.lang_ids[tgt_lang]] if self.decoder_langtok else []
        gold = [prefix + list(t) + [eos] for t in targets]
        width = max(len(g) for g in gold)
        prev = torch.full((len(gold), width), pad, dtype=torch.long)
        wanted = torch.full((len(gold), width), pad, dtype=torch.long)
        for i, tokens in enumerate(gold):  # the decoder reads </s> first, then the target shifted by one
            prev[i, :len(tokens)] = torch.tensor([eos] + tokens[:-1], dtype=torch.long)
            wanted[i, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        net = self._net_source(batch_ids, src_lang, tgt_lang)
        with torch.inference_mode():
            logits, _ = self.model(net["src_tokens"], net["src_lengths"], prev.to(self.device))
            lprobs = torch.log_softmax(logits.float(), dim=-1)
            picked = lprobs.gather(-1, wanted.to(self.device).unsqueeze(-1)).squeeze(-1).cpu()
        return [float(picked[i, len(prefix):len(g)].mean()) for i, g in enumerate(gold)]

    def ids_to_pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.dictionary[i] for i in ids]

    def pieces_to_ids(self, pieces: Sequence[str]) -> list[int]:
        return [self.dictionary.index(p) for p in pieces]
