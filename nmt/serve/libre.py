"""The LibreTranslate-compatible API, as LibreTranslate's own server answers it
(checked against its ``libretranslate/app.py`` route descriptions):

- ``POST /translate``: ``q`` (a string or a list), ``source`` (a code, or ``auto``),
  ``target``, ``format`` (``text`` | ``html``), ``alternatives``, ``api_key``; from a
  JSON body, a form (urlencoded or multipart) or the query string, as Flask's
  ``request.values`` reads them. A missing or empty ``q`` / ``source`` / ``target``
  is a 400. With ``source: auto`` the answer has ``detectedLanguage``
  (``{"confidence": 0-100, "language": code}``; a list for a list of texts).
- ``POST /detect``: ``[{"confidence", "language"}]``, best first, among the served
  languages (fastText lid.176, the identifier nmt already ships: ``nmt.data.lid``).
- ``POST /translate_file`` (multipart ``file``, ``source``, ``target``) answers
  ``{"translatedFileUrl"}``; ``GET /download_file/NAME`` gives the file (kept in
  memory for a while, the newest few only).
- ``GET /languages`` and ``GET /frontend/settings`` are open without an API key, as
  in LibreTranslate; ``POST /suggest`` is refused with a one-line reason.
"""
from __future__ import annotations

import asyncio
import collections
import json
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from nmt import langs
from nmt.errors import NmtError
from nmt.serve import schemas
from nmt.serve.models import ApiError
from nmt.translate import markup
from nmt.translate.files import FILE_TYPES, translate_document

KEEP_FILES = 32  # translated files kept for download
KEEP_SECONDS = 3600
MIN_DETECT_CHARS = 40  # shorter texts of a list take the language detected for the whole list (LibreTranslate's rule)


class Downloads:
    """Translated files waiting to be downloaded: the newest ``KEEP_FILES``, for ``KEEP_SECONDS``."""

    def __init__(self):
        self.files: collections.OrderedDict = collections.OrderedDict()

    def add(self, name: str, data: bytes) -> str:
        token = f"{secrets.token_hex(8)}.{Path(name).name}"
        self.files[token] = (time.monotonic(), data)
        while len(self.files) > KEEP_FILES:
            self.files.popitem(last=False)
        return token

    def get(self, token: str) -> bytes | None:
        now = time.monotonic()
        for key in [k for k, (t, _) in self.files.items() if now - t > KEEP_SECONDS]:
            del self.files[key]
        found = self.files.get(token)
        return found[1] if found else None


async def fields(request: Request) -> dict:
    """A LibreTranslate request's parameters: the query string, overridden by a JSON body or a form
    (urlencoded or multipart; a multipart file stays an ``UploadFile``)."""
    values: dict = {k: v for k, v in request.query_params.items()}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            form = await request.form()
        except Exception as exc:  # python-multipart's parse errors
            raise ApiError(400, f"the multipart body cannot be read: {str(exc).splitlines()[0] if str(exc) else exc}")
        values.update({k: v for k, v in form.multi_items()})
        return values
    raw = await request.body()
    if not raw.strip():
        return values
    if kind == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            raise ApiError(400, "the body is not valid JSON") from None
        except RecursionError:
            raise ApiError(400, "the JSON body is nested too deeply") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the JSON body must be an object")
        values.update(data)
        return values
    if kind in ("application/x-www-form-urlencoded", "", "text/plain"):
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ApiError(400, "the form body is not valid UTF-8") from None
        values.update({k: v[0] for k, v in form.items()})
        return values
    raise ApiError(415, f"unsupported content type {kind!r}: send JSON or form fields")


def _require(values: dict, *names) -> None:
    for name in names:
        value = values.get(name)
        if value is None or value == "" or value == []:
            raise ApiError(400, f"Invalid request: missing {name} parameter")


def detect(text: str, models) -> list[dict]:
    """Served languages the text may be in, best first: ``[{"confidence": 0-100, "language": iso}]``."""
    from nmt.data import lid

    served = {langs.get(code).iso for model in models.models for code in model.languages}
    found = [{"confidence": round(prob * 100, 1), "language": label}
             for label, prob in lid.ranked(text) if label in served]
    return found[:1] + [f for f in found[1:] if f["confidence"] > 0]


