"""`nmt data get` end to end: mtdata's own parsers and archive handling on real files
(tmx, sgm pair, tsv.gz, zip) served by a real HTTP server on 127.0.0.1; nothing leaves
the machine. Interrupted downloads, corrupt archives, checksum pins, unreachable hosts,
unequal sides. The dataset list's IDs are checked against the installed mtdata index
(built once, in the session's temporary directory)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import random
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import yaml

from conftest import REPO, SAMPLE_RAW, run_nmt
from corpus_server import CorpusServer

N = 120  # pairs per test corpus


def _sample(lang: str, n: int = N, start: int = 0):
    def read(side):
        path = SAMPLE_RAW / f"train.{lang}-en_XX.{side}"
        return [" ".join(x.split()) for x in path.read_text(encoding="utf-8").splitlines()[start:start + n]]
    return read(lang), read("en_XX")


def _tmx(pairs, a, b) -> bytes:
    units = "".join(f'<tu><tuv xml:lang="{a}"><seg>{escape(x)}</seg></tuv>'
                    f'<tuv xml:lang="{b}"><seg>{escape(y)}</seg></tuv></tu>\n' for x, y in pairs)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<tmx version="1.4"><header srclang="{a}"/>'
            f"<body>\n{units}</body></tmx>\n").encode()


def _sgm(lines) -> bytes:
    segs = "".join(f'<seg id="{i}">{escape(x)}</seg>\n' for i, x in enumerate(lines, 1))
    return f'<refset setid="t" srclang="any"><doc docid="d1" genre="news">\n{segs}</doc>\n</refset>\n'.encode()


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buf.getvalue()


def _tsv(pairs) -> bytes:
    return "".join(f"{x}\t{y}\n" for x, y in pairs).encode()


@pytest.fixture
def server():
    with CorpusServer() as srv:
        yield srv


def _write_list(path: Path, pairs: dict, entries: list, checksums: dict | None = None) -> Path:
    spec = {"pairs": pairs, "entries": entries}
    if checksums:
        spec["checksums"] = checksums
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _get(tmp_path: Path, listing: Path, out: Path, *extra):
    return run_nmt("data", "get", "--list", listing, "--out", out, "--cache", tmp_path / "mtdata", *extra,
                   timeout=120)


def _one_error_line(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("nmt: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def _four_formats(server: CorpusServer, tag: str = ""):
    de, en = _sample("de_DE")
    ja, en_ja = _sample("ja_XX")
    de2, en2 = _sample("de_DE", 80, start=N)
    dev_de, dev_en = _sample("de_DE", 30, start=2 * N)
    urls = {
        "tmx": server.add(f"/{tag}de-en.tmx", _tmx(zip(de, en), "de", "en")),
        "zip": server.add(f"/{tag}en-de.zip", _zip({"corpus/c.en": "\n".join(en2) + "\n",
                                                    "corpus/c.de": "\n".join(de2) + "\n"})),
        "sgm": (server.add(f"/{tag}dev.de.sgm", _sgm(dev_de)), server.add(f"/{tag}dev.en.sgm", _sgm(dev_en))),
        # a talk without translation, as the Neulab TED corpus marks it: skipped and counted
        "tsv": server.add(f"/{tag}ja-en.tsv.gz", gzip.compress(_tsv([*zip(ja, en_ja), ("__NULL__", "No.")]))),
    }
    entries = [
        {"id": "Local-tmx_sample-1-deu-eng", "url": urls["tmx"], "ext": "tmx"},
        # English first in the ID and in the archive: nmt must swap the sides
        {"id": "Local-zip_sample-1-eng-deu", "url": urls["zip"], "ext": "zip",
         "in_paths": ["corpus/*.en", "corpus/*.de"], "in_ext": "txt"},
        {"id": "Local-sgm_sample-1-deu-eng", "url": list(urls["sgm"]), "ext": "sgm", "in_ext": "sgm"},
        {"id": "Local-tsv_sample-1-jpn-eng", "url": urls["tsv"], "ext": "tsv.gz"},
    ]
    pairs = {
        "de_DE-en_XX": {"train": ["Local-tmx_sample-1-deu-eng", "Local-zip_sample-1-eng-deu"],
                        "valid": ["Local-sgm_sample-1-deu-eng"]},
        "ja_XX-en_XX": {"train": ["Local-tsv_sample-1-jpn-eng"]},
    }
    expected = {"train.de_DE-en_XX.de_DE": de + de2, "train.de_DE-en_XX.en_XX": en + en2,
                "valid.de_DE-en_XX.de_DE": dev_de, "valid.de_DE-en_XX.en_XX": dev_en,
                "train.ja_XX-en_XX.ja_XX": ja, "train.ja_XX-en_XX.en_XX": en_ja}
    return entries, pairs, expected, urls


def test_get_four_formats_provenance_reuse_and_manifest(tmp_path, server):
    entries, pairs, expected, urls = _four_formats(server)
    listing = _write_list(tmp_path / "list.yaml", pairs, entries)
    out = tmp_path / "raw"
    result = _get(tmp_path, listing, out)
    assert result.returncode == 0, result.stderr
    for name, lines in expected.items():
        assert (out / name).read_text(encoding="utf-8").splitlines() == lines, name
    provenance = json.loads((out / "provenance.json").read_text())
    tmx = provenance["datasets"]["Local-tmx_sample-1-deu-eng"]
    assert tmx["pairs"] == N and tmx["licence"] is None and tmx["sources"][0]["url"] == urls["tmx"]
    assert tmx["sources"][0]["sha256"] == hashlib.sha256(server.files["/de-en.tmx"]).hexdigest()
    assert len(provenance["datasets"]["Local-sgm_sample-1-deu-eng"]["sources"]) == 2
    assert provenance["datasets"]["Local-tsv_sample-1-jpn-eng"]["skipped_placeholders"] == 1
    for name in expected:
        assert provenance["files"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    n_requests = len(server.requests)
    assert n_requests == 5  # one per file, nothing twice

    # the same command again: nothing is downloaded or re-parsed, outputs identical
    before = {name: (out / name).read_bytes() for name in expected}
    assert _get(tmp_path, listing, out).returncode == 0
    assert len(server.requests) == n_requests
    assert {name: (out / name).read_bytes() for name in expected} == before

    # another layout and a cap, from the same cache: still no download
    out2 = tmp_path / "manifest"
    result = _get(tmp_path, listing, out2, "--layout", "manifest", "--max-pairs", "50", "--langs", "de_DE")
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == n_requests
    from nmt.data.corpus import load_manifest

    loaded = load_manifest(out2 / "manifest.yaml")
    assert list(loaded) == ["de_DE-en_XX"]
    train = loaded["de_DE-en_XX"].splits["train"]
    assert [len(c.path("en_XX").read_text(encoding="utf-8").splitlines()) for c in train] == [50, 50]
    assert train[1].path("de_DE").read_text(encoding="utf-8").splitlines() == expected[
        "train.de_DE-en_XX.de_DE"][N:N + 50]


def test_killed_download_resumes_with_a_range_request(tmp_path, server):
    rng = random.Random(7)
    words = [f"w{rng.getrandbits(40):x}" for _ in range(4000)]
    lines = [(" ".join(rng.choices(words, k=12)), " ".join(rng.choices(words, k=12))) for _ in range(12000)]
    body = gzip.compress(_tsv(lines))
    assert len(body) > 1_000_000
    url = server.add("/big.tsv.gz", body)
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": ["Local-big-1-deu-eng"]}},
                          [{"id": "Local-big-1-deu-eng", "url": url, "ext": "tsv.gz"}])
    out = tmp_path / "raw"
    server.delay = 0.02  # ~1.3 s per MB: long enough to be killed midway
    cmd = [sys.executable, "-m", "nmt.cli", "data", "get", "--list", str(listing), "--out", str(out),
           "--cache", str(tmp_path / "mtdata")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 60
    part = []
    while time.time() < deadline and not [p for p in part if p.stat().st_size > 200_000]:
        time.sleep(0.05)
        part = list((tmp_path / "mtdata").rglob("*.part"))
        assert proc.poll() is None, "the download finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    size = part[0].stat().st_size
    assert 0 < size < len(body)
    assert not (out / "train.de_DE-en_XX.de_DE").exists()
    server.delay = 0.0
    result = _get(tmp_path, listing, out)
    assert result.returncode == 0, result.stderr
    ranges = server.hits("/big.tsv.gz")
    assert ranges[0] is None and ranges[-1] is not None
    assert int(ranges[-1].split("=")[1].rstrip("-")) >= size  # continued, not restarted
    assert (out / "train.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines() == [x for x, _ in lines]
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["datasets"]["Local-big-1-deu-eng"]["sources"][0]["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("ext, compress", [("tsv.gz", gzip.compress), ("tsv.xz", lzma.compress)])
def test_corrupt_archive_is_refused_deleted_and_fetched_again(tmp_path, server, ext, compress):
    de, en = _sample("de_DE")
    good = compress(_tsv(zip(de, en)))
    url = server.add(f"/c.{ext}", good[: len(good) // 2])  # a truncated file, served as if whole
    did = "Local-corrupt-1-deu-eng"
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [did]}},
                          [{"id": did, "url": url, "ext": ext}])
    out = tmp_path / "raw"
    line = _one_error_line(_get(tmp_path, listing, out), did, "127.0.0.1", "not a valid")
    assert "deleted" in line
    assert not list((tmp_path / "mtdata").rglob(f"corrupt.{ext}"))
    assert not (out / "train.de_DE-en_XX.de_DE").exists()
    server.files[f"/c.{ext}"] = good  # the server is fixed: the next run downloads again
    assert _get(tmp_path, listing, out).returncode == 0
    assert (out / "train.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines() == de


def test_checksum_mismatch_names_the_dataset(tmp_path, server):
    de, en = _sample("de_DE")
    body = gzip.compress(_tsv(zip(de, en)))
    url = server.add("/pinned.tsv.gz", body)
    did = "Local-pinned-1-deu-eng"
    entries = [{"id": did, "url": url, "ext": "tsv.gz"}]
    pairs = {"de_DE-en_XX": {"train": [did]}}
    listing = _write_list(tmp_path / "list.yaml", pairs, entries, {url: "0" * 64})
    out = tmp_path / "raw"
    _one_error_line(_get(tmp_path, listing, out), did, "checksum mismatch", hashlib.sha256(body).hexdigest())
    assert not (out / "train.de_DE-en_XX.de_DE").exists()
    listing = _write_list(tmp_path / "list.yaml", pairs, entries, {url: hashlib.sha256(body).hexdigest()})
    assert _get(tmp_path, listing, out).returncode == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_host_one_line_and_existing_data_stays(tmp_path, server):
    de, en = _sample("de_DE")
    good = server.add("/ok.tsv.gz", gzip.compress(_tsv(zip(de, en))))
    entries = [{"id": "Local-ok-1-deu-eng", "url": good, "ext": "tsv.gz"}]
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": ["Local-ok-1-deu-eng"]}}, entries)
    out = tmp_path / "raw"
    assert _get(tmp_path, listing, out).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    port = _closed_port()
    entries.append({"id": "Local-away-1-jpn-eng", "url": f"http://127.0.0.1:{port}/x.tsv.gz", "ext": "tsv.gz"})
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": ["Local-ok-1-deu-eng"]},
                                                    "ja_XX-en_XX": {"train": ["Local-away-1-jpn-eng"]}}, entries)
    line = _one_error_line(_get(tmp_path, listing, out), "Local-away-1-jpn-eng", f"127.0.0.1:{port}", "cannot reach")
    assert "keeps its earlier files and 1 finished dataset(s)" in line
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("kind", ["sgm", "tsv"])
def test_corpus_with_unequal_sides_is_refused(tmp_path, server, kind):
    de, en = _sample("de_DE", 40)
    did = f"Local-uneven_{kind}-1-deu-eng"
    if kind == "sgm":
        urls = [server.add("/u.de.sgm", _sgm(de)), server.add("/u.en.sgm", _sgm(en[:-3]))]
        entry = {"id": did, "url": urls, "ext": "sgm", "in_ext": "sgm"}
    else:
        text = _tsv(zip(de, en)).decode() + "ein Satz ohne Übersetzung\n"
        entry = {"id": did, "url": server.add("/u.tsv.gz", gzip.compress(text.encode())), "ext": "tsv.gz"}
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [did]}}, [entry])
    _one_error_line(_get(tmp_path, listing, tmp_path / "raw"), did, "differ in length")
    assert not (tmp_path / "raw" / "corpora" / did).exists()


def test_bad_choices_are_one_line_errors(tmp_path):
    listing = REPO / "recipes" / "data" / "ml50.yaml"
    _one_error_line(_get(tmp_path, listing, tmp_path / "o", "--langs", "xx_YY"), "unknown language code")
    _one_error_line(_get(tmp_path, listing, tmp_path / "o", "--langs", "de_DE", "--datasets", "Nope-x-1-deu-eng"),
                    "Nope-x-1-deu-eng", "not listed")
    bad = _write_list(tmp_path / "bad.yaml", {"de_DE-en_XX": {"train": ["Local-x-1-deu-eng"]}},
                      [{"id": "Local-x-1-deu-eng", "url": "http://127.0.0.1:9/x.zip", "ext": "zip"}])
    _one_error_line(_get(tmp_path, bad, tmp_path / "o"), "Local-x-1-deu-eng", "in_paths")
    assert not (tmp_path / "mtdata").exists() or not list((tmp_path / "mtdata").rglob("*.pkl"))


def test_every_listed_dataset_is_in_the_installed_mtdata_index(tmp_path_factory):
    """Builds mtdata's index once (about 20 s, 800 MB) in a temporary directory."""
    cache = tmp_path_factory.mktemp("mtdata-index")
    code = ("import sys\n"
            "from nmt.data.get import load_list, resolve_entries, _orientation\n"
            "spec = load_list(sys.argv[1])\n"
            "wanted = [(p, d) for p, s in spec['pairs'].items() for ids in s.values() for d in ids]\n"
            "entries = resolve_entries(spec, sorted({d for _, d in wanted}), sys.argv[2])\n"
            "for pair, did in wanted:\n"
            "    _orientation(entries[did], pair)\n"
            "from mtdata.index import INDEX\n"
            "from urllib.parse import urlparse\n"
            "def urls(e):\n"
            "    return list(e.url) if isinstance(e.url, (list, tuple)) else [e.url]\n"
            "secure = {urlparse(u).hostname for e in INDEX.entries.values() for u in urls(e) if u.startswith('https')}\n"
            "plain = [u for e in entries.values() for u in urls(e) if urlparse(u).scheme != 'https']\n"
            "assert not [u for u in plain if urlparse(u).hostname in secure], plain\n"
            "print(len(spec['pairs']), len(entries))\n")
    result = subprocess.run([sys.executable, "-c", code, str(REPO / "recipes" / "data" / "ml50.yaml"), str(cache)],
                            capture_output=True, text=True, timeout=300, cwd=cache)
    assert result.returncode == 0, result.stderr[-2000:]
    n_pairs, n_ids = map(int, result.stdout.split())
    from nmt import langs

    assert n_pairs == len(langs.MBART50_LANGS) - 1 and n_ids > 100  # every language paired with English


