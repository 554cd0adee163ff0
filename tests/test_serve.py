"""nmt serve: a real server (subprocess on 127.0.0.1, port 0) with the tiny trained model's
CTranslate2 export, called over HTTP by urllib and by the LibreTranslate client library."""
import contextlib
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from libretranslatepy import LibreTranslateAPI

from conftest import SAMPLE_RAW, run_nmt, run_nmt_process

DE = (SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()
RU = (SAMPLE_RAW / "test.ru_RU-en_XX.ru_RU").read_text(encoding="utf-8").splitlines()
KEY = "test-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def exported(exported_bundle):
    """The trained tiny bundle's copy with float32 and int8 CTranslate2 exports (conftest)."""
    return exported_bundle


class Server:
    """``nmt serve --port 0`` in a subprocess; its stderr is collected by a thread."""

    def __init__(self, *args, start_timeout=120, preexec_fn=None):
        self.proc = subprocess.Popen([sys.executable, "-m", "nmt.cli", "serve", "--host", "127.0.0.1", "--port", "0",
                                      *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=preexec_fn)
        self.stderr: list[str] = []
        self.url = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.stderr.append(line.rstrip("\n"))
                if line.startswith('{"event": "listening"'):
                    self.url = json.loads(line)["url"]
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(start_timeout)
        if self.url is None:
            self.stop()
            raise AssertionError("server did not start:\n" + "\n".join(self.stderr[-30:]))

    def stop(self, timeout=60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError("server did not stop within 60 s of SIGTERM")

    def access_log(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr if line.startswith('{"ts"')]


@contextlib.contextmanager
def serving(*args):
    server = Server(*args)
    try:
        yield server
    finally:
        server.stop()


def call(url, path, body=None, headers=None, method=None, timeout=60, raw: bytes | None = None):
    """(status, headers (case-insensitive), parsed JSON or text) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, head, text = response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, head, text = exc.code, exc.headers, exc.read().decode()
    try:
        return status, head, json.loads(text)
    except ValueError:
        return status, head, text


def translate(url, texts, source="de", target="en", **extra):
    return call(url, "/v1/translate", {"texts": texts, "source": source, "target": target, **extra}, AUTH)


def assert_one_line_error(status, body, expected_status):
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert "\n" not in body["error"] and "Traceback" not in body["error"], body


def cli_translate(bundle, tmp_path, lines, src, tgt, *extra) -> list[str]:
    path = tmp_path / f"in.{src}.{len(extra)}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_nmt("translate", "-m", bundle, "-s", src, "-t", tgt, "-i", path, "--backend", "ctranslate2",
                     "--beam", "1", *extra)
    assert result.returncode == 0, result.stderr[-1500:]
    return result.stdout.split("\n")[:len(lines)]


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"# keys\n{KEY}\nsecond-key\n", encoding="utf-8")
    with serving("-m", exported, "--api-keys", keys, "--max-lines", 64, "--max-chars", 4000) as running:
        yield running


def test_one_request_equals_nmt_translate_greedy(server, exported, tmp_path):
    lines = DE[:40] + ["", "   "] + RU[:3]
    status, _, body = translate(server.url, lines, beam=1)
    assert status == 200, body
    assert body["source"] == "de_DE" and body["target"] == "en_XX" and body["backend"] == "ctranslate2"
    got = [t["text"] for t in body["translations"]]
    assert got == cli_translate(exported, tmp_path, lines, "de_DE", "en_XX")
    assert got[40] == got[41] == "" and all(got[:40])
    assert all(isinstance(t["score"], float) for t in body["translations"][:40])


WHOLE = ("--split-sentences", "never")


def test_concurrent_requests_are_merged_and_each_gets_its_own_lines(server, exported, tmp_path):
    # lines whose greedy output ends before the length cap (the same with a far larger cap), so that
    # the batch they end up in cannot change them; distinct outputs, so that a swap would show
    expected = {}
    for src, pool in (("de_DE", DE), ("ru_RU", RU)):
        alone = cli_translate(exported, tmp_path, pool, src, "en_XX", "--batch-sentences", "1", *WHOLE)
        roomy = cli_translate(exported, tmp_path, pool, src, "en_XX", "--batch-sentences", "1", "--max-len-b", "200",
                              *WHOLE)
        outputs = [a for a, r in zip(alone, roomy) if a == r]
        for line, a, r in zip(pool, alone, roomy):
            if a == r and a and outputs.count(a) == 1:
                expected[line] = (src, a)
    assert len(expected) >= 12, len(expected)
    rng = random.Random(7)
    lines = list(expected)
    requests = []
    for _ in range(60):
        picked = rng.sample(lines, rng.choice((1, 1, 2, 3)))
        src = expected[picked[0]][0]
        requests.append([line for line in picked if expected[line][0] == src])

    def send(texts):
        return texts, translate(server.url, texts, source=expected[texts[0]][0][:2], beam=1, split_sentences="never")

    before = _decoded_lines(server.url)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, requests))
    for texts, (status, _, body) in answers:
        assert status == 200, body
        assert [t["text"] for t in body["translations"]] == [expected[line][1] for line in texts]
    # every line decoded once (each text whole: one unit), however the requests were merged (merging itself:
    # test_core.py's batcher tests)
    assert _decoded_lines(server.url) - before == sum(len(texts) for texts in requests)


def _decoded_lines(url) -> float:
    _, _, text = call(url, "/metrics")
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("nmt_batch_lines_sum"))


def test_libretranslate_client_library(server):
    client = LibreTranslateAPI(server.url, api_key=KEY)
    assert client.translate(DE[0], "de", "en") == translate(server.url, [DE[0]])[2]["translations"][0]["text"]
    languages = {entry["code"]: entry for entry in client.languages()}
    assert set(languages) == {"de", "en", "ja", "ko", "ru"} and "de" in languages["en"]["targets"]
    # q as a list (JSON), as LibreTranslate accepts it: one translation per text, in order
    status, _, body = call(server.url, "/translate", {"q": DE[:3], "source": "de", "target": "en", "format": "text",
                                                      "api_key": KEY})
    assert status == 200 and body["translatedText"] == [t["text"] for t in translate(server.url, DE[:3])[2]
                                                        ["translations"]]
    with pytest.raises(urllib.error.HTTPError) as info:
        LibreTranslateAPI(server.url, api_key="wrong").translate(DE[0], "de", "en")
    assert info.value.code == 403


def test_api_keys_limits_and_errors_are_one_line_json(server):
    url = server.url
    assert_one_line_error(*call(url, "/v1/translate", {"texts": ["x"], "source": "de", "target": "en"})[::2], 403)
    assert call(url, "/v1/models", headers={"X-API-Key": "second-key"})[0] == 200
    assert call(url, "/health")[0] == 200 and call(url, "/metrics")[0] == 200  # open without a key
    assert_one_line_error(*translate(url, ["x"] * 65)[::2], 413)
    assert_one_line_error(*translate(url, ["x" * 2001, "y" * 2000])[::2], 413)
    assert_one_line_error(*call(url, "/v1/translate", raw=b"x" * 200_000, headers=AUTH)[::2], 413)  # above the coarse body limit
    assert_one_line_error(*translate(url, ["x"], source="fr")[::2], 400)
    assert_one_line_error(*translate(url, ["x"], beam=50)[::2], 400)
    assert_one_line_error(*translate(url, ["x"], beam=2, nbest=3)[::2], 400)
    assert_one_line_error(*call(url, "/v1/translate", raw=b"{not json", headers=AUTH)[::2], 422)
    assert_one_line_error(*call(url, "/v1/translate", {"texts": "x", "source": "de"}, AUTH)[::2], 422)
    assert_one_line_error(*call(url, "/translate", {"q": "", "source": "de", "target": "en", "api_key": KEY})[::2],
                          400)
    assert_one_line_error(*call(url, "/translate", {"q": "<b>x</b>", "source": "de", "target": "en", "format": "xml",
                                                    "api_key": KEY})[::2], 400)
    assert_one_line_error(*call(url, "/nowhere")[::2], 404)
    status, _, body = translate(url, ["Guten Morgen.", DE[1]], beam=3, nbest=3)
    assert status == 200 and all(len(t["nbest"]) == 3 and t["nbest"][0]["text"] == t["text"]
                                 for t in body["translations"])
    schema = call(url, "/openapi.json")[2]
    assert {"/v1/translate", "/v1/models", "/v1/languages", "/translate", "/languages"} <= set(schema["paths"])
    health = call(url, "/health")[2]
    assert health["status"] == "ok" and health["models"][0]["loaded"] is True
    metrics = call(url, "/metrics")[2]
    for name in ("nmt_requests_total", "nmt_request_seconds_bucket", "nmt_batch_lines_bucket", "nmt_queue_lines"):
        assert name in metrics
    log = server.access_log()
    assert any(r["path"] == "/v1/translate" and r["status"] == 413 for r in log)
    assert all({"request_id", "method", "path", "status", "ms"} <= set(r) for r in log)
    assert not any("Traceback" in line for line in server.stderr)


def test_full_queue_and_timeout(exported):
    # a batch window longer than the timeout holds requests in the queue, so that it fills deterministically;
    # the timeout leaves a loaded machine time to send the second request before the first one times out
    # (a queue that a request fills exactly is decoded at once: the window is for a queue with room left)
    with serving("-m", exported, "--queue-lines", 3, "--max-lines", 2, "--batch-window-ms", 10000, "--timeout", 4) \
            as server:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(translate, server.url, DE[:2])
            deadline = time.monotonic() + 10
            while _queue_lines(server.url) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            status, headers, body = translate(server.url, DE[2:4])  # 2 + 2 lines > 3
            assert_one_line_error(status, body, 503)
            assert headers.get("Retry-After") == "1"
            assert_one_line_error(*first.result()[::2], 504)
        assert _queue_lines(server.url) == 0  # the timed-out request left the queue


def _queue_lines(url) -> float:
    _, _, text = call(url, "/metrics")
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("nmt_queue_lines{"))


def test_sigterm_finishes_the_request_in_flight(exported):
    server = Server("-m", exported, "--batch-window-ms", 1500)
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(translate, server.url, DE[:5])
            deadline = time.monotonic() + 10
            while _queue_lines(server.url) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            server.proc.send_signal(signal.SIGTERM)
            status, _, body = pending.result(timeout=60)
        assert status == 200 and len(body["translations"]) == 5 and all(t["text"] for t in body["translations"])
        assert server.proc.wait(60) == 0
        with pytest.raises(OSError):
            call(server.url, "/health", timeout=5)
    finally:
        server.stop()


def test_cli_errors_are_one_line(exported, tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        result = run_nmt_process("serve", "-m", exported, "--port", port, timeout=120)
    finally:
        taken.close()
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].startswith("nmt: error: port")
    assert "Traceback" not in result.stderr
    for args, needle in ((["-m", tmp_path / "missing"], "does not exist"),
                         (["-m", exported, "--beam", 20], "--max-beam"),
                         (["-m", exported, "--queue-lines", 10], "--queue-lines"),
                         (["-m", exported, "-m", exported], "two models"),
                         (["-m", exported, "--api-keys", tmp_path / "nokeys.txt"], "API key file")):
        result = run_nmt_process("serve", *args, timeout=120)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("nmt: error:") and needle in result.stderr


def test_client_language_codes_map_through_the_language_table():
    from nmt import langs

    served = ["de_DE", "en_XX", "zh_CN", "pt_XX"]
    assert [langs.resolve(code, served) for code in ("de", "de_DE", "EN", "pt-BR", "zh-Hans", "fr", "ja_XX")] == \
        ["de_DE", "de_DE", "en_XX", "pt_XX", "zh_CN", None, None]
