"""Request and response bodies of the HTTP APIs (they make the OpenAPI schema at ``/openapi.json``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nmt.translate.backends import DecodeOptions
from nmt.translate.files import MAX_FILE_BYTES


@dataclass(frozen=True)
class Limits:
    """What one server accepts; ``nmt serve`` options fill it."""

    max_lines: int = 128  # texts per request
    max_chars: int = 20_000  # characters per request, all texts together
    max_beam: int = 10
    default_beam: int = 5
    # output length cap, a * source tokens + b, as nmt translate's --max-len-a/--max-len-b
    max_len_a: float = 1.5
    max_len_b: int = 10
    timeout_s: float = 60.0  # per request, queueing included
    queue_lines: int = 2048  # lines waiting per model before requests are refused (503)
    batch_window_ms: float = 5.0
    max_merge_lines: int = 256
    split_sentences: str = DecodeOptions.split_sentences  # texts with several sentences (nmt.translate.sentences)
    max_file_bytes: int = MAX_FILE_BYTES  # POST /translate_file

    @property
    def max_body_bytes(self) -> int:
        # UTF-8 takes up to 4 bytes a character, JSON escapes up to 6 (\\uXXXX); plus room for the rest
        return self.max_chars * 6 + 64 * 1024


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    texts: list[str] = Field(description="Lines to translate; one translation per line, in order.")
    source: str = Field(description="Source language: ML50 code (de_DE) or ISO 639-1 (de).", examples=["de_DE"])
    target: str = Field(description="Target language: ML50 code (en_XX) or ISO 639-1 (en).", examples=["en_XX"])
    beam: int | None = Field(None, ge=1, description="Beam size (1: greedy); default: the server's --beam.")
    nbest: int = Field(1, ge=1, description="Hypotheses per line, best first (at most beam).")
    model: str | None = Field(None, description="Model id (GET /v1/models); default: the first that has both "
                                                "languages.")
    split_sentences: Literal["auto", "always", "never"] | None = Field(
        None, description="Texts with several sentences: auto (split those), always, never; default: the "
                          "server's --split-sentences. Each text's translations are joined back into one.")


class Hypothesis(BaseModel):
    text: str
    score: float


class TranslationOut(BaseModel):
    text: str = Field(description="Best translation; empty for an empty or untranslatable line.")
    score: float | None = Field(None, description="Its score (CTranslate2 / fairseq: length-normalised log-prob).")
    nbest: list[Hypothesis] | None = Field(None, description="With nbest > 1: the hypotheses, best first.")
    warning: str | None = Field(None, description="Why a line was left empty (e.g. longer than the model's limit).")


class TranslateResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: str
    backend: str
    source: str = Field(description="The source language as the model's ML50 code.")
    target: str
    translations: list[TranslationOut]


class ModelInfo(BaseModel):
    id: str
    backend: str
    languages: list[str]
    directions: list[str]
    loaded: bool


class LanguageInfo(BaseModel):
    code: str
    iso: str
    name: str
    targets: list[str]


class LibreTranslateRequest(BaseModel):
    """LibreTranslate's ``POST /translate`` body (JSON or form-encoded)."""

    model_config = ConfigDict(extra="ignore")

    q: str | list[str] = Field(description="Text(s) to translate.")
    source: str = Field(description="Source language code, or `auto` to detect it.")
    target: str = Field(description="Target language code.")
    format: str = Field("text", description="`text` or `html` (tags, attributes and entities kept).")
    alternatives: int = Field(0, ge=0, description="Alternative translations per text, besides the best.")
    api_key: str | None = None


class ErrorBody(BaseModel):
    error: str = Field(description="One line saying what went wrong.")
