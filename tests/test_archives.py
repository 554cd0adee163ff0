"""Hostile and careless corpus downloads for `nmt data get` (round 3): archives whose links or
names lead out of the cache, decompression bombs, a full disk, concurrent runs, several failed
datasets, https for the hosts that have it. Real files served by a real HTTP server on 127.0.0.1
(tests/corpus_server.py) and read by mtdata's own parsers; nothing leaves the machine."""
from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from nmt import archives
from nmt.errors import NmtError
from nmt.locks import OutputLock
from test_data_get import _closed_port, _get, _one_error_line, _sample, _tsv, _write_list, server  # noqa: F401


def _tarball(members) -> bytes:
    """members: (name, bytes) for files, (name, "->", target) for symlinks, (name, "=>", target) for hard links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in members:
            info = tarfile.TarInfo(member[0])
            if len(member) == 3:
                info.type = tarfile.SYMTYPE if member[1] == "->" else tarfile.LNKTYPE
                info.linkname = member[2]
                tar.addfile(info)
            else:
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


def _tar_entry(server, did, members, tag):
    url = server.add(f"/{tag}.tar.gz", _tarball(members))
    return {"id": did, "url": url, "ext": "tar.gz", "in_paths": ["corpus/c.de", "corpus/c.en"], "in_ext": "txt"}


def _texts(n=30):
    de, en = _sample("de_DE", n)
    return ("\n".join(de) + "\n").encode(), ("\n".join(en) + "\n").encode(), de


@pytest.mark.parametrize("kind", ["symlink_dir", "symlink_file", "hardlink", "absolute_symlink"])
def test_corpus_tarball_links_that_leave_the_archive_are_refused(tmp_path, server, kind):
    """mtdata's extractor followed these (a member below `corpus/link -> /elsewhere` was written there,
    exit 0); nmt extracts every archive itself and refuses them, writing nothing anywhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    de_text, en_text, _ = _texts()
    members = {
        "symlink_dir": [("corpus/link", "->", str(elsewhere)), ("corpus/link/x.txt", b"gotcha"),
                        ("corpus/c.de", de_text), ("corpus/c.en", en_text)],
        "symlink_file": [("corpus/c.de", "->", "../../../elsewhere/owned"), ("corpus/c.en", en_text)],
        "hardlink": [("corpus/c.de", "=>", "../../etc/passwd"), ("corpus/c.en", en_text)],
        "absolute_symlink": [("corpus/c.de", "->", "/etc/passwd"), ("corpus/c.en", en_text)],
    }[kind]
    did = "Local-evil-1-deu-eng"
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [did]}},
                          [_tar_entry(server, did, members, kind)])
    _one_error_line(_get(tmp_path, listing, tmp_path / "raw"), did, "refusing")
    assert list(elsewhere.iterdir()) == []
    assert not (tmp_path / "raw" / "train.de_DE-en_XX.de_DE").exists()


def test_links_inside_the_archive_are_followed(tmp_path, server):
    de_text, en_text, de = _texts()
    members = [("corpus/data/de.txt", de_text), ("corpus/c.de", "->", "data/de.txt"), ("corpus/data/en.txt", en_text),
               ("corpus/c.en", "=>", "corpus/data/en.txt")]
    did = "Local-links-1-deu-eng"
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [did]}},
                          [_tar_entry(server, did, members, "internal")])
    result = _get(tmp_path, listing, tmp_path / "raw")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "raw" / "train.de_DE-en_XX.de_DE").read_text(encoding="utf-8").splitlines() == de


@pytest.mark.parametrize("field, value, needle", [("filename", "../../../victim.tsv.gz", "plain file name"),
                                                  ("filename", "/tmp/x.tsv.gz", "plain file name"),
                                                  ("in_paths", ["../../victim", "corpus/c.en"], "archive member")])
