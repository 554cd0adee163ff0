"""`nmt data report`: filter counts, length and ratio distributions, repeated lines and
samples per pair, as Markdown and PNG, on the prepared embedded sample."""
from __future__ import annotations

import collections
import json

from conftest import run_nmt

from nmt import langs
from nmt.data.report import _percentile


def test_report_matches_the_manifest_and_the_clean_text(prepared_sample, tmp_path):
    out = tmp_path / "report"
    result = run_nmt("data", "report", prepared_sample, "--out", out, "--top", "3", "--samples", "4")
    assert result.returncode == 0, result.stderr
    text = (out / "report.md").read_text(encoding="utf-8")
    manifest = json.loads((prepared_sample / "manifest.json").read_text())
    sections = text.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == list(manifest["pairs"])
    for section in sections:
        name = section.splitlines()[0]
        counts = manifest["pairs"][name]["train"]
        assert f"| read | {counts['read']:,} |" in section
        for reason, n in counts["dropped"].items():
            assert f"| dropped: {reason} | {n:,} |" in section
        assert f"| **kept** | **{counts['kept']:,}** |" in section
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({name}.png)" in section

        src, tgt = name.split("-")
        lines = {lang: (prepared_sample / "clean" / f"train.{name}.{lang}").read_text(encoding="utf-8").splitlines()
                 for lang in (src, tgt)}
        lengths = sorted(langs.get(src).length(x) for x in lines[src])
        p50 = _percentile(lengths, 50)
        row = next(x for x in section.splitlines() if x.startswith("| source length |"))
        assert row.split("|")[4].strip() == f"{p50:g}"
        top = [(x, n) for x, n in collections.Counter(lines[tgt]).most_common(3) if n > 1]
        for line, n in top:
            assert f"| {n:,} | {line.replace('|', chr(92) + '|')[:89]}" in section
        samples = section.split("Sample pairs:")[1].strip().splitlines()[2:]
        assert len(samples) == 4
    # a second run replaces the report as a whole
    assert run_nmt("data", "report", prepared_sample, "--out", out).returncode == 0
    assert not list(tmp_path.glob(".report*"))


def test_report_on_a_directory_that_is_not_prepared_data(tmp_path):
    result = run_nmt("data", "report", tmp_path)
    assert result.returncode == 2 and result.stderr.strip().startswith("nmt: error: ")
    assert "not a finished prepared-data directory" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "report").exists()
