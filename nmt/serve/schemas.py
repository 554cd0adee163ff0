"""Request and response bodies of the HTTP APIs (they make the OpenAPI schema at ``/openapi.json``)."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str, where: str) -> str:
    """A text a request may carry: no lone surrogate (JSON's ``"\\ud800"``), which is no character and
    cannot be encoded; refused here, per request, before it can reach a shared batch."""
    bad = _SURROGATE.search(text)
    if bad:
        raise ValueError(f"{where} holds a lone surrogate U+{ord(bad.group()):04X} at character {bad.start()}, "
                         "which is not a character; send valid Unicode")
    return text


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
    pivot: str | None = Field(None, description="Translate through this language (ML50 or ISO code): source -> "
                                                "pivot -> target; 'none': directly. Default: the server's --pivot.")

    @field_validator("texts")
    @classmethod
    def _valid_texts(cls, texts: list[str]) -> list[str]:
        return [check_text(text, f"text {i}") for i, text in enumerate(texts, 1)]


class Hypothesis(BaseModel):
    text: str
    score: float


class TranslationOut(BaseModel):
    text: str = Field(description="Best translation; empty for an empty or untranslatable line.")
    score: float | None = Field(None, description="Its score (CTranslate2 / fairseq: length-normalised log-prob).")
    nbest: list[Hypothesis] | None = Field(None, description="With nbest > 1: the hypotheses, best first.")
    warning: str | None = Field(None, description="Why a line was left empty (e.g. longer than the model's limit).")
    pivot: str | None = Field(None, description="With a pivot language: the translation into it.")


class TranslateResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model: str
    backend: str
    source: str = Field(description="The source language as the model's ML50 code.")
    target: str
    translations: list[TranslationOut]
    warning: str | None = Field(None, description="Set when the model was not trained on this direction "
                                                  "(zero-shot): expect poor output.")
    romanized: list[str] | None = Field(None, description="Present when the model reads or writes this direction "
                                        "in Latin letters (trained on romanized text): 'source' (the input was "
                                        "romanized with uroman first) and/or 'output' (the translation is "
                                        "romanized).")


class ModelInfo(BaseModel):
    id: str
    backend: str
    languages: list[str]
    directions: list[str]
    loaded: bool
    romanized_input: list[str] = Field([], description="Languages whose input the model romanizes (uroman).")
    romanized_output: list[str] = Field([], description="Languages the model writes romanized (analysis models).")


class LanguageInfo(BaseModel):
    code: str
    iso: str
    name: str
    targets: list[str]


class LibreTranslateRequest(BaseModel):
    """LibreTranslate's ``POST /translate`` body (JSON or form-encoded)."""

    model_config = ConfigDict(extra="ignore")

    q: str | list[str] = Field(description="Text or texts; a line break in a text is kept.")
    source: str = Field(description="Source language code, or `auto` to detect it.")
    target: str = Field(description="Target language code.")
    format: str = Field("text", description="`text` or `html` (tags, attributes and entities kept).")
    alternatives: int = Field(0, ge=0, description="Alternative translations per text, besides the best.")
    api_key: str | None = None

    @field_validator("q")
    @classmethod
    def _valid_q(cls, q):
        if isinstance(q, str):
            return check_text(q, "q")
        return [check_text(text, f"q[{i}]") for i, text in enumerate(q)]


class LibreTranslateResponse(BaseModel):
    translatedText: str | list[str] = Field(description="One translation per text (a string for a string q).")
    alternatives: list[str] | list[list[str]] | None = Field(None, description="With alternatives > 0.")
    detectedLanguage: dict | list[dict] | None = Field(
        None, description="With source `auto`: `{\"confidence\": 0-100, \"language\": code}` (a list for a list q).")


class LibreLanguage(BaseModel):
    code: str = Field(description="ISO 639-1 code.")
    name: str
    targets: list[str] = Field(description="The codes this language is translated into (trained directions).")


class ErrorBody(BaseModel):
    error: str = Field(description="One line saying what went wrong.")


# the error answers every route declares (the body is always one line)
ERRORS = {status: {"model": ErrorBody} for status in (400, 403, 408, 413, 415, 422, 503, 504)}