def test_a_list_entry_cannot_name_a_path_outside_the_cache(tmp_path, server, field, value, needle):
    """A `filename:` with `../` wrote (and, when not a valid archive, deleted) a file outside the cache."""
    victim = tmp_path / "victim.tsv.gz"
    victim.write_bytes(b"precious")
    de, en = _sample("de_DE", 20)
    did = "Local-escape-1-deu-eng"
    entry = {"id": did, "url": server.add("/e.tsv.gz", b"not gzip at all"), "ext": "tsv.gz", field: value}
    if field == "in_paths":
        entry.update(url=server.add("/e.tar.gz", _tarball([("corpus/c.en", b"x\n")])), ext="tar.gz", in_ext="txt")
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [did]}}, [entry])
    _one_error_line(_get(tmp_path, listing, tmp_path / "raw"), did, needle)
    assert victim.read_bytes() == b"precious"
    assert not server.hits("/e.tsv.gz") and not server.hits("/e.tar.gz")  # refused before anything was fetched


def _bomb(megabytes: int) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as out:
        block = b"ja\tyes\n" * (1 << 17)
        for _ in range(megabytes * (1 << 20) // len(block)):
            out.write(block)
    return buf.getvalue()


def test_a_decompression_bomb_is_refused_before_it_fills_the_disk(tmp_path, server):
    """A 10 MB gzip expanding to 4.5 GB was decompressed until the disk was full. Now the expansion is
    bounded (ratio over its own size past 64 MiB, and an absolute cap): one line, the file deleted."""
    body = _bomb(80)
    assert len(body) * archives.MAX_EXPANSION_RATIO < 80 << 20
    did = "Local-bomb-1-deu-eng"
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [did]}},
                          [{"id": did, "url": server.add("/bomb.tsv.gz", body), "ext": "tsv.gz"}])
    line = _one_error_line(_get(tmp_path, listing, tmp_path / "raw"), did, "decompression bomb",
                           "NMT_MAX_EXPANSION_RATIO")
    assert "deleted" in line and not list((tmp_path / "mtdata").rglob("bomb*.tsv.gz"))
    assert not (tmp_path / "raw" / "corpora" / did).exists()


