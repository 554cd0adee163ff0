"""What one server is configured with: ``ServeConfig`` (``nmt serve``'s options) and the request
``Limits``. Light to import: the command line reads its defaults at start-up."""
from __future__ import annotations

from dataclasses import dataclass, field

from nmt.errors import NmtError
from nmt.translate.backends import DecodeOptions, EngineOptions
from nmt.translate.files import MAX_FILE_BYTES
from nmt.translate.options import QualityOptions


@dataclass(frozen=True)
class Limits:
    """What one server accepts; ``nmt serve`` options fill it."""

    max_lines: int = 128  # texts per request
    max_chars: int = 20_000  # characters per request, all texts together
    max_beam: int = 10
    default_beam: int = DecodeOptions.beam  # when a request gives none
    # output length cap, a * source tokens + b, as nmt translate's --max-len-a/--max-len-b
    max_len_a: float = DecodeOptions.max_len_a
    max_len_b: int = DecodeOptions.max_len_b
    timeout_s: float = 60.0  # per request, queueing included
    queue_lines: int = 2048  # lines waiting per model before requests are refused (503)
    batch_window_ms: float = 5.0  # how long an idle server waits for concurrent requests to join a batch
    # connections (uvicorn's, through nmt.serve.server): a request's headers and body must arrive within
    # header_timeout_s; an idle keep-alive connection is closed after keep_alive_s; at most
    # max_connections are open (more are answered 503 and closed at once)
    header_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_connections: int = 1000
    split_sentences: str = DecodeOptions.split_sentences  # texts with several sentences (nmt.translate.sentences)
    max_file_bytes: int = MAX_FILE_BYTES  # POST /translate_file

    @property
    def max_body_bytes(self) -> int:
        """A coarse limit before parsing, so that every request within ``max_chars`` and ``max_lines``
        fits however it is encoded: a character takes up to 12 bytes (a surrogate pair escaped as
        ``\\ud83d\\ude00`` in JSON, or ``%F0%9F%98%80`` in a form), a text its quotes and comma; plus room
        for the other fields. The real limit is ``max_chars``, counted in characters after parsing."""
        return self.max_chars * 12 + self.max_lines * 8 + 64 * 1024

    def check(self) -> None:
        if self.default_beam > self.max_beam:
            raise NmtError(f"--beam {self.default_beam} is above --max-beam {self.max_beam}")
        if self.queue_lines < self.max_lines:
            raise NmtError(f"--queue-lines ({self.queue_lines}) must be at least --max-lines ({self.max_lines}), or "
                           "a full-size request could never be queued")
        DecodeOptions(beam=self.default_beam, max_len_a=self.max_len_a, max_len_b=self.max_len_b,
                      split_sentences=self.split_sentences).check()


@dataclass(frozen=True)
class ServeConfig:
    """One ``nmt serve``: the bundles, where to listen, what a request may ask, how the models run."""

    models: list  # bundle directories, "PATH" or "ID=PATH"
    host: str = "127.0.0.1"
    port: int = 8000  # 0: any free port
    api_key_file: str | None = None  # one key per line: requests must carry one (health and metrics stay open)
    cors_origins: str = "*"  # origins whose web pages may call the API: comma-separated, * for any, "" for none
    limits: Limits = field(default_factory=Limits)
    engine: EngineOptions = field(default_factory=EngineOptions)  # backend, quantization, device, threads
    quality: QualityOptions = field(default_factory=QualityOptions)  # MBR / reranking / pivoting, every request

    @property
    def origins(self) -> tuple:
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())
