"""nmt serve against hostile and careless clients (round 3): a bad text in a merged batch, nested
JSON, idle and half-sent connections, clients that time out or go away, SIGTERM during a half-sent
request, work that cannot finish in time, texts longer than the model takes, the OpenAPI schema,
size limits in characters, line breaks inside a text, trained pairs, counters at zero.

Real servers (``nmt serve --port 0`` on 127.0.0.1) with the tiny trained model's CTranslate2
export; every loop is bounded."""
from __future__ import annotations

import json
import re
import resource
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SAMPLE_FLORES
from test_serve import AUTH, DE, KEY, Server, assert_one_line_error, call, exported, serving, translate  # noqa: F401

FLORES = SAMPLE_FLORES.joinpath("deu_Latn.devtest").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def keyed(exported, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"{KEY}\n", encoding="utf-8")
    with serving("-m", exported, "--api-keys", keys) as running:
        yield running


def _metric(url, name: str, labels: str = "") -> float | None:
    _, _, text = call(url, "/metrics")
    for line in text.splitlines():
        if line.startswith(name + (f"{{{labels}}}" if labels else "")) and not line.startswith("#"):
            return float(line.split()[-1])
    return None


def _wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _post(host: str, port: int, path: str, body: bytes, declared: int | None = None) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=30)
    length = len(body) if declared is None else declared
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 f"Authorization: Bearer {KEY}\r\nContent-Length: {length}\r\n\r\n".encode() + body)
    return sock


def _translate(url, texts, timeout=120, **extra):
    return call(url, "/v1/translate", {"texts": texts, "source": "de", "target": "en", **extra}, AUTH, timeout=timeout)


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split(":")
    return host, int(port)


def test_a_bad_text_fails_alone_in_a_merged_batch(exported):
    """A lone surrogate made every request merged with it fail with 500 (29 of 30)."""
    with serving("-m", exported, "--batch-window-ms", 400) as server:
        raws = [json.dumps({"texts": [line], "source": "de", "target": "en", "beam": 1}).encode() for line in DE[:29]]
        raws.append(b'{"texts": ["Guten \\ud800 Tag"], "source": "de", "target": "en", "beam": 1}')
        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(lambda raw: call(server.url, "/v1/translate", raw=raw), raws))
        assert_one_line_error(answers[-1][0], answers[-1][2], 422)
        assert "surrogate" in answers[-1][2]["error"] and "text 1" in answers[-1][2]["error"]
        alone = translate(server.url, DE[:29], beam=1)[2]["translations"]
        assert [a[2]["translations"][0]["text"] for a in answers[:-1]] == [t["text"] for t in alone]
        status, _, body = call(server.url, "/translate", raw=b'{"q": ["ok", "\\udc00"], "source": "de", "target": "en"}')
        assert_one_line_error(status, body, 400)
        assert not any("Traceback" in line for line in server.stderr)


def test_deeply_nested_json_is_a_one_line_400(keyed):
    deep = b"[" * 50_000 + b"]" * 50_000
    for path, raw in (("/translate", b'{"q": ' + deep + b', "source": "de", "target": "en"}'),
                      ("/v1/translate", b'{"texts": ' + deep + b', "source": "de", "target": "en"}')):
        status, _, body = call(keyed.url, path, raw=raw)  # no API key either
        assert status in (400, 422), (path, status, body)
        assert_one_line_error(status, body, status)


def _launch(*args, nofile: int | None = None) -> Server:
    """``Server`` with an open-file limit for the server process (so that a flood of connections
    would exhaust it)."""
    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return Server(*args, preexec_fn=limit)


def test_idle_and_half_sent_connections_are_closed_and_never_exhaust_the_server(exported):
    """Idle and incomplete connections were never closed: once they used up the file descriptors
    every client timed out and stderr filled at ~4 MB/s."""
    server = _launch("-m", exported, "--header-timeout", 1, "--keep-alive", 1, nofile=256)
    try:
        host, port = _address(server.url)
        sockets = []
        for i in range(300):  # more than the 256 descriptors the server may open
            sock = socket.create_connection((host, port), timeout=30)
            if i % 3 == 0:
                sock.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            sockets.append(sock)
        closed = 0
        for sock in sockets:  # every one is answered 503 at once or closed after the header timeout
            data = b""
            try:
                while chunk := sock.recv(4096):
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
            assert data == b"" or data.startswith(b"HTTP/1.1 503"), data[:80]
            closed += 1
            sock.close()
        assert closed == 300
        status, _, body = translate(server.url, DE[:2], beam=1)
        assert status == 200, body
        assert len(server.stderr) < 40, server.stderr[-10:]  # no flood of accept() errors
        assert any("--max-connections 1000 lowered to 156" in line for line in server.stderr)
    finally:
        server.stop()