def test_a_full_disk_while_writing_a_corpus_is_exit_3(tmp_path, server):
    """Before, a full disk in mtdata's parser was reported as "could not read" with exit 2."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        rng = __import__("random").Random(3)
        lines = [(f"satz {rng.getrandbits(64):x} " * 4, f"sentence {rng.getrandbits(64):x} " * 4) for _ in range(20000)]
        did = "Local-large-1-deu-eng"
        listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [did]}},
                              [{"id": did, "url": server.add("/large.tsv.gz", gzip.compress(_tsv(lines))),
                                "ext": "tsv.gz"}])
        result = _get(tmp_path, listing, small / "raw")
        assert result.returncode == 3, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("nmt: error: no space left on device")
        assert "Traceback" not in result.stderr
    finally:
        subprocess.run(["umount", str(small)])


def test_one_run_per_output_directory_and_shared_caches_take_turns(tmp_path, server):
    de, en = _sample("de_DE", 400)
    rng = __import__("random").Random(5)
    body = gzip.compress(_tsv([(f"{x} {rng.getrandbits(60):x}", y) for x, y in zip(de, en)] * 20))
    did = "Local-shared-1-deu-eng"
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [did]}},
                          [{"id": did, "url": server.add("/shared.tsv.gz", body), "ext": "tsv.gz"}])
    out = tmp_path / "raw"
    out.mkdir()
    with OutputLock(out, "test holder"):
        _one_error_line(_get(tmp_path, listing, out), "in use by another nmt process", "test holder")
    server.delay = 0.01  # slow enough that the two runs overlap on the one cached file
    results = {}

    def run(name):
        results[name] = _get(tmp_path, listing, tmp_path / name)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    server.delay = 0.0
    for name in ("a", "b"):
        assert results[name].returncode == 0, results[name].stderr
    assert (tmp_path / "a" / "train.de_DE-en_XX.de_DE").read_bytes() == \
        (tmp_path / "b" / "train.de_DE-en_XX.de_DE").read_bytes()
    assert len([r for r in server.hits("/shared.tsv.gz") if r is None]) == 1  # downloaded once, shared


def test_every_failed_dataset_is_named_and_rerun_is_advised_only_for_network_failures(tmp_path, server):
    de, en = _sample("de_DE", 40)
    ok = server.add("/fine.tsv.gz", gzip.compress(_tsv(zip(de, en))))
    uneven = server.add("/uneven.tsv.gz", gzip.compress(_tsv(zip(de, en)) + b"no tab here\n"))
    port = _closed_port()
    entries = [{"id": "Local-fine-1-deu-eng", "url": ok, "ext": "tsv.gz"},
               {"id": "Local-gone-1-deu-eng", "url": server.url("/missing.tsv.gz"), "ext": "tsv.gz"},
               {"id": "Local-uneven-1-deu-eng", "url": uneven, "ext": "tsv.gz"},
               {"id": "Local-away-1-deu-eng", "url": f"http://127.0.0.1:{port}/x.tsv.gz", "ext": "tsv.gz"}]
    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": [e["id"] for e in entries]}}, entries)
    result = _get(tmp_path, listing, tmp_path / "raw")
    line = _one_error_line(result, "Local-gone-1-deu-eng", "Local-uneven-1-deu-eng", "Local-away-1-deu-eng",
                           "3 datasets failed")
    assert "--exclude Local-gone-1-deu-eng,Local-uneven-1-deu-eng" in line
    assert "rerun to retry Local-away-1-deu-eng" in line and "rerun to resume" not in line
    assert not any("| root |" in x for x in result.stderr.splitlines()), \
        result.stderr  # mtdata's own progress lines stay out of nmt's output


def test_http_urls_of_https_hosts_are_fetched_over_https(tmp_path):
    from nmt.data.dataset_list import load_list, secure_url

    listing = _write_list(tmp_path / "list.yaml", {"de_DE-en_XX": {"train": ["Local-x-1-deu-eng"]}},
                          [{"id": "Local-x-1-deu-eng", "url": "http://data.example.org/x.tsv.gz", "ext": "tsv.gz"}])
    text = listing.read_text(encoding="utf-8") + "https_hosts: [data.example.org]\n"
    listing.write_text(text, encoding="utf-8")
    spec = load_list(listing)
    assert spec["https_hosts"] == ["data.example.org"]
    assert secure_url("http://data.example.org/a.tgz", spec["https_hosts"]) == "https://data.example.org/a.tgz"
    assert secure_url("http://other.example.org/a.tgz", spec["https_hosts"]) == "http://other.example.org/a.tgz"
    listing.write_text(text.replace("https_hosts: [data.example.org]", "https_hosts: [http://x/y]"), encoding="utf-8")
    with pytest.raises(NmtError, match="https_hosts"):
        load_list(listing)


def test_archive_checks_name_the_limit_and_stop_reading_at_it(tmp_path):
    bomb = tmp_path / "b.gz"
    bomb.write_bytes(_bomb(80))
    with pytest.raises(NmtError, match="decompression bomb"):
        archives.check_archive(bomb, "test", "host")
    assert not bomb.exists()
    fine = tmp_path / "f.gz"
    fine.write_bytes(gzip.compress(b"a\tb\n" * 1000))
    archives.check_archive(fine, "test", "host")  # small and repetitive: below the floor, accepted
    tarball = tmp_path / "t.tar.gz"
    tarball.write_bytes(_tarball([("corpus/a", b"x"), ("corpus/link", "->", "a")]))
    with pytest.raises(NmtError, match="is a link"):  # model archives: no links at all
        archives.safe_extract(tarball, tmp_path / "x")
    assert archives.safe_extract(tarball, tmp_path / "y", internal_links=True) == ["corpus/a", "corpus/link"]
    assert (tmp_path / "y" / "corpus" / "link").read_bytes() == b"x"


def test_the_shipped_list_pins_only_real_digests(tmp_path):
    from conftest import REPO
    from nmt.data.dataset_list import load_list

    spec = load_list(REPO / "recipes" / "data" / "ml50.yaml")
    assert {"data.statmt.org", "www.statmt.org"} <= set(spec["https_hosts"])
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in spec["checksums"].values())
    # (every resolved URL is checked against mtdata's index in test_data_get.py)
