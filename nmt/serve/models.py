"""The models one server holds, and how a request's language codes pick one of them.

Clients may send ML50 codes (``de_DE``) or ISO 639-1 codes as LibreTranslate
clients do (``de``); both go through ``nmt.langs.resolve``, the one language table.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nmt import langs
from nmt.errors import NmtError


class ApiError(Exception):
    """An HTTP error with a one-line message (sent as ``{"error": message}``)."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class ServedModel:
    id: str
    path: Path
    translator: object  # nmt.Translator
    batcher: object = None  # nmt.serve.batcher.Batcher, made when the event loop runs

    @property
    def languages(self) -> list[str]:
        return self.translator.languages

    @property
    def directions(self) -> set[tuple[str, str]]:
        """The directions the model was trained on (every pair of its languages when its bundle does
        not say, as for an imported mBART-50 model)."""
        pairs = set(self.translator.bundle.direction_pairs())
        return pairs or {(a, b) for a in self.languages for b in self.languages if a != b}

    def trained(self, src: str, tgt: str) -> bool:
        return (src, tgt) in self.directions

    def describe(self) -> dict:
        bundle = self.translator.bundle
        romanized = self.translator.romanization
        return {"id": self.id, "backend": self.translator.backend_name, "languages": self.languages,
                "directions": list(bundle.directions), "loaded": True,
                "romanized_input": list(romanized.languages),
                "romanized_output": list(romanized.languages) if romanized.target else []}


def parse_model_args(specs) -> list[tuple[str, Path]]:
    """``-m PATH`` or ``-m ID=PATH`` -> [(id, path)]; the id defaults to the bundle directory's name."""
    out, seen = [], set()
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).resolve().name, spec
        if not name or not path:
            raise NmtError(f"bad --model {spec!r}: write PATH or ID=PATH")
        if name in seen:
            raise NmtError(f"two models are called {name!r}: name them with --model ID=PATH")
        seen.add(name)
        out.append((name, Path(path)))
    return out


class ModelSet:
    def __init__(self, models: list[ServedModel]):
        self.models = models
        self.by_id = {m.id: m for m in models}

    def pick(self, source: str, target: str, model_id: str | None = None) -> tuple[ServedModel, str, str]:
        """The model for a request and the request's languages as that model's ML50 codes."""
        if model_id is not None:
            if model_id not in self.by_id:
                raise ApiError(400, f"unknown model {model_id!r}; served: {', '.join(self.by_id)}")
            candidates = [self.by_id[model_id]]
        else:
            candidates = self.models
        if source == "auto":
            raise ApiError(400, "source 'auto' (language detection) is not supported: give the source language")
        for model in candidates:
            src, tgt = langs.resolve(source, model.languages), langs.resolve(target, model.languages)
            if src and tgt:
                if src == tgt:
                    raise ApiError(400, f"source and target are the same language ({src})")
                return model, src, tgt
        served = sorted({c for m in candidates for c in m.languages})
        raise ApiError(400, f"no served model translates {source!r} to {target!r}; languages: {', '.join(served)}")

    def languages(self) -> list[dict]:
        """Every served language with the targets some model was trained to translate it into, ML50 and
        ISO codes. (Other pairs of a model's languages are still served, with a warning: zero-shot.)"""
        out = {}
        for model in self.models:
            for src, tgt in model.directions:
                entry = out.setdefault(src, {"code": src, "iso": langs.get(src).iso, "name": langs.get(src).name,
                                             "targets": set()})
                entry["targets"].add(tgt)
        return [{**e, "targets": sorted(e["targets"])} for _, e in sorted(out.items())]

    def libre_languages(self) -> list[dict]:
        """``GET /languages`` as LibreTranslate answers it: ISO codes, name, targets."""
        return [{"code": e["iso"], "name": e["name"], "targets": sorted({langs.get(t).iso for t in e["targets"]})}
                for e in self.languages()]