def test_the_raised_open_file_limit_is_put_back_when_serving_ends():
    from nmt.serve.server import _connection_budget

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    lower = min(before[0], 512)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lower, before[1]))  # room to raise, as in a default shell
    try:
        with _connection_budget(10 ** 9) as connections:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            assert soft >= lower and connections == soft - 100  # raised where the hard limit allows
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (lower, before[1])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_a_client_that_goes_away_has_its_work_cancelled(exported):
    """A client that disconnected was translated to the end."""
    with serving("-m", exported, "--batch-window-ms", 2000) as server:
        reasons = ("overloaded", "cannot_finish_in_time", "timeout", "client_gone", "too_long", "body_too_large")
        assert all(_metric(server.url, "nmt_rejected_total", f'reason="{r}"') == 0 for r in reasons)
        # 100 lines, and the client is gone while they wait for the batch window: none is decoded
        host, port = _address(server.url)
        sock = _post(host, port, "/v1/translate", json.dumps({"texts": FLORES[:100], "source": "de",
                                                              "target": "en"}).encode())
        sock.close()
        assert _wait_for(lambda: _metric(server.url, "nmt_rejected_total", 'reason="client_gone"') == 1)
        time.sleep(2.5)  # past the window: the scheduler found nothing left to decode
        assert (_metric(server.url, "nmt_batch_lines_count", f'model="{exported.name}"') or 0) == 0


def test_a_request_that_times_out_has_its_remaining_work_dropped(exported):
    """After 16 concurrent requests timed out (504), the decoder kept translating them, and new
    one-line requests got 504 too."""
    with serving("-m", exported, "--timeout", 0.5, "--max-lines", 1024, "--max-chars", 400_000,
                 "--queue-lines", 4096) as server:
        status, _, body = _translate(server.url, FLORES[:1012] + FLORES[:12])
        assert_one_line_error(status, body, 504)
        assert _wait_for(lambda: _metric(server.url, "nmt_queue_lines", f'model="{exported.name}"') == 0)
        time.sleep(1.0)  # the batches that had started finish
        decoded = _metric(server.url, "nmt_batch_lines_sum", f'model="{exported.name}"')
        assert decoded < 1024, decoded  # before: the whole request was decoded after its 504
        status, _, body = _translate(server.url, DE[:1])
        assert status == 200, body


def test_sigterm_with_a_half_sent_request_stops_at_once(exported):
    """A request whose body never completes held a SIGTERM for 66 s (the graceful-shutdown timeout)."""
    server = Server("-m", exported, "--header-timeout", 120)
    try:
        host, port = _address(server.url)
        sock = _post(host, port, "/v1/translate", b'{"texts": ["Hal', declared=1000)
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(20) == 0
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503") and b"shutting down" in answer
    finally:
        server.stop()


def test_work_that_cannot_finish_in_time_is_refused_at_once(exported):
    """40 requests of 128 lines: 23 x 503 at once, 14 x 504 after 60 s, 3 x 200. The queue now refuses
    what the measured speed says cannot finish within the timeout (503 + Retry-After)."""
    with serving("-m", exported, "--timeout", 1, "--max-lines", 128, "--max-chars", 100_000, "--queue-lines",
                 100_000, "--batch-window-ms", 50) as server:
        texts = [FLORES[i * 128:(i + 1) * 128] for i in range(7)] * 3
        with ThreadPoolExecutor(len(texts)) as pool:
            answers = list(pool.map(lambda t: _translate(server.url, t), texts))
        statuses = [a[0] for a in answers]
        busy = [a for a in answers if a[0] == 503]
        assert busy and all(int(a[1]["Retry-After"]) >= 1 and "timeout" in a[2]["error"] for a in busy), statuses
        assert statuses.count(504) <= 2, statuses  # (an estimate: an admitted request may still run late)
        assert _metric(server.url, "nmt_rejected_total", 'reason="cannot_finish_in_time"') == len(busy)


