"""The translation page of nmt serve in a real browser (Debian's Chromium driven by Playwright):
pick languages, type, translate with the keyboard, read the result, swap, copy; upload a file
and download its translation; and a page of another origin calling the API with fetch (CORS).
Slow: it trains the tiny model and starts Chromium. Skips when Chromium or Playwright is missing
(recipes/install.sh installs both; CI runs it).

NMT_PAGE_SCREENSHOT=path saves a screenshot of the page after translating (docs/page.png is one)."""
import contextlib
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

from conftest import SAMPLE_RAW
from test_serve import exported, serving  # noqa: F401

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
DE = (SAMPLE_RAW / "test.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines()


@pytest.fixture
def browser(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is not installed (apt-get install chromium; recipes/install.sh does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS, accept_downloads=True,
            viewport={"width": 1100, "height": 760})
        try:
            yield context
        finally:
            context.close()


@contextlib.contextmanager
def other_origin(directory: Path):
    """A static page server on another port of 127.0.0.1: another origin for the browser."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_page_translates_text_and_files(browser, exported, tmp_path):  # noqa: F811
    with serving("-m", exported) as server:
        page = browser.new_page()
        page.goto(server.url + "/")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('Ready')")
        page.select_option("#source", "de")
        page.select_option("#target", "en")
        page.focus("#text")
        page.keyboard.type(DE[0])
        page.keyboard.press("Control+Enter")  # keyboard only
        page.wait_for_function("document.getElementById('result').value !== ''")
        translated = page.input_value("#result")
        expected = server_translate(server.url, DE[0])
        assert translated == expected
        if os.environ.get("NMT_PAGE_SCREENSHOT"):
            page.screenshot(path=os.environ["NMT_PAGE_SCREENSHOT"])
        browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page.click("#copy")
        assert page.evaluate("navigator.clipboard.readText()") == translated
        page.keyboard.press("Alt+s")  # swap: languages and texts change places
        assert page.input_value("#source") == "en" and page.input_value("#target") == "de"
        assert page.input_value("#text") == translated and page.input_value("#result") == DE[0]
        page.select_option("#source", "de")
        page.select_option("#target", "en")
        upload = tmp_path / "brief.txt"
        upload.write_text(f"{DE[1]}\n\n{DE[2]}\n", encoding="utf-8")
        page.set_input_files("#file", str(upload))
        page.click("#translate-file")
        page.wait_for_selector("#download:not(.hidden)")
        with page.expect_download() as info:
            page.click("#download")
        saved = tmp_path / "downloaded.txt"
        info.value.save_as(saved)
        assert info.value.suggested_filename == "brief.en.txt"
        same = server_translate(server.url, [DE[1], "", DE[2]])  # the same sentences in one batch
        assert saved.read_text(encoding="utf-8") == "\n".join(same) + "\n"


def test_fetch_from_another_origin(browser, exported, tmp_path):  # noqa: F811
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!DOCTYPE html><title>other</title><p>other origin</p>", encoding="utf-8")
    script = """async ([url, q]) => {
        try {
            const r = await fetch(url + '/translate', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                  body: JSON.stringify({q, source: 'de', target: 'en'})});
            return (await r.json()).translatedText;
        } catch (err) { return 'blocked: ' + err.message; }
    }"""
    with other_origin(site) as origin:
        page = browser.new_page()
        page.goto(origin + "/index.html")
        with serving("-m", exported, "--cors-origins", origin) as allowed:
            assert page.evaluate(script, [allowed.url, DE[0]]) == server_translate(allowed.url, DE[0])
        with serving("-m", exported, "--cors-origins", "http://127.0.0.1:9") as refused:
            assert page.evaluate(script, [refused.url, DE[0]]).startswith("blocked: ")


def server_translate(url, text):
    from test_serve import call

    return call(url, "/translate", {"q": text, "source": "de", "target": "en"})[2]["translatedText"]
