"""``nmt serve``: load the bundles, bind the socket, run uvicorn until SIGTERM / SIGINT.

Shutdown is graceful: uvicorn stops accepting connections, lets the requests in
flight finish (up to the request timeout), then the batchers drain and stop; a
request whose body is still arriving is answered 503 at once. The models load
before the port is bound, so a bad bundle fails with a one-line error and a port
that is taken is reported before anything is served.

Connections (uvicorn's httptools protocol, h11 where httptools is missing, and uvloop's event
loop where installed: uvicorn's own faster choices, measured +15% one-sentence requests per
second with the tiny preset; two additions here): a client must send a
request's headers within ``--header-timeout`` seconds of connecting or of its last
response (uvicorn has no such timeout: an incomplete request held its connection
forever), an idle keep-alive connection is closed after ``--keep-alive`` seconds
(uvicorn's ``timeout_keep_alive``), and at most ``--max-connections`` are open: one
more is answered 503 and closed at once. The limit is kept below the process's
open-file limit (raised to its hard limit first), so the server never runs out
of file descriptors; the same warning is logged at most once every 10 s.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import resource
import signal
import socket
import sys
import time

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # uvicorn's C parser (a dependency; h11, pure Python, where a platform lacks it)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol
except ImportError:  # pragma: no cover
    _BaseProtocol = H11Protocol

from nmt.errors import NmtError
from nmt.serve.app import build_app
from nmt.serve.guard import Guard, load_api_keys
from nmt.serve.models import ModelSet, ServedModel, parse_model_args
from nmt.serve.config import ServeConfig

log = logging.getLogger("nmt.serve")


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise NmtError(f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise NmtError(f"port {port} on {host} is already in use; pick another with --port "
                           "(--port 0 takes a free one)") from None
        raise NmtError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM / SIGINT that stopped it gracefully ends the
    process with status 0 (uvicorn re-raises the signal once it has stopped), and that the
    guard learns of the shutdown first (half-sent bodies are answered at once)."""

    def __init__(self, config, guard):
        super().__init__(config)
        self.guard = guard

    @contextlib.contextmanager
    def capture_signals(self):
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets=None):
        self.guard.stopping()
        await super().shutdown(sockets)


_REFUSED_BODY = json.dumps({"error": "too many open connections; retry later"}).encode()
_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"retry-after: 1\r\ncontent-length: " + str(len(_REFUSED_BODY)).encode() + b"\r\n\r\n" + _REFUSED_BODY)


def protocol(header_timeout_s: float, max_connections: int):
    """uvicorn's HTTP protocol with a header timeout and a connection limit (see the module docstring)."""

    class Protocol(_BaseProtocol):
        _header_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(_REFUSED)
                transport.close()
                return
            self._arm()

        def data_received(self, data):
            if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # a new request begins: its headers must come in time
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # headers complete: the body's time is the guard's

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def _arm(self):
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self):
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self):
            self._header_timer = None
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self.transport.close()

    return Protocol


class _OncePer(logging.Filter):
    """Let the same message through at most once per ``seconds`` (a flood of accept() errors)."""

    def __init__(self, seconds: float = 10.0):
        super().__init__()
        self.seconds = seconds
        self.last: dict = {}
        self.dropped: dict = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self.last.get(key, -self.seconds) < self.seconds:
            self.dropped[key] = self.dropped.get(key, 0) + 1
            return False
        self.last[key] = now
        if self.dropped.pop(key, 0):
            record.msg = f"{record.msg} (repeated; shown at most once every {self.seconds:g} s)"
        return True


@contextlib.contextmanager
def _connection_budget(wanted: int):
    """While serving: the open-file limit raised to its hard limit, and the connections that fit below
    it (100 kept for models, logs and the listening socket); the caller's limit is put back after."""
    soft, hard = before = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    fitting = max(1, soft - 100)
    if wanted > fitting:
        log.warning("--max-connections %d lowered to %d: the process may open %d files", wanted, fitting, soft)
    try:
        yield min(wanted, fitting)
    finally:
        if soft != before[0]:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, before)


@contextlib.contextmanager
def _server_logging():
    """While serving: the access log, one JSON object per line on stderr without the usual log prefix,
    and at most one of the same asyncio / uvicorn error per 10 s (a flood of accept() errors)."""
    access = logging.getLogger("nmt.serve.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    before = access.level, access.propagate
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    once = _OncePer()
    noisy = [logging.getLogger(name) for name in ("asyncio", "uvicorn.error")]
    for logger in noisy:
        logger.addFilter(once)
    try:
        yield
    finally:
        for logger in noisy:
            logger.removeFilter(once)
        access.removeHandler(handler)
        access.setLevel(before[0])
        access.propagate = before[1]


def load_models(specs, engine, quality=None) -> ModelSet:
    """The served models; ``quality`` (``QualityOptions``): MBR / reranking / pivoting for every request."""
    from nmt.translate.quality import QualityTranslator
    from nmt.translate.translator import Translator

    served = []
    for model_id, path in parse_model_args(specs):
        translator = QualityTranslator(Translator(path, **engine.translator_kwargs()), quality)
        log.info("model %s: %s, %s backend, languages %s", model_id, path, translator.backend_name,
                 ", ".join(translator.languages))
        served.append(ServedModel(model_id, path, translator))
    return ModelSet(served)


def run_serve(cfg: ServeConfig) -> None:
    """Serve until SIGTERM / SIGINT (the signal handlers, log handler and log filters it installs are
    removed when it returns, and the open-file limit it raises is put back)."""
    limits = cfg.limits
    limits.check()
    cfg.quality.check()
    keys = load_api_keys(cfg.api_key_file)
    models = load_models(cfg.models, cfg.engine, cfg.quality)
    sock = _bind(cfg.host, cfg.port)
    bound_host, bound_port = sock.getsockname()[:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host

    def ready():
        # one machine-readable line, so that scripts (and the tests) learn the port of --port 0
        print(json.dumps({"event": "listening", "url": f"http://{url_host}:{bound_port}",
                          "models": [m.id for m in models.models]}), file=sys.stderr, flush=True)

    app = build_app(models, limits, keys, on_ready=ready, cors_origins=cfg.origins)
    with _connection_budget(limits.max_connections) as connections, _server_logging():
        http = protocol(limits.header_timeout_s, connections)
        config = uvicorn.Config(app, http=http, log_level="warning", access_log=False, lifespan="on",
                                proxy_headers=False, timeout_graceful_shutdown=int(limits.timeout_s) + 5,
                                server_header=False, timeout_keep_alive=limits.keep_alive_s)
        server = _Server(config, app if isinstance(app, Guard) else app.app)  # the Guard, inside CORS or not
        server.run(sockets=[sock])
    if not server.started:
        raise NmtError("the server did not start (see the messages above)")
