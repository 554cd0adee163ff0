"""nmt serve as LibreTranslate's clients use it: its Python client, query strings and forms
(deep-translator sends query strings), multipart uploads, source auto and /detect, HTML,
files, CORS preflight, the page at /, and one-line answers for routes it does not have.
The same real server as tests/test_serve.py (tiny trained model, CTranslate2 export)."""
import io
import json
import re
import urllib.parse
import uuid

import pytest
from libretranslatepy import LibreTranslateAPI

from conftest import SAMPLE_RAW
from nmt.translate.sentences import split_line
from test_serve import DE, KEY, assert_one_line_error, call, exported, serving, translate  # noqa: F401

JA = (SAMPLE_RAW / "test.ja_XX-en_XX.ja_XX").read_text(encoding="utf-8").splitlines()
SENTENCES = [line for line in DE if re.search(r"[.!?]$", line) and len(split_line(line, "de", "always")) == 1][:3]


@pytest.fixture(scope="module")
def libre(exported, tmp_path_factory):  # noqa: F811
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"{KEY}\n", encoding="utf-8")
    with serving("-m", exported, "--api-keys", keys, "--cors-origins", "http://127.0.0.1:9,http://localhost:9") \
            as running:
        yield running


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                  f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def best(url, text, source="de"):
    return translate(url, [text], source=source)[2]["translations"][0]["text"]


def test_client_library_translate_detect_languages(libre):
    client = LibreTranslateAPI(libre.url, api_key=KEY)
    paragraph = " ".join(DE[:3])
    assert client.translate(paragraph, "de", "en") == best(libre.url, paragraph)
    detected = client.detect(DE[5])
    assert detected[0]["language"] == "de" and 0 < detected[0]["confidence"] <= 100
    assert {d["language"] for d in detected} <= {"de", "en", "ja", "ko", "ru"}
    # /languages is open without a key, as in LibreTranslate (its npm client does not send one)
    assert {e["code"] for e in LibreTranslateAPI(libre.url).languages()} == {"de", "en", "ja", "ko", "ru"}


def test_v1_split_sentences_per_request(libre):
    paragraph = " ".join(SENTENCES)
    assert split_line(paragraph, "de", "always") == SENTENCES
    split = translate(libre.url, [paragraph], split_sentences="always")[2]["translations"][0]["text"]
    whole = translate(libre.url, [paragraph], split_sentences="never")[2]["translations"][0]["text"]
    parts = [t["text"] for t in translate(libre.url, SENTENCES, split_sentences="never")[2]["translations"]]
    assert split == " ".join(parts) and whole != split  # the same three units in one batch
    assert_one_line_error(*translate(libre.url, ["x"], split_sentences="sometimes")[::2], 422)


