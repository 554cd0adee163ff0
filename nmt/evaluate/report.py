"""Write an evaluation as ``report.md`` (paste-ready), ``report.csv``, ``report.json``,
per-segment JSONL and heatmap PNGs, every file atomically.

Markdown layout:

- one system: a table with a row per direction and a column per metric, then
  the group averages, the signatures, the test set and the notes;
- several systems (``--compare``): one table per metric with a column per
  system; a non-baseline cell reads ``31.2 (+1.3, p=0.004)*`` where ``*`` marks
  p < alpha in the first requested paired test against the baseline (the
  first system), and the baseline cell carries the bootstrap 95% interval.

A missing score is ``n/a``, with the reason in the notes; averages over a
group with an ``n/a`` member are ``n/a``. JSON holds everything: signatures,
versions, test-set files with SHA-256 and line ranges, hypothesis files,
decoding options, COMET model and cache statistics, p-values and intervals.

Numbers are stored at full precision (JSON floats; ``repr`` in the CSV) and
averages and differences are taken over full-precision values; only markdown
cells and heatmap labels round, once (``--decimals`` for BLEU/chrF/chrF++, 4
decimals for COMET). Per-segment JSONL is written with
``nmt.translate.stream.json_line`` (one object a line whatever the text holds).
"""
from __future__ import annotations

import csv
import io
import platform
import time
from pathlib import Path

from nmt import __version__
from nmt.evaluate.groups import ENGLISH_GROUPS, average
from nmt.evaluate.plot import heatmap, worth_plotting
from nmt.evaluate.significance import seed as significance_seed
from nmt.fileio import atomic_open, write_json
from nmt.translate.stream import json_line

NA = "n/a"


# -- numbers ---------------------------------------------------------------------
def fmt(metric: str, value, decimals: int = 1) -> str:
    """A table cell: the full-precision ``value`` rounded once (COMET always to 4 decimals)."""
    if value is None:
        return NA
    return f"{value:.4f}" if metric == "COMET" else f"{value:.{decimals}f}"


def _signed(metric: str, delta: float, decimals: int) -> str:
    """``+1.3`` / ``-0.4``; a difference that rounds to zero reads ``+0.0``, never ``-0.0``."""
    text = fmt(metric, delta, decimals)
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]
    return text if text.startswith("-") else "+" + text


def _score(result, metric):
    score = result.scores.get(metric)
    return None if score is None else score.score


def _p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


# -- groups ----------------------------------------------------------------------
def groups(ev) -> list[tuple[str, list]]:
    """``[(label, [DirectionResult, ...]), ...]``: all, the English-side groups, the resource buckets."""
    out = [("all", list(ev.directions))]
    for name in ENGLISH_GROUPS:
        members = [d for d in ev.directions if d.group == name]
        if members:
            out.append((name, members))
    if ev.buckets is not None:
        for name in ev.buckets.order():
            members = [d for d in ev.directions if d.bucket == name]
            if members:
                out.append((f"resource: {ev.buckets.label(name)}", members))
    return out


def averages(ev) -> list[dict]:
    rows = []
    for label, members in groups(ev):
        row = {"group": label, "directions": [d.direction for d in members], "systems": {}}
        for system in ev.systems:
            row["systems"][system.name] = {m: average(_score(d.systems[system.name], m) for d in members)
                                           for m in ev.metrics}
        rows.append(row)
    return rows


# -- signatures --------------------------------------------------------------------
def signatures(ev) -> dict:
    """``{metric: {signature: [directions]}}``: BLEU can have one per tokenizer."""
    out: dict = {}
    for d in ev.directions:
        first = d.systems[ev.systems[0].name]
        for metric in ev.metrics:
            score = first.scores.get(metric)
            if score is not None and score.signature:
                out.setdefault(metric, {}).setdefault(score.signature, []).append(d.direction)
    return out


# -- markdown ----------------------------------------------------------------------
def _table(header: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |",
            *["| " + " | ".join(r) + " |" for r in rows]]


def _testset_line(ev) -> str:
    first = ev.directions[0].testset
    same = all(d.testset.lines_text == first.lines_text and d.testset.total_lines == first.total_lines
               for d in ev.directions)
    lines = (f"lines {first.lines_text} of {first.total_lines}" if same else
             "lines per direction in report.json")
    where = ev.config.testset.describe().get("dir", "")
    return f"{first.name}, {lines}" + (f" ({where})" if where else "")