def test_ml50_recipe_stage_0_fetches_when_no_local_copy_is_given(tmp_path, server):
    entries, pairs, expected, _ = _four_formats(server, "recipe-")
    listing = _write_list(tmp_path / "list.yaml", pairs, entries)
    work = tmp_path / "work"
    env = {**os.environ, "WORKDIR": str(work), "SHARED": str(tmp_path / "no-shared"), "DATA_LANGS": "de_DE,ja_XX",
           "FLORES": str(REPO / "data_prep" / "sample" / "flores200" / "devtest"),
           "GET_ARGS": f"--list {listing} --cache {tmp_path / 'mtdata'}",
           "NMT": str(Path(sys.executable).parent / "nmt")}
    recipe = [str(REPO / "recipes" / "ml50_many_to_many.sh"), "--stop-stage", "0"]
    result = subprocess.run(["bash", *recipe], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (work / ".done.0").is_file() and "== stage 0 (get)" in result.stdout
    for name, lines in expected.items():
        assert (work / "raw" / name).read_text(encoding="utf-8").splitlines() == lines
    # a local copy (RAW=...) needs no download: stage 0 says so and fetches nothing
    n_requests = len(server.requests)
    local = subprocess.run(["bash", *recipe[:1], "--stage", "0", "--stop-stage", "0"], capture_output=True,
                           text=True, env={**env, "RAW": str(work / "raw"), "WORKDIR": str(tmp_path / "w2")},
                           timeout=300)
    assert local.returncode == 0, local.stderr[-2000:]
    assert "nothing to download" in local.stdout and len(server.requests) == n_requests