def test_query_string_form_and_multipart_parameters(libre):
    url = libre.url
    expected = best(url, DE[0])
    query = urllib.parse.urlencode({"q": DE[0], "source": "de", "target": "en", "api_key": KEY})
    status, _, body = call(url, "/translate?" + query, raw=b"", method="POST")  # deep-translator's way
    assert status == 200 and body["translatedText"] == expected
    form = urllib.parse.urlencode({"q": DE[0], "source": "de", "target": "en", "api_key": KEY}).encode()
    status, _, body = call(url, "/translate", raw=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and body["translatedText"] == expected
    data, kind = multipart({"q": DE[0], "source": "de", "target": "en", "api_key": KEY}, {})
    status, _, body = call(url, "/translate", raw=data, headers={"Content-Type": kind})
    assert status == 200 and body["translatedText"] == expected


def test_missing_or_empty_parameters_are_400(libre):
    for body in ({"q": "", "source": "de", "target": "en"}, {"source": "de", "target": "en"},
                 {"q": "Hallo", "source": "de"}, {"q": "Hallo", "source": "", "target": "en"}, {"q": [], "source": "de",
                                                                                             "target": "en"}):
        status, _, answer = call(libre.url, "/translate", {**body, "api_key": KEY})
        assert_one_line_error(status, answer, 400)
        assert "missing" in answer["error"]


def test_source_auto_and_alternatives(libre):
    status, _, body = call(libre.url, "/translate", {"q": DE[3], "source": "auto", "target": "en", "api_key": KEY})
    assert status == 200 and body["detectedLanguage"]["language"] == "de"
    assert body["translatedText"] == best(libre.url, DE[3])
    # texts over 40 characters are detected one by one; shorter ones take the whole request's language
    # (LibreTranslate's rule)
    long_de, long_ja = (next(line for line in lines if len(line) > 40) for lines in (DE, JA))
    mixed = [long_de, long_ja, DE[3]]
    status, _, body = call(libre.url, "/translate", {"q": mixed, "source": "auto", "target": "en", "api_key": KEY})
    assert status == 200 and [d["language"] for d in body["detectedLanguage"]] == ["de", "ja", "de"]
    assert body["translatedText"] == [best(libre.url, long_de), best(libre.url, long_ja, "ja"), best(libre.url, DE[3])]
    status, _, body = call(libre.url, "/translate", {"q": DE[4], "source": "de", "target": "en", "alternatives": 2,
                                                     "api_key": KEY})
    assert status == 200 and len(body["alternatives"]) == 2 and body["translatedText"] not in body["alternatives"]


def test_html_format_keeps_markup(libre):
    q = f'<p class="x">{DE[0]} <b>{DE[1]}</b></p><script>var a = "{DE[2]}";</script>'
    status, _, body = call(libre.url, "/translate", {"q": q, "source": "de", "target": "en", "format": "html",
                                                     "api_key": KEY})
    assert status == 200, body
    out = body["translatedText"]
    assert re.findall(r"<[^>]+>", out) == re.findall(r"<[^>]+>", q)
    assert f'var a = "{DE[2]}";' in out and DE[0] not in out
    assert f"<b>{best(libre.url, DE[1])}</b>" in out  # a tag around a whole sentence wraps its translation


def test_translate_file_and_download(libre):
    text = f"{DE[0]} {DE[1]}\n\n{DE[2]}\n".encode()
    data, kind = multipart({"source": "de", "target": "en", "api_key": KEY}, {"file": ("brief.txt", text)})
    status, _, body = call(libre.url, "/translate_file", raw=data, headers={"Content-Type": kind})
    assert status == 200, body
    assert body["translatedFileUrl"].startswith(libre.url + "/download_file/")
    status, head, got = call(libre.url, body["translatedFileUrl"][len(libre.url):])
    assert status == 200 and 'filename*=UTF-8\'\'brief.txt' in head["Content-Disposition"]
    same = [t["text"] for t in translate(libre.url, [f"{DE[0]} {DE[1]}", "", DE[2]])[2]["translations"]]
    assert got.split("\n") == same + [""]  # the same sentences in one batch: the same translations
    for name, payload, why in (("x.pdf", b"%PDF-1.4", "cannot translate .pdf"),
                               ("x.docx", b"not a zip", "not a valid .docx"),
                               ("x.txt", b"\xff\xfe bad", "not UTF-8")):
        data, kind = multipart({"source": "de", "target": "en", "api_key": KEY}, {"file": (name, payload)})
        status, _, answer = call(libre.url, "/translate_file", raw=data, headers={"Content-Type": kind})
        assert_one_line_error(status, answer, 400)
        assert why in answer["error"]
    assert_one_line_error(*call(libre.url, "/download_file/nothing.txt")[::2], 404)


def test_cors_preflight_and_origins(libre, exported):  # noqa: F811
    allowed = {"Origin": "http://127.0.0.1:9", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    status, head, _ = call(libre.url, "/translate", method="OPTIONS", headers=allowed)
    assert status == 200 and head["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
    assert "POST" in head["Access-Control-Allow-Methods"]
    status, head, _ = call(libre.url, "/languages", headers={"Origin": "http://127.0.0.1:9"})
    assert status == 200 and head["Access-Control-Allow-Origin"] == "http://127.0.0.1:9"
    status, head, _ = call(libre.url, "/translate", method="OPTIONS", headers={**allowed, "Origin": "http://evil:9"})
    assert status == 400 and "Access-Control-Allow-Origin" not in head
    with serving("-m", exported) as open_server:  # the default: any origin, as LibreTranslate
        status, head, _ = call(open_server.url, "/translate", method="OPTIONS", headers={**allowed, "Origin": "http://x"})
        assert status == 200 and head["Access-Control-Allow-Origin"] == "*"


def test_settings_page_and_unknown_routes(libre):
    status, _, settings = call(libre.url, "/frontend/settings")
    assert status == 200 and settings["keyRequired"] is True and ".docx" in settings["supportedFilesFormat"]
    assert settings["charLimit"] > 0 and settings["language"]["target"]["code"] == "en"
    status, head, page = call(libre.url, "/")
    assert status == 200 and head["Content-Type"].startswith("text/html")
    assert "<select" in page and 'type="file"' in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # self-contained: nothing from elsewhere
    assert_one_line_error(*call(libre.url, "/suggest", {"q": "a", "s": "b"})[::2], 403)
    assert_one_line_error(*call(libre.url, "/spec")[::2], 404)
    status, _, body = call(libre.url, "/translate/v2")
    assert_one_line_error(status, body, 404)
    assert "/openapi.json" in body["error"]
    status, _, body = call(libre.url, "/translate")  # GET on a POST route
    assert_one_line_error(status, body, 405)
    assert json.dumps(body).count("\\n") == 0
