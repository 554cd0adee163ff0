"""``nmt evaluate``: get hypotheses, score every direction, compare systems, write the report.

One flow for one system and for several (``--compare``): the first system is
the baseline. Per direction it reads the test set, translates with a bundle
(hypotheses saved under ``OUT/hyps/``) or reads hypothesis files, computes
BLEU (tokenizer per target language), chrF and chrF++ with sacrebleu, then
COMET for all directions in one batched, cached call, then the paired tests,
the group averages, and writes ``report.md``, ``report.csv``, ``report.json``,
per-segment scores and heatmaps (see ``nmt.evaluate.report``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from nmt import langs
from nmt.bundle import Bundle
from nmt.errors import NmtError
from nmt.evaluate import metrics, significance as sig, target_checks
from nmt.evaluate.groups import Buckets, english_side, load_train_counts
from nmt.evaluate.systems import BundleTranslator, System, read_hypotheses, unique_names
from nmt.evaluate.testsets import TestSet, TestSetSource, all_pairs
from nmt.fileio import write_lines
from nmt.romanize import romanize_lines

log = logging.getLogger("nmt.evaluate")

SACREBLEU_METRICS = ("BLEU", "chrF", "chrF++")
DIRECTION_KEYWORDS = ("trained", "all", "to-en", "from-en", "non-en")


@dataclass
class EvalConfig:
    systems: list  # System objects, baseline first
    out_dir: Path
    testset: TestSetSource
    directions: str | None = None  # keyword or comma list; None = trained (bundle) / all (hypotheses)
    tokenize: str | None = None  # BLEU tokenizer override(s), see metrics.parse_tokenize
    comet: bool = True
    comet_model: str = "Unbabel/wmt22-comet-da"
    comet_encoder: str | None = None
    comet_batch_size: int = 16
    comet_gpus: int = 0
    comet_cache: str | None = None
    comet_download: bool = False
    require_comet: bool = False
    paired_tests: tuple = ("bs",)  # bs, ar
    bootstrap_samples: int = 1000
    ar_trials: int = 10000
    alpha: float = 0.05
    train_counts: str | None = None  # bundle dir / training.json / manifest.json
    buckets: str | None = None
    heatmap_metric: str | None = "chrF"
    decimals: int = 1
    segments: bool = True
    # translation (bundle systems)
    decode: object = None  # DecodeOptions
    backend: str = "auto"
    device: str = "cpu"
    threads: int = 0
    batch_tokens: int = 4000
    command: dict = field(default_factory=dict)  # argv and options, for the JSON report


@dataclass
class SystemResult:
    hyp_file: str
    hyp_alignment: str  # "selected" | "full" | "translated"
    hyps: list
    scores: dict = field(default_factory=dict)  # metric -> MetricScore (COMET: score may be None)
    comet_segments: list | None = None
    sentence_chrf: list = field(default_factory=list)


@dataclass
class DirectionResult:
    testset: TestSet
    group: str
    bleu_tokenizer: str
    tokenizer_note: str = ""
    train_pairs: int | None = None
    bucket: str | None = None
    systems: dict = field(default_factory=dict)  # system name -> SystemResult
    significance: dict = field(default_factory=dict)  # test -> {metric -> [PairedResult per system]}

    @property
    def direction(self) -> str:
        return self.testset.direction


@dataclass
class Evaluation:
    config: EvalConfig
    systems: list
    system_info: dict  # name -> description (decoding options, backend, ...)
    directions: list  # DirectionResult
    metrics: list  # metric names in column order
    comet: dict  # status, reason, signature, details
    buckets: Buckets | None
    notes: list
    significance: dict  # test -> {"name", "n_samples", "signatures"}
    outputs: dict = field(default_factory=dict)


# -- direction selection ---------------------------------------------------------
def _parse_list(spec: str) -> list[tuple[str, str]]:
    out = []
    for item in filter(None, (p.strip() for p in spec.split(","))):
        pair = langs.parse_direction(item)
        if pair not in out:
            out.append(pair)
    if not out:
        raise NmtError("--directions is empty")
    return out


def choose_directions(cfg: EvalConfig, translators: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """The directions to evaluate, and notes about keyword directions the test set lacks."""
    spec = (cfg.directions or "").strip()
    bundles = [s for s in cfg.systems if s.translates]
    hyp_systems = [s for s in cfg.systems if not s.translates]
    if spec and spec not in DIRECTION_KEYWORDS:
        chosen = _parse_list(spec)
        single = [s for s in hyp_systems if s.path.is_file()]
        if single and len(chosen) != 1:
            raise NmtError(f"hypothesis file {single[0].path} holds one direction, but --directions lists "
                           f"{len(chosen)}; use a directory of SRC-TGT.hyp files for several")
        for system in bundles:
            known = translators[system.name].bundle_languages()
            for src, tgt in chosen:
                for code in (src, tgt):
                    if code not in known:
                        raise NmtError(f"system {system.name}: language {code} is not one of the model's "
                                       f"languages ({', '.join(known)})")
        for src, tgt in chosen:
            if not cfg.testset.files(src, tgt):
                raise NmtError(f"test set {cfg.testset.name} has no {src}-{tgt} ({cfg.testset.expected(src, tgt)})")
        return chosen, []
    if any(s.path.is_file() for s in hyp_systems):
        raise NmtError("a single hypothesis file needs --direction SRC-TGT")
    if cfg.testset.kind == "files" and not cfg.testset.is_pattern:
        raise NmtError("plain --src/--ref files hold one direction: give it with --direction SRC-TGT")
    keyword = spec or ("trained" if bundles else "all")
    candidates: list[tuple[str, str]] | None = None
    for system in bundles:
        bundle = Bundle.load(system.path, need_checkpoint=False)
        pairs = bundle.direction_pairs() if keyword == "trained" else all_pairs(bundle.languages)
        candidates = pairs if candidates is None else [p for p in candidates if p in pairs]
    for system in hyp_systems:
        pairs = system.hyp_directions()
        if not pairs:
            raise NmtError(f"system {system.name}: {system.path} holds no hypothesis files named SRC-TGT.hyp "
                           "(e.g. de_DE-en_XX.hyp)")
        candidates = pairs if candidates is None else [p for p in candidates if p in pairs]
    candidates = candidates or []
    if keyword == "to-en":
        candidates = [p for p in candidates if p[1] == langs.ENGLISH]
    elif keyword == "from-en":
        candidates = [p for p in candidates if p[0] == langs.ENGLISH]
    elif keyword == "non-en":
        candidates = [p for p in candidates if langs.ENGLISH not in p]
    available = cfg.testset.available(candidates)
    notes = []
    missing = [f"{s}-{t}" for s, t in candidates if (s, t) not in available]
    if missing:
        notes.append(f"--directions {keyword}: test set {cfg.testset.name} lacks {', '.join(missing)} (skipped)")
    if not available:
        raise NmtError(f"no direction to evaluate: --directions {keyword} gives "
                       f"{', '.join(f'{s}-{t}' for s, t in candidates) or 'nothing'}, and test set "
                       f"{cfg.testset.name} has {'none of them' if candidates else 'nothing to match'}")
    return available, notes


# -- the run ----------------------------------------------------------------------
def evaluate(cfg: EvalConfig) -> Evaluation:
    systems = unique_names(list(cfg.systems))
    if not systems:
        raise NmtError("nothing to evaluate: give --model, --hyp or --compare SYSTEM SYSTEM ...")
    tok_overrides = metrics.parse_tokenize(cfg.tokenize)
    buckets = Buckets.parse(cfg.buckets)
    for test in cfg.paired_tests:
        if test not in ("bs", "ar"):
            raise NmtError(f"unknown paired test {test!r}; choose bs, ar or both")
    if cfg.heatmap_metric and cfg.heatmap_metric not in (*SACREBLEU_METRICS, "COMET"):
        raise NmtError(f"--heatmap must be one of BLEU, chrF, chrF++, COMET or none, not {cfg.heatmap_metric!r}")
    if cfg.heatmap_metric == "COMET" and not cfg.comet:
        raise NmtError("--heatmap COMET needs COMET (drop --no-comet)")
    translators = {s.name: BundleTranslator(s, cfg.decode, cfg.backend, cfg.device, cfg.threads, cfg.batch_tokens)
                   for s in systems if s.translates}
    directions, notes = choose_directions(cfg, translators)
    for system in (s for s in systems if s.translates):
        romanized = Bundle.load(system.path, need_checkpoint=False).romanized
        sources = sorted({src for src, _ in directions if romanized.source(src)})
        if sources:
            notes.append(f"{system.name}: {', '.join(sources)} input is romanized with {romanized.romanizer} before "
                         "translation (the model was trained on romanized text)")
    counts, trained = _training_info(cfg, systems)
    scorer, comet_state = _comet_scorer(cfg)  # before translating: a bad --comet-model fails fast

    out = Path(cfg.out_dir)
    results = []
    for src, tgt in directions:
        testset = _romanize_references(cfg.testset.load(src, tgt), systems, notes)
        tok, why = metrics.tokenizer_plan(tgt, tok_overrides)
        pairs = counts.get(f"{src}-{tgt}") if counts else None
        if counts and pairs is None:
            pairs = 0 if trained is None or f"{src}-{tgt}" not in trained else None
        result = DirectionResult(testset, english_side(src, tgt), tok, why, pairs, buckets.bucket(pairs))
        for system in systems:
            result.systems[system.name] = _hypotheses(system, testset, translators, out, len(systems) > 1, notes)
            _score_sacrebleu(result.systems[system.name], testset, tgt, tok)
            checks = target_checks.score(result.systems[system.name].hyps, tgt)
            result.systems[system.name].scores.update(checks)
            for line in target_checks.warnings(testset.direction, tgt, checks, system.name if len(systems) > 1 else None):
                if line.startswith("WARNING "):
                    log.warning("%s", line[len("WARNING "):])
                else:
                    log.info("%s", line)
                notes.append(line)
        results.append(result)
        scores = ", ".join(f"{m} {result.systems[systems[0].name].scores[m].score:.2f}" for m in SACREBLEU_METRICS)
        log.info("%s (%d lines): %s", testset.direction, len(testset.indices), scores)

    if scorer is not None:
        _score_comet(scorer, results, comet_state)
        scorer.close()
    if cfg.require_comet and comet_state["status"] != "ok":
        raise NmtError(f"--require-comet: {comet_state['reason']}")

    significance = {}
    if len(systems) > 1:
        significance = _paired_tests(cfg, results, systems, comet_state["status"] == "ok")

    # the target checks go before COMET, which stays the last column
    metric_names = list(SACREBLEU_METRICS) + list(target_checks.NAMES) + (["COMET"] if cfg.comet else [])
    system_info = {s.name: {**s.describe(), **(translators[s.name].describe() if s.name in translators else {})}
                   for s in systems}
    return Evaluation(cfg, systems, system_info, results, metric_names, comet_state, buckets if counts else None,
                      notes, significance)


def _romanize_references(testset: TestSet, systems, notes: list) -> TestSet:
    """Romanized references for a model that writes the target romanized (trained with --romanize-target,
    for analysis): its output is compared with references in the same letters, and the report says so."""
    tgt = testset.tgt_lang
    writes = {s.name: Bundle.load(s.path, need_checkpoint=False).romanized.output(tgt)
              for s in systems if s.translates}
    if not any(writes.values()):
        return testset
    if not all(writes.values()):
        raise NmtError(f"{testset.direction}: {', '.join(n for n, w in writes.items() if w)} write(s) romanized "
                       f"{tgt} and {', '.join(n for n, w in writes.items() if not w)} do(es) not; compare them "
                       "in separate runs")
    testset.ref = romanize_lines(testset.ref, tgt)
    notes.append(f"{testset.direction}: the model writes romanized {tgt} (trained with --romanize-target, for "
                 "analysis); its references were romanized with uroman before scoring")
    return testset


def _training_info(cfg: EvalConfig, systems) -> tuple[dict, set | None]:
    """Training pairs per direction (for buckets) and the trained direction set, when known."""
    if cfg.train_counts:
        return load_train_counts(cfg.train_counts), None
    for system in systems:
        if system.translates and (system.path / "training.json").is_file():
            trained = set(Bundle.load(system.path, need_checkpoint=False).directions)
            return load_train_counts(system.path / "training.json"), trained
    return {}, None


def _hypotheses(system: System, testset: TestSet, translators, out: Path, several: bool, notes) -> SystemResult:
    if system.translates:
        log.info("translating %s with %s (%d lines)", testset.direction, system.name, len(testset.src))
        hyps, warnings = translators[system.name].translate(testset)
        notes.extend(warnings)
        folder = out / "hyps" / system.name if several else out / "hyps"
        path = folder / f"{testset.direction}.hyp"
        write_lines(path, hyps)
        return SystemResult(str(path.resolve()), "translated", hyps)
    path = system.hyp_file(testset.src_lang, testset.tgt_lang)
    if path is None:
        raise NmtError(f"system {system.name}: no hypothesis file for {testset.direction} in {system.path} "
                       f"(expected {testset.direction}.hyp)")
    hyps, how = read_hypotheses(path, testset)
    return SystemResult(str(path.resolve()), how, hyps)


def _score_sacrebleu(result: SystemResult, testset: TestSet, tgt: str, tok: str) -> None:
    hyps, refs = result.hyps, testset.ref
    result.scores["BLEU"] = metrics.bleu(hyps, refs, tgt, tokenize=tok)
    result.scores["chrF"] = metrics.chrf(hyps, refs)
    result.scores["chrF++"] = metrics.chrf_pp(hyps, refs)
    result.sentence_chrf = metrics.sentence_chrf(hyps, refs)


def _comet_scorer(cfg: EvalConfig):
    if not cfg.comet:
        return None, {"status": "off", "reason": "not computed (--no-comet)"}
    from nmt.comet import CometScorer, CometUnavailable

    try:
        scorer = CometScorer(cfg.comet_model, cfg.comet_batch_size, cfg.comet_gpus, cfg.comet_cache,
                             cfg.comet_encoder, cfg.comet_download)
    except CometUnavailable as exc:
        if cfg.require_comet:
            raise NmtError(f"--require-comet: {exc}") from None
        log.warning("COMET: n/a (%s)", exc)
        return None, {"status": "n/a", "reason": str(exc), "model": cfg.comet_model}
    return scorer, {"status": "ok", "reason": "", **scorer.describe()}


def _score_comet(scorer, results: list[DirectionResult], state: dict) -> None:
    """One batched, cached COMET call over every direction and system."""
    from nmt.comet import CometUnavailable

    src, mt, ref, slots = [], [], [], []
    for result in results:
        for name, sys_result in result.systems.items():
            slots.append((sys_result, len(src), len(result.testset.src)))
            src += result.testset.src
            mt += sys_result.hyps
            ref += result.testset.ref
    log.info("COMET: %d segments with %s", len(src), scorer.model.name)
    try:
        scores = scorer.score(src, mt, ref)
    except CometUnavailable as exc:
        state.update(status="n/a", reason=str(exc))
        log.warning("COMET: n/a (%s)", exc)
        for sys_result, _, _ in slots:
            sys_result.scores["COMET"] = metrics.MetricScore("COMET", None, "")  # type: ignore[arg-type]
        return
    state.update(segments=len(src), computed=scorer.computed, from_cache=scorer.cached, model_calls=scorer.calls)
    for sys_result, start, n in slots:
        segs = scores[start:start + n]
        sys_result.comet_segments = segs
        system_score = sum(segs) / len(segs) if segs else None
        sys_result.scores["COMET"] = metrics.MetricScore("COMET", system_score, state["signature"])


def _paired_tests(cfg: EvalConfig, results, systems, with_comet: bool) -> dict:
    names = [s.name for s in systems]
    summary = {}
    for test in cfg.paired_tests:
        n = cfg.bootstrap_samples if test == "bs" else cfg.ar_trials
        summary[test] = {"name": sig.TESTS[test], "n_samples": n, "signatures": {}}
        for result in results:
            refs, tgt = result.testset.ref, result.testset.tgt_lang
            hyps = [result.systems[name].hyps for name in names]
            log.info("%s: %s on %s", result.direction, sig.TESTS[test], ", ".join(names))
            outcome = sig.sacrebleu_paired(hyps, names, refs, {
                "BLEU": metrics.bleu_metric(tgt, result.bleu_tokenizer),
                "chrF": metrics.chrf_metric(0), "chrF++": metrics.chrf_metric(2)}, test, n)
            result.significance[test] = dict(outcome.results)
            for metric, signature in outcome.signatures.items():
                summary[test]["signatures"].setdefault(metric, {}).setdefault(signature, []).append(result.direction)
            if with_comet:
                segs = [result.systems[name].comet_segments for name in names]
                result.significance[test]["COMET"] = sig.segment_paired(segs, test, n)
                summary[test]["signatures"]["COMET"] = {sig.segment_signature(test, n): [r.direction for r in results]}
    return summary
