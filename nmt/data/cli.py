"""CLI commands of the ``nmt data`` group that live beside their code (registered by nmt.cli)."""
from __future__ import annotations

import click

from nmt.cli_util import friendly_errors


@click.command("filter-translations")
@click.option("--src", "src_file", required=True, type=click.Path(dir_okay=False), help="Source text that was translated.")
@click.option("--hyp", "hyp_file", required=True, type=click.Path(dir_okay=False),
              help="Its translations, line-aligned (nmt translate-corpus output).")
@click.option("--src-lang", required=True, help="Source language (ML50 code).")
@click.option("--tgt-lang", required=True, help="Language of the translations (ML50 code).")
@click.option("--scores", type=click.Path(dir_okay=False),
              help="Per-line scores of the translations (nmt translate-corpus --scores).")
@click.option("--drop-worst", default=0.0, show_default=True, type=float,
              help="Share of pairs with the lowest scores to drop (needs --scores), e.g. 0.1.")
@click.option("--max-ratio", type=float, help="Drop pairs whose length ratio exceeds this (e.g. 2.0).")
@click.option("--out", "-o", "out_prefix", required=True, type=click.Path(),
              help="Output prefix: writes PREFIX.SRC_LANG, PREFIX.TGT_LANG and PREFIX.filter.json.")
@friendly_errors
def filter_translations(src_file, hyp_file, src_lang, tgt_lang, scores, drop_worst, max_ratio, out_prefix):
    """Filter machine translations (distillation, back-translation) before they become training data."""
    from nmt.data.filter_synthetic import filter_translations as run_filter

    info = run_filter(src_file, hyp_file, src_lang, tgt_lang, out_prefix, scores=scores, drop_worst=drop_worst,
                      max_ratio=max_ratio)
    click.echo(f"kept {info['kept']:,} of {info['lines']:,} pairs (dropped: "
               + ", ".join(f"{k} {v:,}" for k, v in info["dropped"].items()) + f"): {out_prefix}.*", err=True)


DATA_COMMANDS = [filter_translations]
