"""Model presets: the transformer shapes ``model.preset`` names (training) and a bundle
falls back on (an old export that did not record its width)."""
from __future__ import annotations

from typing import Any

# Model shapes. tiny: learns something on 2 CPU cores within minutes (quickstart);
# small: an hour of CPU; base / big: the transformer-base / big shapes, for GPUs.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dim=128, ffn_dim=256, heads=4, encoder_layers=2, decoder_layers=2,
                 dropout=0.1, attention_dropout=0.0, max_positions=256),
    "small": dict(embed_dim=256, ffn_dim=1024, heads=4, encoder_layers=3, decoder_layers=3,
                  dropout=0.1, attention_dropout=0.1, max_positions=512),
    "base": dict(embed_dim=512, ffn_dim=2048, heads=8, encoder_layers=6, decoder_layers=6,
                 dropout=0.1, attention_dropout=0.1, max_positions=1024),
    "big": dict(embed_dim=1024, ffn_dim=4096, heads=16, encoder_layers=6, decoder_layers=6,
                dropout=0.3, attention_dropout=0.1, max_positions=1024),
}