def markdown(ev) -> str:
    decimals = ev.config.decimals
    names = [s.name for s in ev.systems]
    title = names[0] if len(names) == 1 else " vs ".join(names)
    out = [f"## {title} on {_testset_line(ev)}", ""]
    with_pairs = any(d.train_pairs is not None for d in ev.directions)
    if len(names) == 1:
        header = ["direction", "lines"] + (["train pairs"] if with_pairs else []) + ev.metrics
        rows = []
        for d in ev.directions:
            r = d.systems[names[0]]
            rows.append([d.direction, str(len(d.testset.indices))]
                        + ([_pairs(d.train_pairs)] if with_pairs else [])
                        + [fmt(m, _score(r, m), decimals) for m in ev.metrics])
        out += _table(header, rows)
    else:
        out += _compare_tables(ev, names, decimals)
    if len(ev.directions) > 1:
        out += ["", "**Averages** (unweighted means of the per-direction scores)", ""]
        avg = averages(ev)
        if len(names) == 1:
            rows = [[a["group"], str(len(a["directions"]))] +
                    [fmt(m, a["systems"][names[0]][m], decimals) for m in ev.metrics] for a in avg]
            out += _table(["group", "directions"] + ev.metrics, rows)
        else:
            header = ["group", "directions"] + [f"{m} {n}" for m in ev.metrics for n in names]
            rows = [[a["group"], str(len(a["directions"]))] +
                    [fmt(m, a["systems"][n][m], decimals) for m in ev.metrics for n in names] for a in avg]
            out += _table(header, rows)
    out += _systems_table(ev)
    out += ["", "**Signatures**", ""]
    for metric, by_sig in signatures(ev).items():
        for signature, dirs in by_sig.items():
            scope = "" if len(dirs) == len(ev.directions) else f" ({', '.join(dirs)})"
            out.append(f"- {metric}{scope}: `{signature}`")
    for test, info in ev.significance.items():
        unit = "resamples" if test == "bs" else "trials"
        comet = ", COMET on segment scores" if ev.comet["status"] == "ok" else ""
        out.append(f"- {info['name']}: {info['n_samples']} {unit}, seed {significance_seed()}; BLEU/chrF/chrF++ "
                   f"by sacrebleu's PairedTest{comet} (signatures in report.json)")
    notes = _notes(ev)
    if notes:
        out += ["", "**Notes**", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def _systems_table(ev) -> list[str]:
    """Size and speed of the systems that translated here (teacher vs students, say)."""
    rows = []
    for name, info in ev.system_info.items():
        if info.get("kind") != "bundle" or "speed" not in info:
            continue
        model, speed = info.get("model", {}), info["speed"]
        params = model.get("parameters")
        rate = speed.get("sentences_per_s")
        tokens = speed.get("tokens_per_s")
        rows.append([name, f"{info.get('backend')} ({model.get('what', '?')})",
                     f"{params / 1e6:.2f}M" if params else "?", f"{model.get('bytes', 0) / 2**20:.1f} MiB",
                     f"{rate:.1f}" if rate is not None else "n/a", f"{tokens:.0f}" if tokens is not None else "n/a",
                     f"{speed.get('sentences', 0):,} in {speed.get('seconds', 0):.1f} s"])
    if not rows:
        return []
    threads = {str(info["speed"].get("threads")) for info in ev.system_info.values() if "speed" in info}
    return ["", f"**Systems** (translation speed: every test line of this report, model loading excluded, "
            f"{'/'.join(sorted(threads))} thread(s) setting; measured in this run, so comparable within it)", ""] + \
        _table(["system", "model", "parameters", "size", "sentences/s", "tokens/s", "translated"], rows)


def _pairs(n) -> str:
    return "?" if n is None else f"{n:,}"


def _compare_tables(ev, names, decimals) -> list[str]:
    first_test = next(iter(ev.significance), None)
    out = []
    if first_test:
        tests = ", ".join(f"{info['name']} ({info['n_samples']} {'resamples' if t == 'bs' else 'trials'})"
                          for t, info in ev.significance.items())
        out += [f"Baseline: **{names[0]}**. `*`: p < {ev.config.alpha} against the baseline "
                f"({ev.significance[first_test]['name']}); tests: {tests}. "
                "Baseline cells: score ± half-width of the bootstrap 95% interval." if "bs" in ev.significance
                else f"Baseline: **{names[0]}**. `*`: p < {ev.config.alpha} against the baseline; tests: {tests}.", ""]
    for metric in ev.metrics:
        rows = []
        for d in ev.directions:
            base = _score(d.systems[names[0]], metric)
            row = [d.direction]
            for i, name in enumerate(names):
                value = _score(d.systems[name], metric)
                row.append(_cell(d, metric, i, value, base, decimals, ev.config.alpha))
            rows.append(row)
        out += [f"### {metric}", ""] + _table(["direction"] + [f"{n} (baseline)" if i == 0 else n
                                                               for i, n in enumerate(names)], rows) + [""]
    return out[:-1]


def _cell(d, metric, index, value, base, decimals, alpha) -> str:
    text = fmt(metric, value, decimals)
    if value is None:
        return text
    results = {t: d.significance.get(t, {}).get(metric) for t in d.significance}
    results = {t: r for t, r in results.items() if r}
    if index == 0:
        bs = results.get("bs")
        if bs and bs[0].ci is not None:
            text += f" ± {fmt(metric, bs[0].ci, decimals)}"
        return text
    if base is None:
        return text
    delta = _signed(metric, value - base, decimals)
    parts = [delta]
    star = ""
    shown_change = bool(delta.strip("+-0."))  # no mark on a difference that prints as +0.0
    for j, (test, res) in enumerate(results.items()):
        p = res[index].p_value
        parts.append(_p_text(p) if len(results) == 1 else f"{_p_text(p)} ({test})")
        if j == 0 and p < alpha and shown_change:  # (nor on an unchanged score: degenerate resamples)
            star = "*"
    return f"{text} ({', '.join(parts)}){star}"


def _notes(ev) -> list[str]:
    notes = []
    if ev.comet["status"] != "ok":
        notes.append(f"COMET: n/a: {ev.comet['reason']}" if ev.comet["status"] == "n/a"
                     else f"COMET: {ev.comet['reason']}")
    for d in ev.directions:
        if d.tokenizer_note and d.tokenizer_note != "set by --tokenize":
            notes.append(f"BLEU {d.direction}: {d.tokenizer_note}")
    for name, info in ev.system_info.items():
        if info["kind"] == "bundle":
            dec = info.get("decode", {})
            notes.append(f"{name}: translated with {info.get('backend')} on {info.get('device')}, checkpoint "
                         f"{info.get('checkpoint')}, beam {dec.get('beam')}, lenpen {dec.get('len_penalty')}, "
                         f"max length {dec.get('max_len_a')}*src+{dec.get('max_len_b')}"
                         + (f"; {info['quality_text']}" if info.get("quality_text") else ""))
    if ev.buckets is not None:
        notes.append("resource buckets by training pairs per direction: "
                     + "; ".join(ev.buckets.label(n) for n in ev.buckets.order()))
    notes += ev.notes
    return notes


# -- csv -----------------------------------------------------------------------------
def csv_text(ev) -> str:
    tests = list(ev.significance)
    header = (["system", "row", "direction", "src", "tgt", "group", "bucket", "train_pairs", "testset", "lines",
               "n_lines"] + ev.metrics + [f"{m} p ({t})" for t in tests for m in ev.metrics]
              + [f"{m} signature" for m in ev.metrics] + ["bleu_tokenizer", "hyp_file"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for index, system in enumerate(ev.systems):
        for d in ev.directions:
            r = d.systems[system.name]
            p_values = []
            for test in tests:
                for m in ev.metrics:
                    res = d.significance.get(test, {}).get(m)
                    p_values.append("" if not res or index == 0 else _csv_num(res[index].p_value))
            writer.writerow([system.name, "direction", d.direction, d.testset.src_lang, d.testset.tgt_lang, d.group,
                             d.bucket or "", "" if d.train_pairs is None else d.train_pairs, d.testset.name,
                             d.testset.lines_text, len(d.testset.indices)]
                            + [_csv_num(_score(r, m)) for m in ev.metrics] + p_values
                            + [(r.scores[m].signature if m in r.scores else "") for m in ev.metrics]
                            + [d.bleu_tokenizer, r.hyp_file])
        if len(ev.directions) > 1:
            for a in averages(ev):
                writer.writerow([system.name, "average", a["group"], "", "", "", "", "", ev.directions[0].testset.name,
                                 "", len(a["directions"])]
                                + [_csv_num(a["systems"][system.name][m]) for m in ev.metrics]
                                + [""] * (len(tests) * len(ev.metrics) + len(ev.metrics) + 2))
    return buf.getvalue()


def _csv_num(value) -> str:
    """Full precision: the shortest text that reads back as the same float."""
    return NA if value is None else repr(float(value))


# -- json ----------------------------------------------------------------------------
def json_report(ev, outputs: dict) -> dict:
    import sacrebleu

    from nmt.comet import comet_version

    directions = []
    for d in ev.directions:
        entry = {"direction": d.direction, "src": d.testset.src_lang, "tgt": d.testset.tgt_lang, "group": d.group,
                 "train_pairs": d.train_pairs, "bucket": d.bucket, "testset": d.testset.describe(),
                 "bleu_tokenizer": d.bleu_tokenizer, "bleu_tokenizer_note": d.tokenizer_note, "systems": {}}
        for index, system in enumerate(ev.systems):
            r = d.systems[system.name]
            sys_entry = {"hyp_file": r.hyp_file, "hyp_alignment": r.hyp_alignment, "scores": {}}
            for m in ev.metrics:
                score = r.scores.get(m)
                sys_entry["scores"][m] = {"score": None if score is None else score.score,
                                          "signature": "" if score is None else score.signature,
                                          **({"detail": score.detail} if score is not None and score.detail else {})}
            if index and d.significance:
                sys_entry["significance"] = {t: {m: res[index].to_json() for m, res in by_metric.items()}
                                             for t, by_metric in d.significance.items()}
            elif d.significance:
                sys_entry["bootstrap"] = {m: res[0].to_json() for m, res in d.significance.get("bs", {}).items()}
            entry["systems"][system.name] = sys_entry
        directions.append(entry)
    return {
        "format": "nmt-evaluation", "format_version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": ev.config.command,
        "versions": {"nmt": __version__, "sacrebleu": sacrebleu.__version__, "unbabel-comet": comet_version(),
                     "python": platform.python_version()},
        "testset": ev.config.testset.describe(),
        "systems": [ev.system_info[s.name] for s in ev.systems], "baseline": ev.systems[0].name,
        "metrics": ev.metrics, "comet": ev.comet,
        "signatures": signatures(ev),
        "significance": {t: {**info, "alpha": ev.config.alpha} for t, info in ev.significance.items()},
        "resource_buckets": ev.buckets.describe() if ev.buckets else None,
        "directions": directions, "averages": averages(ev) if len(ev.directions) > 1 else [],
        "notes": _notes(ev), "outputs": outputs,
    }


# -- writing -------------------------------------------------------------------------
def write_report(ev) -> dict:
    out = Path(ev.config.out_dir)
    outputs = {"markdown": str(out / "report.md"), "csv": str(out / "report.csv"), "json": str(out / "report.json")}
    if ev.config.segments:
        outputs["segments"] = _write_segments(ev, out)
    outputs["heatmaps"] = _write_heatmaps(ev, out)
    with atomic_open(out / "report.md") as handle:
        handle.write(markdown(ev))
    with atomic_open(out / "report.csv") as handle:
        handle.write(csv_text(ev))
    write_json(out / "report.json", json_report(ev, outputs))
    ev.outputs = outputs
    return outputs


def _write_segments(ev, out: Path) -> list[str]:
    written = []
    several = len(ev.systems) > 1
    for system in ev.systems:
        for d in ev.directions:
            r = d.systems[system.name]
            path = (out / "segments" / system.name if several else out / "segments") / f"{d.direction}.jsonl"
            with atomic_open(path) as handle:
                for i, index in enumerate(d.testset.indices):
                    row = {"line": index + 1, "src": d.testset.src[i], "ref": d.testset.ref[i], "hyp": r.hyps[i],
                           "chrF": r.sentence_chrf[i] if r.sentence_chrf else None}
                    if r.comet_segments is not None:
                        row["COMET"] = r.comet_segments[i]
                    handle.write(json_line(row) + "\n")
            written.append(str(path))
    return written


def _write_heatmaps(ev, out: Path) -> list[str]:
    metric = ev.config.heatmap_metric
    pairs = [(d.testset.src_lang, d.testset.tgt_lang) for d in ev.directions]
    if not metric or not worth_plotting(pairs):
        return []
    written = []
    for system in ev.systems:
        values = {(d.testset.src_lang, d.testset.tgt_lang): _score(d.systems[system.name], metric)
                  for d in ev.directions}
        name = f"heatmap-{metric}.png" if len(ev.systems) == 1 else f"heatmap-{metric}-{system.name}.png"
        title = f"{metric}: {system.name} on {_testset_line(ev).split(' (')[0]}"
        heatmap(values, metric, title, out / name, 4 if metric == "COMET" else ev.config.decimals)
        written.append(str(out / name))
    return written
