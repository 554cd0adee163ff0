"""Request and response bodies of the HTTP APIs (they make the OpenAPI schema at ``/openapi.json``)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    texts: list[str] = Field(description="Lines to translate; one translation per line, in order.")
    source: str = Field(description="Source language: ML50 code (de_DE) or ISO 639-1 (de).", examples=["de_DE"])
    target: str = Field(description="Target language: ML50 code (en_XX) or ISO 639-1 (en).", examples=["en_XX"])
    beam: int | None = Field(None, ge=1, description="Beam size (1: greedy); default: the server's --beam.")
    nbest: int = Field(1, ge=1, description="Hypotheses per line, best first (at most beam).")
    model: str | None = Field(None, description="Model id (GET /v1/models); default: the first that has both "
                                                "languages.")


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

    q: str | list[str]
    source: str
    target: str
    format: str = "text"
    alternatives: int = Field(0, ge=0)
    api_key: str | None = None


class ErrorBody(BaseModel):
    error: str = Field(description="One line saying what went wrong.")
