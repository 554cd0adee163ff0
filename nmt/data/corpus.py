"""Finding parallel corpora: the ML50 raw layout and YAML manifests.

ML50 raw layout: a directory with ``{split}.{xx}-{yy}.{lang}`` files, e.g.
``train.de_DE-en_XX.de_DE`` and ``train.de_DE-en_XX.en_XX``; ``split`` is
``train``, ``valid`` or ``test``. Files of one pair are line-aligned.

Manifest (YAML), for corpora that do not follow that naming::

    pairs:
      de_DE-en_XX:
        train:
          - raw/europarl.de_DE-en_XX        # a prefix: adds .de_DE / .en_XX
          - {de_DE: news.de, en_XX: news.en} # or one file per language
          - {tsv: crawl.de-en.tsv.gz}        # or one TSV file: de_DE<TAB>en_XX
        valid: [dev/newstest2019.de_DE-en_XX]
        test: [...]

Any file may be compressed (``.gz``, ``.xz``, ``.zst``; in the ML50 layout too,
e.g. ``train.de_DE-en_XX.de_DE.gz``); files are read as streams. A path prefix
finds ``prefix.de_DE`` or its compressed form. Relative paths are resolved against the manifest's directory.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from nmt import langs
from nmt.errors import NmtError
from nmt.fileio import read_yaml, shorten

SPLITS = ("train", "valid", "test")
_CODE = r"[a-z]{2,3}_[A-Z]{2}"
_COMPRESSED = r"(?:\.gz|\.xz|\.zst)?"
_ML50_FILE = re.compile(rf"^(train|valid|test)\.({_CODE})-({_CODE})\.({_CODE}){_COMPRESSED}$")
_LOOKS_LIKE_ML50 = re.compile(rf"^(train|valid|test)\.([^.]+)-([^.]+)\.([^.]+){_COMPRESSED}$")


@dataclass(frozen=True)
class Corpus:
    """One line-aligned parallel corpus: a file per language, or one TSV file (``tsv``)."""

    files: tuple  # ((lang, path), (lang, path)); for a TSV both paths are the TSV file
    tsv: Path | None = None

    def path(self, lang: str) -> Path:
        return Path(dict(self.files)[lang])

    def describe(self) -> str:
        return str(self.tsv) if self.tsv else " + ".join(str(p) for _, p in self.files)

    def paths(self) -> list[Path]:
        return [Path(self.tsv)] if self.tsv else [Path(p) for _, p in self.files]


@dataclass
class PairData:
    """All corpora of one language pair, named as in the input (e.g. de_DE-en_XX)."""

    src: str
    tgt: str
    splits: dict = field(default_factory=lambda: {s: [] for s in SPLITS})

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"


def _check_code(code: str, where: str) -> str:
    if code not in langs.LANGUAGES:
        raise NmtError(
            f"unknown language code {code!r} in {where}; valid codes are: "
            f"{', '.join(sorted(langs.LANGUAGES))}"
        )
    return code


def discover_raw(directories) -> dict[str, PairData]:
    """Collect ML50-layout corpora from one or more directories."""
    pairs: dict[str, PairData] = {}
    for directory in directories:
        directory = Path(directory)
        if not directory.is_dir():
            raise NmtError(f"raw data directory {directory} does not exist")
        seen = {}
        for path in sorted(directory.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            match = _ML50_FILE.match(path.name)
            if not match:
                loose = _LOOKS_LIKE_ML50.match(path.name)
                if loose:
                    for code in loose.groups()[1:]:
                        _check_code(code, str(path))
                continue
            split, a, b, lang = match.groups()
            for code in (a, b, lang):
                _check_code(code, str(path))
            if lang not in (a, b):
                raise NmtError(f"{path}: language suffix {lang} is not one of the pair {a}-{b}")
            if lang in seen.get((split, a, b), {}):
                raise NmtError(f"{path} and {seen[split, a, b][lang]} are the same corpus side; keep one")
            seen.setdefault((split, a, b), {})[lang] = path
        for (split, a, b), files in sorted(seen.items()):
            for lang in (a, b):
                if lang not in files:
                    other = files[b if lang == a else a]
                    missing = other.with_name(f"{split}.{a}-{b}.{lang}{''.join(other.suffixes[2:])}")
                    raise NmtError(f"{other} has no partner: missing file {missing}")
            pair = pairs.setdefault(f"{a}-{b}", PairData(a, b))
            pair.splits[split].append(Corpus(((a, files[a]), (b, files[b]))))
    if not pairs:
        raise NmtError(
            "no corpora found: expected files named like train.de_DE-en_XX.de_DE and "
            f"train.de_DE-en_XX.en_XX in {', '.join(str(d) for d in directories)}"
        )
    return pairs


def read_pairs_yaml(path: Path, what: str, example: str) -> dict:
    """A YAML file whose top level has a ``pairs:`` mapping (a manifest, a dataset list)."""
    spec = read_yaml(path, what)
    if not isinstance(spec, dict) or not isinstance(spec.get("pairs"), dict):
        raise NmtError(f"{path}: a {what} needs a 'pairs:' mapping, e.g. {example}")
    return spec


def load_manifest(path) -> dict[str, PairData]:
    path = Path(path)
    spec = read_pairs_yaml(path, "manifest", "pairs: {de_DE-en_XX: {train: [...]}}")
    base = path.parent
    pairs = {}
    for name, splits in spec["pairs"].items():
        a, b = langs.parse_direction(str(name))
        if not isinstance(splits, dict) or "train" not in splits:
            raise NmtError(f"{path}: pair {name} needs a 'train:' list of corpora")
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise NmtError(f"{path}: pair {name} has unknown key(s) {sorted(unknown)}; use {', '.join(SPLITS)}")
        pair = PairData(a, b)
        for split, entries in splits.items():
            if isinstance(entries, (str, dict)):
                entries = [entries]
            if split == "train" and not entries:
                raise NmtError(f"{path}: pair {name} has an empty 'train:'; list at least one corpus")
            if entries is not None and not isinstance(entries, list):
                raise NmtError(f"{path}: pair {name}, {split}: expected a list of corpora, got "
                               f"{shorten(repr(entries), 60)}")
            for entry in entries or []:
                pair.splits[split].append(_manifest_corpus(entry, a, b, base, path))
        pairs[f"{a}-{b}"] = pair
    if not pairs:
        raise NmtError(f"{path}: the manifest lists no pairs")
    return pairs


def _manifest_corpus(entry, a: str, b: str, base: Path, manifest: Path) -> Corpus:
    if isinstance(entry, dict) and set(entry) == {"tsv"}:
        tsv = base / str(entry["tsv"])
        if not tsv.is_file():
            raise NmtError(f"{manifest}: missing TSV file {tsv} ({a}-{b})")
        return Corpus(((a, tsv), (b, tsv)), tsv=tsv)
    if isinstance(entry, str):
        prefix = base / entry
        files = {lang: _with_compression(Path(f"{prefix}.{lang}")) for lang in (a, b)}
    elif isinstance(entry, dict) and set(entry) == {a, b}:
        files = {lang: base / str(entry[lang]) for lang in (a, b)}
    else:
        raise NmtError(
            f"{manifest}: corpus entry {shorten(repr(entry), 80)} for {a}-{b} must be a path prefix, "
            f"a mapping with exactly the keys {a} and {b}, or {{tsv: FILE}}"
        )
    for lang, file in files.items():
        if not file.is_file():
            raise NmtError(f"{manifest}: missing file {shorten(repr(str(file)), 200)} ({lang} side of {a}-{b})")
    return Corpus(((a, files[a]), (b, files[b])))


def _with_compression(path: Path) -> Path:
    """``path`` itself, or its compressed form when only that exists."""
    if path.is_file():
        return path
    for suffix in (".gz", ".xz", ".zst"):
        if path.with_name(path.name + suffix).is_file():
            return path.with_name(path.name + suffix)
    return path


def resolve_directions(spec: str, pairs: dict[str, PairData]) -> list[tuple[str, str]]:
    """Turn ``--pairs`` into a list of directions backed by data.

    ``all``: both directions of every pair found; ``to-en`` / ``from-en``: the
    directions into / out of English; otherwise a comma-separated list such as
    ``de_DE-en_XX,en_XX-de_DE``.
    """
    spec = spec.strip()
    unordered = {frozenset((p.src, p.tgt)) for p in pairs.values()}
    everything = []
    for p in pairs.values():
        everything += [(p.src, p.tgt), (p.tgt, p.src)]
    if spec == "all":
        directions = everything
    elif spec in ("to-en", "from-en"):
        english = langs.ENGLISH
        directions = [d for d in everything if (d[1] if spec == "to-en" else d[0]) == english]
        if not directions:
            raise NmtError(f"--pairs {spec}: no pair with {english} in the data")
    else:
        directions = []
        for item in spec.split(","):
            if not item.strip():
                continue
            direction = langs.parse_direction(item)
            if frozenset(direction) not in unordered:
                raise NmtError(
                    f"no data for direction {item.strip()}: the corpora found cover "
                    f"{', '.join(sorted(pairs))} (each usable in both directions)"
                )
            directions.append(direction)
        if not directions:
            raise NmtError("--pairs is empty: give directions such as de_DE-en_XX,en_XX-de_DE or 'all'")
    return sorted(set(directions), key=directions.index)


def pair_for(direction: tuple[str, str], pairs: dict[str, PairData]) -> PairData:
    a, b = direction
    return pairs.get(f"{a}-{b}") or pairs[f"{b}-{a}"]
