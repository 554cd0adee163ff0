"""The HTTP routes: nmt's JSON API (``/v1/...``), the LibreTranslate-compatible API
(``nmt.serve.libre``), the translation page ``/``, ``/health`` and ``/metrics``.

Every error is ``{"error": "one line"}`` with a fitting status code; a bug gives a
500 with a fixed message (the traceback goes to the server log, never to the client).
Each request is checked on its own before it can share a batch with others (lone
surrogates: 422; a line longer than the model takes: 413 with the limit, never an
empty translation). A line break inside a text is kept: each line is translated on
its own and the translations are joined with the same breaks. The OpenAPI schema
(``/openapi.json``) declares every body, the error body and, with ``--api-keys``,
the key schemes; the interactive ``/docs`` page is off (it loads its scripts from a
CDN, which an offline server cannot reach): open ``/openapi.json`` in any OpenAPI viewer.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from pathlib import Path

from fastapi import Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from nmt import __version__, langs
from nmt.serve import libre, schemas
from nmt.serve.batcher import Batcher, Cancelled, Overloaded
from nmt.serve.guard import ApiKeys, Guard
from nmt.serve.limits import Limits
from nmt.serve.metrics import Metrics
from nmt.serve.models import ApiError, ModelSet
from nmt.translate.backends import DecodeOptions
from nmt.translate import sentences
from nmt.translate.translator import Hypothesis, Translation, join_sentences

log = logging.getLogger("nmt.serve")
_BREAK = re.compile(r"(\r?\n)")
PAGE = Path(__file__).with_name("page.html")


def _validation_message(exc) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    message = str(first.get("msg", "bad value")).removeprefix("Value error, ")
    return f"invalid request: {where + ': ' if where else ''}{message}"


def build_app(models: ModelSet, limits: Limits, api_keys: frozenset = frozenset(), on_ready=None,
              cors_origins: tuple = ("*",)):
    """The ASGI application: FastAPI inside the Guard middleware, inside CORS (``cors_origins``: the
    origins whose pages may call the API, ``*`` for any; empty: no CORS headers)."""
    metrics = Metrics()
    keys = ApiKeys(api_keys)
    health = {"status": "starting"}
    warned: set = set()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        for model in models.models:
            model.batcher = Batcher(model.translator, metrics, model.id, max_queue_lines=limits.queue_lines,
                                    window_s=limits.batch_window_ms / 1000)
            await asyncio.to_thread(_warm_up, model, limits)
            model.batcher.start()
        health["status"] = "ok"
        if on_ready is not None:
            on_ready()
        yield
        health["status"] = "stopping"
        for model in models.models:  # in-flight requests are finished by now; drain what is queued
            await model.batcher.stop()
        log.info("nmt serve: stopped")

    app = FastAPI(title="nmt translation server", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="nmt's JSON API and a LibreTranslate-compatible subset. Errors are "
                                              "`{\"error\": \"one line\"}`.")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        request.state.error = exc.message
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        request.state.error = message = _validation_message(exc)
        return _error(422, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code in (404, 405):  # a route of another API (or a typo): say what this server has
            return _error(exc.status_code, f"nmt serve has no {request.method} {request.url.path}; its routes are "
                                           "listed at /openapi.json (nmt's /v1/... API and LibreTranslate's "
                                           "/translate, /detect, /languages, /translate_file, /frontend/settings)")
        return _error(exc.status_code, str(exc.detail).splitlines()[0] if exc.detail else "error")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.error("request %s failed: %r", request.state.request_id, exc)
        return _error(500, f"internal error (request id {request.state.request_id}; see the server log)")

    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY (a key of --api-keys)")
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY (a key of --api-keys)")

    def require_key(request: Request, _bearer=Security(bearer), _header=Security(header)) -> None:
        keys.check(request.headers)

    # declared in the OpenAPI schema only when this server asks for keys
    key_required = [Depends(require_key)] if keys.keys else []
    key_schemes = [Security(bearer), Security(header)] if keys.keys else []

    async def translate(request: Request, texts: list, source: str, target: str, beam: int | None,
                        nbest: int = 1, model_id: str | None = None, split: str | None = None,
                        limited: bool = True, pivot: str | None = None):
        """Checks, then the batcher: (model, src, tgt, one Translation per text, warning or None).
        ``split``: the request's sentence splitting (default the server's); ``limited=False`` for a
        file's pieces (the file's size is checked instead); ``pivot``: the request's pivot language
        ('none': directly; default the server's --pivot)."""
        if limited and len(texts) > limits.max_lines:
            raise ApiError(413, f"{len(texts)} texts in one request; the limit is {limits.max_lines}")
        chars = sum(len(text) for text in texts)
        if limited and chars > limits.max_chars:
            raise ApiError(413, f"{chars} characters in one request; the limit is {limits.max_chars}")
        beam = limits.default_beam if beam is None else beam
        if beam > limits.max_beam:
            raise ApiError(400, f"beam {beam} is above this server's limit of {limits.max_beam}")
        if nbest > beam:
            raise ApiError(400, f"nbest ({nbest}) cannot exceed beam ({beam})")
        model, src, tgt = models.pick(source, target, model_id)
        quality = model.translator.quality
        if pivot is not None:  # the request's own pivot language (or none)
            code = None if pivot.lower() == "none" else langs.resolve(pivot, model.languages)
            if pivot.lower() != "none" and code is None:
                raise ApiError(400, f"pivot {pivot!r} is not one of model {model.id}'s languages "
                                    f"({', '.join(model.languages)}); or 'none'")
            quality = dataclasses.replace(quality, pivot=code)
        legs = [(src, tgt)] if not quality.pivot or quality.pivot in (src, tgt) else \
            [(src, quality.pivot), (quality.pivot, tgt)]
        state = request.state
        state.model, state.source, state.target = model.id, src, tgt
        state.lines = len(texts) if limited else getattr(state, "lines", 0) + len(texts)
        warning = None
        untrained = [f"{s}-{t}" for s, t in legs if not model.trained(s, t)]
        if untrained:
            warning = f"model {model.id} was not trained on {', '.join(untrained)} (zero-shot): expect poor output"
            if (model.id, src, tgt, quality.pivot) not in warned:
                warned.add((model.id, src, tgt, quality.pivot))
                log.warning("%s", warning)
        if not texts:
            return model, src, tgt, [], warning
        lines, layout = _split_lines(texts)
        options = DecodeOptions(beam=beam, nbest=nbest, max_len_a=limits.max_len_a, max_len_b=limits.max_len_b,
                                split_sentences=split or limits.split_sentences)
        try:
            first = None
            results = await decode(request, model, lines, layout, *legs[0], options, quality)
            if len(legs) == 2:  # source -> pivot -> target: the second leg translates the first's lines
                first = results
                results = await decode(request, model, [r.text for r in first], layout, *legs[1], options, quality)
        except Overloaded as exc:
            metrics.rejected.labels(exc.reason).inc()
            raise ApiError(503, f"server busy: {exc}; retry later", {"Retry-After": str(exc.retry_after)}) from None
        except TimeoutError:
            metrics.rejected.labels("timeout").inc()
            raise ApiError(504, f"translation did not finish within {limits.timeout_s:g} s") from None
        except Cancelled:
            metrics.rejected.labels("client_gone").inc()
            raise ApiError(499, "the client closed the connection; its work was cancelled") from None
        metrics.lines.labels(model.id).inc(len(lines))
        out = _join_lines(results, layout)
        if first is not None:
            for result, via in zip(out, _join_lines(first, layout)):
                result.pivot = via.text if via.hypotheses else None
        return model, src, tgt, out, warning

    async def decode(request: Request, model, lines: list, layout: list, src: str, tgt: str, options: DecodeOptions,
                     quality) -> list:
        """One Translation per line from ``src`` to ``tgt``: split into sentences, through the batcher
        (``quality``'s candidates when it chooses among them, then its choice), joined back."""
        cut = None
        if options.split_sentences != "never":
            cut = await asyncio.to_thread(sentences.segment_lines, lines, src, options.split_sentences)
            cut = cut if cut.split_any else None
        units = cut.units if cut else lines
        prepared = await asyncio.to_thread(model.translator.prepare, units, src, tgt)
        per_line = [cut.owned(prepared[0], i) for i in range(len(lines))] if cut else [[r] for r in prepared[0]]
        _refuse_too_long(per_line, lines, layout, metrics)
        if len(prepared[1]) > limits.queue_lines:
            raise ApiError(413, f"{len(prepared[1])} sentences to decode in one request (texts split at line "
                                f"breaks and sentences); a model queues at most {limits.queue_lines}")
        decoding = quality.candidate_options(options) if quality.selecting else options
        results = await model.batcher.translate(prepared, src, tgt, decoding, limits.timeout_s,
                                                disconnected=lambda: _disconnected(request))
        if quality.selecting:
            results = await asyncio.to_thread(model.translator.select, units, results, src, tgt, options, quality)
        if cut:
            joiner = sentences.joiner(tgt)
            results = [join_sentences(cut.owned(results, i), joiner, i + 1) for i in range(len(lines))]
        return results

    @app.post("/v1/translate", response_model=schemas.TranslateResponse, responses=schemas.ERRORS,
              dependencies=key_required, response_model_exclude_none=True)
    async def v1_translate(body: schemas.TranslateRequest, request: Request, response: Response):
        """Translate `texts` (one translation per text, in order) with scores and optional n-best lists."""
        model, src, tgt, results, warning = await translate(request, body.texts, body.source, body.target,
                                                            body.beam, body.nbest, body.model,
                                                            split=body.split_sentences, pivot=body.pivot)
        out = []
        for result in results:
            best = result.hypotheses[0] if result.hypotheses else None
            item = schemas.TranslationOut(text=result.text, score=best.score if best else None,
                                          warning=result.warning, pivot=result.pivot)
            if body.nbest > 1:
                item.nbest = [schemas.Hypothesis(text=h.text, score=h.score) for h in result.hypotheses]
            out.append(item)
        if warning:
            response.headers["X-NMT-Warning"] = warning
        romanized = [side for side, done in model.translator.romanizes(src, tgt).items() if done]
        return schemas.TranslateResponse(model=model.id, backend=model.translator.backend_name, source=src,
                                         target=tgt, translations=out, warning=warning, romanized=romanized or None)

    @app.get("/v1/models", response_model=list[schemas.ModelInfo], dependencies=key_required)
    async def v1_models():
        """The served models: id, backend, languages (ML50 codes), trained directions."""
        return [m.describe() for m in models.models]

    @app.get("/v1/languages", response_model=list[schemas.LanguageInfo], dependencies=key_required)
    async def v1_languages():
        """Every served language (ML50 and ISO code, name) and the targets a model was trained on."""
        return models.languages()

    libre.register(app, models, limits, keys, key_schemes, translate)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        """The translation page (self-contained: no external scripts, styles or fonts)."""
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/health")
    async def health_check():
        """Liveness and readiness: 200 when every model is loaded and requests are taken, else 503."""
        body = {"status": health["status"], "models": [{"id": m.id, "backend": m.translator.backend_name,
                                                        "loaded": m.batcher is not None} for m in models.models]}
        return JSONResponse(body, status_code=200 if health["status"] == "ok" else 503)

    @app.get("/metrics")
    async def prometheus_metrics():
        """Prometheus metrics: requests, latencies, merged batch sizes, queue depth, refusals."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    guarded = Guard(app, metrics, limits.max_body_bytes, limits.header_timeout_s,
                    larger={"/translate_file": limits.max_file_bytes + 64 * 1024})
    if not cors_origins:
        return guarded
    # as LibreTranslate: GET and POST from pages of other origins, with the headers its clients send
    return CORSMiddleware(guarded, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                          allow_headers=["Authorization", "Content-Type", "X-API-Key"],
                          expose_headers=["X-Request-Id", "Retry-After", "X-NMT-Warning"], max_age=86400)


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _warm_up(model, limits: Limits) -> None:
    """Measure the decoding speed once before serving (the batcher's admission estimate needs it)."""
    pairs = sorted(model.directions)
    if not pairs:
        return
    src, tgt = pairs[0]
    text = "nmt serve measures its decoding speed with this sentence before it takes requests."
    options = DecodeOptions(beam=limits.default_beam, max_len_a=limits.max_len_a, max_len_b=limits.max_len_b)
    model.batcher.warm_up(src, tgt, options, [text] * 8)


async def _disconnected(request: Request) -> None:
    """Returns when the client has gone (the server then receives ``http.disconnect``)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _split_lines(texts: list[str]) -> tuple[list[str], list[list[str]]]:
    """Every line of every text (split at ``\\n`` or ``\\r\\n``), and per text its lines' separators."""
    lines, layout = [], []
    for text in texts:
        parts = _BREAK.split(text)
        lines.extend(parts[0::2])
        layout.append(parts[1::2])
    return lines, layout


def _join_lines(results: list[Translation], layout: list[list[str]]) -> list[Translation]:
    """One Translation per text from its lines' Translations: the k-th hypothesis joins the k-th of each
    line (or its last), with the text's own line breaks; its score is the mean of its lines' scores."""
    out, start = [], 0
    for separators in layout:
        mine = results[start:start + len(separators) + 1]
        start += len(separators) + 1
        if len(mine) == 1:
            out.append(mine[0])
            continue
        depth = max(len(r.hypotheses) for r in mine)
        hypotheses = []
        for k in range(depth):
            picked = [r.hypotheses[min(k, len(r.hypotheses) - 1)] if r.hypotheses else None for r in mine]
            text = "".join(sep + (h.text if h else "") for sep, h in zip([""] + separators, picked))
            scores = [h.score for h in picked if h is not None]
            hypotheses.append(Hypothesis(text, sum(scores) / len(scores)))
        out.append(Translation(hypotheses))
    return out


def _refuse_too_long(per_line: list[list], lines: list[str], layout: list[list[str]], metrics) -> None:
    """413 for a line (or one of its sentences) the model cannot take: never an empty translation of a
    non-empty text. ``per_line``: each line's prepared results (one per sentence when split)."""
    start = 0
    for number, separators in enumerate(layout, 1):
        for offset in range(len(separators) + 1):
            for result in per_line[start + offset]:
                if result is not None and result.warning:
                    metrics.rejected.labels("too_long").inc()
                    where = f"text {number}" + (f", line {offset + 1}" if separators else "")
                    detail = result.warning.split(": ", 1)[1].replace("; output left empty", "")
                    raise ApiError(413, f"{where} ({len(lines[start + offset])} characters) is too long for the "
                                        f"model: {detail}; split it into shorter texts")
        start += len(separators) + 1