def register(app, models, limits, keys, key_schemes, translate) -> None:
    """Add the routes to ``app``; ``translate(request, lines, source, target, beam, nbest, split=..., limited=...)``
    is the server's checked, batched translation; ``key_schemes`` declare the API keys in the OpenAPI schema."""
    downloads = Downloads()

    async def translate_texts(request, response, texts, source, target, fmt, alternatives):
        """(translations, alternatives per text) for texts of one source language."""
        beam = max(limits.default_beam, alternatives + 1) if alternatives else None
        if fmt == "html":
            model, src, tgt = models.pick(source, target)
            parsed = markup.parse_documents(texts, src, limits.split_sentences)
            units = [u for doc in parsed for u in doc.units]
            # the request's size was checked on its texts; a document's sentences are not "texts"
            _, _, _, results, warning = await translate(request, units, src, tgt, None, split="never",
                                                        limited=False)
            _warn(response, warning)
            return markup.render_documents(parsed, [r.text for r in results], tgt), [[] for _ in texts]
        _, _, _, results, warning = await translate(request, texts, source, target, beam, alternatives + 1)
        _warn(response, warning)
        return [r.text for r in results], [[h.text for h in r.hypotheses[1:]] for r in results]

    @app.post("/translate", responses=schemas.ERRORS, response_model=schemas.LibreTranslateResponse,
              response_model_exclude_none=True, dependencies=key_schemes,
              openapi_extra=_form_or_json(schemas.LibreTranslateRequest))
    async def libre_translate(request: Request, response: Response):
        """LibreTranslate-compatible translation: `q` (a string or a list), `source` (a code or `auto`), `target`,
        `format` (`text` | `html`), `alternatives`; JSON, form fields or the query string."""
        values = await fields(request)
        _require(values, "q", "source", "target")
        try:
            body = schemas.LibreTranslateRequest.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ApiError(400, f"Invalid request: {'.'.join(map(str, first['loc']))}: {message}") from None
        keys.check(request.headers, body.api_key)
        if body.format not in ("text", "html"):
            raise ApiError(400, f"{body.format} format is not supported (text or html)")
        if body.alternatives + 1 > limits.max_beam:
            raise ApiError(400, f"alternatives {body.alternatives}: this server gives at most "
                                f"{limits.max_beam - 1} alternatives (its --max-beam is {limits.max_beam})")
        texts = [body.q] if isinstance(body.q, str) else list(body.q)
        if len(texts) > limits.max_lines:
            raise ApiError(413, f"{len(texts)} texts in one request; the limit is {limits.max_lines}")
        if sum(len(t) for t in texts) > limits.max_chars:
            raise ApiError(413, f"{sum(len(t) for t in texts)} characters in one request; the limit is "
                                f"{limits.max_chars}")
        if body.format != "html":  # form bodies may carry CR LF; the server's lines are LF (as LibreTranslate);
            # only CR and LF break a line (str.splitlines would also break at U+001E, U+2028 and others)
            texts = [t.replace("\r\n", "\n").replace("\r", "\n") for t in texts]
        detected = None
        sources = [body.source] * len(texts)
        if body.source == "auto":
            whole = detect(" ".join(texts), models)
            detected = []
            for text in texts:
                found = detect(text, models) if len(text) > MIN_DETECT_CHARS else whole
                if not found:
                    raise ApiError(400, "could not detect the language of q among the served languages; "
                                        "give source")
                detected.append(found[0])
            sources = [d["language"] for d in detected]
        out, alts = [None] * len(texts), [None] * len(texts)
        for source in dict.fromkeys(sources):
            picked = [i for i, s in enumerate(sources) if s == source]
            done, more = await translate_texts(request, response, [texts[i] for i in picked], source, body.target,
                                               body.format, body.alternatives)
            for i, text, alt in zip(picked, done, more):
                out[i], alts[i] = text, alt
        single = isinstance(body.q, str)
        answer: dict = {"translatedText": out[0] if single else out}
        if body.alternatives:
            answer["alternatives"] = alts[0] if single else alts
        if detected is not None:
            answer["detectedLanguage"] = detected[0] if single else detected
        return answer

    @app.post("/detect", responses={400: {"model": schemas.ErrorBody}})
    async def libre_detect(request: Request):
        """LibreTranslate-compatible language detection among the served languages (fastText lid.176)."""
        values = await fields(request)
        keys.check(request.headers, values.get("api_key") if isinstance(values.get("api_key"), str) else None)
        _require(values, "q")
        if not isinstance(values["q"], str):
            raise ApiError(400, "Invalid request: q must be a string")
        return detect(values["q"], models)

    @app.get("/languages", response_model=list[schemas.LibreLanguage])
    async def libre_languages():
        """LibreTranslate-compatible: `[{"code": "de", "name": "German", "targets": [...]}]`, the trained
        directions (no key needed)."""
        return models.libre_languages()

    @app.get("/frontend/settings")
    async def frontend_settings():
        """LibreTranslate's settings for its web page, as far as they apply here."""
        isos = [e["code"] for e in models.libre_languages()]
        target = "en" if "en" in isos else isos[0]
        return {"charLimit": limits.max_chars, "frontendTimeout": 500, "apiKeys": bool(keys.keys),
                "keyRequired": bool(keys.keys), "suggestions": False, "filesTranslation": True,
                "supportedFilesFormat": list(FILE_TYPES),
                "language": {"source": {"code": "auto", "name": "Auto Detect"},
                             "target": {"code": target, "name": langs.get(langs.resolve(target, _all(models))).name}}}

    @app.post("/translate_file", responses={400: {"model": schemas.ErrorBody}})
    async def libre_translate_file(request: Request):
        """LibreTranslate-compatible file translation (multipart `file`, `source`, `target`): .txt, .html, .htm,
        .docx, .srt. Answers `{"translatedFileUrl"}`."""
        values = await fields(request)
        keys.check(request.headers, values.get("api_key") if isinstance(values.get("api_key"), str) else None)
        _require(values, "file", "source", "target")
        upload = values["file"]
        if isinstance(upload, str) or not getattr(upload, "filename", None):
            raise ApiError(400, "Invalid request: file must be an uploaded file (multipart/form-data)")
        if values["source"] == "auto":
            raise ApiError(400, "source 'auto' is not supported for files: give the source language")
        model, src, tgt = models.pick(values["source"], values["target"])
        data = await upload.read()
        request.state.lines = 0
        loop = asyncio.get_running_loop()

        def translate_units(units):  # runs in a worker thread: the batcher is on the event loop
            out = []
            for start in range(0, len(units), limits.max_lines):
                chunk = units[start:start + limits.max_lines]
                future = asyncio.run_coroutine_threadsafe(
                    translate(request, chunk, src, tgt, None, split="never", limited=False, model_id=model.id), loop)
                out.extend(r.text for r in future.result()[3])  # (model, src, tgt, results, warning)
            return out

        try:
            result = await loop.run_in_executor(None, translate_document, data, upload.filename, translate_units,
                                                src, tgt, limits.split_sentences, limits.max_file_bytes)
        except NmtError as exc:
            raise ApiError(400, f"Invalid request: {exc}") from None
        token = downloads.add(upload.filename, result)
        return {"translatedFileUrl": f"{str(request.base_url).rstrip('/')}/download_file/{quote(token)}"}

    @app.get("/download_file/{name}")
    async def download_file(name: str):
        """A file translated by POST /translate_file (kept for an hour, the newest 32)."""
        data = downloads.get(name)
        if data is None:
            raise ApiError(404, "no such translated file (files are kept for an hour); translate it again")
        filename = name.split(".", 1)[1]
        return Response(data, media_type=FILE_TYPES.get(Path(filename).suffix.lower(), "application/octet-stream"),
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})

    @app.post("/suggest")
    async def suggest():
        """LibreTranslate's suggestion box: not offered by nmt serve."""
        raise ApiError(403, "Suggestions are disabled on this server (nmt serve does not collect them)")

    @app.get("/spec")
    async def spec():
        """LibreTranslate's Swagger description: nmt serve describes its API at /openapi.json."""
        return JSONResponse({"error": "nmt serve's API description is at /openapi.json, not /spec"},
                            status_code=404)


def _warn(response: Response, warning: str | None) -> None:
    if warning:  # an untrained (zero-shot) pair: translated, with a word of warning
        response.headers["X-NMT-Warning"] = warning


def _all(models) -> list[str]:
    return sorted({code for model in models.models for code in model.languages})


def _form_or_json(model) -> dict:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": schema},
        "multipart/form-data": {"schema": schema}}}}
