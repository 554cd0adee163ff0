"""What one server accepts (``nmt serve`` options fill it). No heavy imports: the CLI reads its defaults."""
from __future__ import annotations

from dataclasses import dataclass

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
