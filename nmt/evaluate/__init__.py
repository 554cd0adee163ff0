"""Evaluation: ``nmt evaluate`` and the metrics training validates with.

- ``metrics``: BLEU (tokenizer per target language), chrF, chrF++ via sacrebleu
- ``comet``: COMET model resolution (offline-first), segment-score cache, scorer
- ``testsets``: FLORES-200, ML50 held-out, plain/WMT files; ``--lines`` ranges
- ``systems``: bundles / checkpoints to translate with, hypothesis files
- ``significance``: paired bootstrap and approximate randomization vs a baseline
- ``groups``: English-side groups and resource buckets for averages
- ``runner``: the evaluation flow; ``report`` and ``plot``: Markdown/CSV/JSON/PNG
"""
