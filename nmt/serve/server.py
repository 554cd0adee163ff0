"""``nmt serve``: load the bundles, bind the socket, run uvicorn until SIGTERM / SIGINT.

Shutdown is graceful: uvicorn stops accepting connections, lets the requests in
flight finish (up to the request timeout), then the batchers drain and stop.
The models load before the port is bound, so a bad bundle fails with a one-line
error and a port that is taken is reported before anything is served.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import signal
import socket
import sys

import uvicorn

from nmt.errors import NmtError
from nmt.serve.app import build_app
from nmt.serve.guard import load_api_keys
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
    process with status 0 (uvicorn re-raises the signal once it has stopped)."""

    @contextlib.contextmanager
    def capture_signals(self):
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _access_logging() -> None:
    """The access log: one JSON object per line on stderr, without the usual log prefix."""
    access = logging.getLogger("nmt.serve.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def load_models(specs, engine) -> ModelSet:
    from nmt.translate.translator import Translator

    served = []
    for model_id, path in parse_model_args(specs):
        translator = Translator(path, **engine.translator_kwargs())
        log.info("model %s: %s, %s backend, languages %s", model_id, path, translator.backend_name,
                 ", ".join(translator.languages))
        served.append(ServedModel(model_id, path, translator))
    return ModelSet(served)


def run_serve(cfg: ServeConfig) -> None:
    """Serve until SIGTERM / SIGINT (the handlers it replaces are restored when it returns)."""
    limits = cfg.limits
    limits.check()
    keys = load_api_keys(cfg.api_key_file)
    models = load_models(cfg.models, cfg.engine)
    sock = _bind(cfg.host, cfg.port)
    bound_host, bound_port = sock.getsockname()[:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host

    def ready():
        # one machine-readable line, so that scripts (and the tests) learn the port of --port 0
        print(json.dumps({"event": "listening", "url": f"http://{url_host}:{bound_port}",
                          "models": [m.id for m in models.models]}), file=sys.stderr, flush=True)

    _access_logging()
    app = build_app(models, limits, keys, on_ready=ready)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", proxy_headers=False,
                            timeout_graceful_shutdown=int(limits.timeout_s) + 5, server_header=False,
                            timeout_keep_alive=5)
    server = _Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise NmtError("the server did not start (see the messages above)")
