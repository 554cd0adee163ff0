"""The HTTP routes: nmt's JSON API (``/v1/...``), a LibreTranslate-compatible subset
(``/translate``, ``/languages``), ``/health`` and ``/metrics``.

Every error is ``{"error": "one line"}`` with a fitting status code; a bug gives a
500 with a fixed message (the traceback goes to the server log, never to the client).
"""
from __future__ import annotations

import contextlib
import json
import logging
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nmt import __version__
from nmt.serve import schemas
from nmt.serve.batcher import Batcher, Overloaded
from nmt.serve.config import Limits
from nmt.serve.guard import ApiKeys, Guard
from nmt.serve.metrics import Metrics
from nmt.serve.models import ApiError, ModelSet
from nmt.translate.backends import DecodeOptions

log = logging.getLogger("nmt.serve")
ERRORS = {400: {"model": schemas.ErrorBody}, 403: {"model": schemas.ErrorBody}, 413: {"model": schemas.ErrorBody},
          503: {"model": schemas.ErrorBody}, 504: {"model": schemas.ErrorBody}}


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"invalid request: {where + ': ' if where else ''}{first.get('msg', 'bad value')}"


def build_app(models: ModelSet, limits: Limits, api_keys: frozenset = frozenset(),
              on_ready=None) -> Guard:
    """The ASGI application (FastAPI wrapped in the Guard middleware)."""
    metrics = Metrics()
    keys = ApiKeys(api_keys)
    health = {"status": "starting"}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        for model in models.models:
            model.batcher = Batcher(model.translator, metrics, model.id, max_queue_lines=limits.queue_lines,
                                    max_merge_lines=limits.max_merge_lines, window_s=limits.batch_window_ms / 1000)
            model.batcher.start()
        health["status"] = "ok"
        if on_ready is not None:
            on_ready()
        yield
        health["status"] = "stopping"
        for model in models.models:  # in-flight requests are finished by now; drain what is queued
            await model.batcher.stop()
        log.info("nmt serve: stopped")

    app = FastAPI(title="nmt translation server", version=__version__, lifespan=lifespan,
                  description="nmt's JSON API and a LibreTranslate-compatible subset. Errors are "
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
        return _error(exc.status_code, str(exc.detail).splitlines()[0] if exc.detail else "error")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.error("request %s failed: %r", request.state.request_id, exc)
        return _error(500, f"internal error (request id {request.state.request_id}; see the server log)")

    def require_key(request: Request) -> None:
        keys.check(request.headers)

    async def translate(request: Request, lines: list, source: str, target: str, beam: int | None,
                        nbest: int = 1, model_id: str | None = None):
        """Checks, then the batcher: (model, src, tgt, one Translation per line)."""
        if len(lines) > limits.max_lines:
            raise ApiError(413, f"{len(lines)} texts in one request; the limit is {limits.max_lines}")
        chars = sum(len(line) for line in lines)
        if chars > limits.max_chars:
            raise ApiError(413, f"{chars} characters in one request; the limit is {limits.max_chars}")
        beam = limits.default_beam if beam is None else beam
        if beam > limits.max_beam:
            raise ApiError(400, f"beam {beam} is above this server's limit of {limits.max_beam}")
        if nbest > beam:
            raise ApiError(400, f"nbest ({nbest}) cannot exceed beam ({beam})")
        model, src, tgt = models.pick(source, target, model_id)
        state = request.state
        state.model, state.source, state.target, state.lines = model.id, src, tgt, len(lines)
        if not lines:
            return model, src, tgt, []
        options = DecodeOptions(beam=beam, nbest=nbest, max_len_a=limits.max_len_a, max_len_b=limits.max_len_b)
        try:
            results = await model.batcher.translate(lines, src, tgt, options, limits.timeout_s)
        except Overloaded as exc:
            metrics.rejected.labels("overloaded").inc()
            raise ApiError(503, f"server busy: {exc}; retry later", {"Retry-After": "1"}) from None
        except TimeoutError:
            metrics.rejected.labels("timeout").inc()
            raise ApiError(504, f"translation did not finish within {limits.timeout_s:g} s") from None
        metrics.lines.labels(model.id).inc(len(lines))
        return model, src, tgt, results

    @app.post("/v1/translate", response_model=schemas.TranslateResponse, responses=ERRORS,
              dependencies=[Depends(require_key)], response_model_exclude_none=True)
    async def v1_translate(body: schemas.TranslateRequest, request: Request):
        """Translate `texts` (one translation per text, in order) with scores and optional n-best lists."""
        model, src, tgt, results = await translate(request, body.texts, body.source, body.target, body.beam,
                                                   body.nbest, body.model)
        out = []
        for result in results:
            best = result.hypotheses[0] if result.hypotheses else None
            item = schemas.TranslationOut(text=result.text, score=best.score if best else None,
                                          warning=result.warning)
            if body.nbest > 1:
                item.nbest = [schemas.Hypothesis(text=h.text, score=h.score) for h in result.hypotheses]
            out.append(item)
        return schemas.TranslateResponse(model=model.id, backend=model.translator.backend_name, source=src,
                                         target=tgt, translations=out)

    @app.get("/v1/models", response_model=list[schemas.ModelInfo], dependencies=[Depends(require_key)])
    async def v1_models():
        """The served models: id, backend, languages (ML50 codes), trained directions."""
        return [m.describe() for m in models.models]

    @app.get("/v1/languages", response_model=list[schemas.LanguageInfo], dependencies=[Depends(require_key)])
    async def v1_languages():
        """Every served language (ML50 and ISO code, name) and the targets it can be translated into."""
        return models.languages()

    @app.post("/translate", responses=ERRORS, openapi_extra=_form_or_json(schemas.LibreTranslateRequest))
    async def libre_translate(request: Request):
        """LibreTranslate-compatible: `q` (a string or a list), `source`, `target` (ISO codes), `format` text."""
        fields = await _libre_fields(request)
        try:
            body = schemas.LibreTranslateRequest.model_validate(fields)
        except ValidationError as exc:
            raise ApiError(400, _validation_message(exc)) from None
        keys.check(request.headers, body.api_key)
        if body.format != "text":
            raise ApiError(400, f"format {body.format!r} is not supported; only 'text'")
        lines = [body.q] if isinstance(body.q, str) else body.q
        beam = max(limits.default_beam, body.alternatives + 1) if body.alternatives else None
        _, _, _, results = await translate(request, lines, body.source, body.target, beam,
                                           body.alternatives + 1 if body.alternatives else 1)
        texts = [r.text for r in results]
        answer: dict = {"translatedText": texts[0] if isinstance(body.q, str) else texts}
        if body.alternatives:
            alts = [[h.text for h in r.hypotheses[1:]] for r in results]
            answer["alternatives"] = alts[0] if isinstance(body.q, str) else alts
        return answer

    @app.get("/languages")
    async def libre_languages(request: Request):
        """LibreTranslate-compatible: `[{"code": "de", "name": "German", "targets": [...]}]`."""
        fields = await _libre_fields(request)
        keys.check(request.headers, fields.get("api_key") if isinstance(fields.get("api_key"), str) else None)
        return models.libre_languages()

    @app.get("/health")
    async def health_check():
        """Liveness and readiness: 200 when every model is loaded and requests are taken, else 503."""
        body = {"status": health["status"], "models": [{"id": m.id, "backend": m.translator.backend_name,
                                                        "loaded": m.batcher is not None} for m in models.models]}
        return JSONResponse(body, status_code=200 if health["status"] == "ok" else 503)

    @app.get("/metrics")
    async def prometheus_metrics():
        """Prometheus metrics: requests, latencies, merged batch sizes, queue depth."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return Guard(app, metrics, limits.max_body_bytes)


async def _libre_fields(request: Request) -> dict:
    """A LibreTranslate body: JSON, or form-encoded as its client libraries send it."""
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not raw.strip():
        return {}
    if kind == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            raise ApiError(400, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the JSON body must be an object")
        return data
    if kind in ("application/x-www-form-urlencoded", ""):
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ApiError(400, "the form body is not valid UTF-8") from None
        return {k: v[0] for k, v in form.items()}
    raise ApiError(415, f"unsupported content type {kind!r}: send JSON or form-encoded fields")


def _form_or_json(model) -> dict:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": schema}, "application/x-www-form-urlencoded": {"schema": schema}}}}