def test_texts_the_model_cannot_take_are_413_with_the_limit(keyed):
    """Before: 200 and an empty translation for an input longer than the model's positions."""
    status, _, body = call(keyed.url, "/v1/translate", {"texts": ["kurz", "Wort " * 400], "source": "de",
                                                        "target": "en"}, AUTH)
    assert_one_line_error(status, body, 413)
    assert re.search(r"text 2 \(2000 characters\) is too long for the model: \d+ subword tokens, more than the "
                     r"model's limit of \d+; split it", body["error"]), body
    status, _, body = call(keyed.url, "/translate", {"q": "eins\n" + "Wort " * 400, "source": "de", "target": "en",
                                                     "api_key": KEY})
    assert_one_line_error(status, body, 413)
    assert "text 1, line 2" in body["error"]


def test_openapi_declares_what_the_server_sends_and_docs_is_off(keyed):
    assert call(keyed.url, "/docs")[0] == 404 and call(keyed.url, "/redoc")[0] == 404  # (a CDN page offline)
    schema = call(keyed.url, "/openapi.json")[2]
    paths, components = schema["paths"], schema["components"]
    error_ref = "#/components/schemas/ErrorBody"
    for path in ("/v1/translate", "/translate"):
        responses = paths[path]["post"]["responses"]
        for status in ("413", "422", "503", "504"):
            assert responses[status]["content"]["application/json"]["schema"]["$ref"] == error_ref, (path, status)
    assert paths["/translate"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == \
        "#/components/schemas/LibreTranslateResponse"
    languages = paths["/languages"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert languages["items"]["$ref"] == "#/components/schemas/LibreLanguage"
    schemes = components["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert len(paths["/v1/translate"]["post"]["security"]) == 2  # either scheme
    status, _, body = call(keyed.url, "/v1/translate", {"texts": "not a list", "source": "de", "target": "en"}, AUTH)
    assert status == 422 and set(body) == set(components["schemas"]["ErrorBody"]["properties"])


def test_size_limits_count_characters_however_the_json_is_written(keyed):
    """16,000 emoji within --max-chars 20,000 were refused when sent ASCII-escaped (12 bytes each)."""
    texts = ["\U0001F600" * 125] * 128
    raw = json.dumps({"texts": texts, "source": "de", "target": "en", "beam": 1}).encode()  # ensure_ascii
    assert len(raw) > 6 * 20_000 + 64 * 1024
    status, _, body = call(keyed.url, "/v1/translate", raw=raw, headers=AUTH)
    assert status == 200 and len(body["translations"]) == 128, body
    status, _, body = call(keyed.url, "/v1/translate", {"texts": ["\U0001F600" * 20_001], "source": "de",
                                                        "target": "en"}, AUTH)
    assert_one_line_error(status, body, 413)
    assert "20001 characters" in body["error"]


def test_line_breaks_inside_a_text_are_kept(keyed):
    """Newlines inside q were collapsed: the paragraph structure was lost."""
    lines = [DE[0], DE[1], "", DE[2]]
    single = [t["text"] for t in translate(keyed.url, lines)[2]["translations"]]
    status, _, body = call(keyed.url, "/translate", {"q": "\n".join(lines), "source": "de", "target": "en",
                                                     "api_key": KEY})
    assert status == 200 and body["translatedText"] == "\n".join(single), body
    status, _, body = translate(keyed.url, ["\r\n".join(lines[:2])])
    assert body["translations"][0]["text"] == "\r\n".join(single[:2])


def test_languages_lists_trained_pairs_and_untrained_pairs_carry_a_warning(keyed):
    """/languages advertised 20 pairs for a model trained on 8 and served the others without a word."""
    status, _, languages = call(keyed.url, "/languages", headers=AUTH)
    targets = {entry["code"]: entry["targets"] for entry in languages}
    assert status == 200 and targets["ja"] == ["en"] and targets["en"] == ["de", "ja", "ko", "ru"]
    assert sum(len(t) for t in targets.values()) == 8
    status, headers, body = translate(keyed.url, [DE[0]], target="ja")
    assert status == 200 and "not trained on de_DE-ja_XX" in body["warning"]
    assert "zero-shot" in headers["X-NMT-Warning"]
    assert "warning" not in translate(keyed.url, [DE[0]])[2]


def test_alternatives_beyond_the_beam_limit_name_alternatives(keyed):
    """`alternatives: 12` was refused as "beam 13"."""
    ask = {"q": DE[0], "source": "de", "target": "en", "api_key": KEY}
    status, _, body = call(keyed.url, "/translate", {**ask, "alternatives": 12})
    assert_one_line_error(status, body, 400)
    assert "alternatives 12" in body["error"] and "at most 9" in body["error"]
    status, _, body = call(keyed.url, "/translate", {**ask, "alternatives": 9})
    assert status == 200 and len(body["alternatives"]) == 9
