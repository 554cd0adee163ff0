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
    synthetic:                               # machine-made corpora, each for ONE direction
      bn_IN-en_XX:                           # the direction it trains (source-target)
        - corpus: bt/news.bn_IN-en_XX        # any corpus form above
          kind: back-translation             # source side machine-made: tagged (default)
      de_DE-en_XX:
        - corpus: {tsv: distill/de-en.tsv}
          kind: forward-translation          # target side machine-made (distillation): not tagged
          replace_real: true                 # train this direction on these pairs only
    synthetic_ratio: 1.0                     # optional: at most this many synthetic pairs per real pair

Synthetic corpora (tagged back-translation, Caswell et al. 2019; sequence-level
distillation) train only their direction. A tagged corpus gets the reserved
token :data:`BT_TAG` in front of its source side when it is binarized; the tag is
in the dictionary and the model bundle, and translation never outputs it.
``tag: true|false`` overrides the kind's default; ``replace_real: true`` trains the
direction on its synthetic corpora alone (a distilled student), the real pairs
still giving its validation split. A manifest with only
``synthetic:`` may be combined with ``--raw`` directories for the real data.

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
BT_TAG = "<BT>"  # the reserved source-side tag of tagged synthetic corpora
SYNTHETIC_KINDS = {"back-translation": True, "forward-translation": False}  # kind -> tagged by default
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
    synthetic: bool = False  # machine-made data for the direction src -> tgt only
    kind: str | None = None  # back-translation | forward-translation (synthetic data)
    tag: bool = False  # BT_TAG in front of the source side
    replace_real: bool = False  # the direction trains on the synthetic corpora alone

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"

    @property
    def key(self) -> str:
        """Unique among a run's corpora: a pair and a synthetic direction may share a name."""
        return f"synthetic.{self.name}" if self.synthetic else self.name


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


def load_manifest(path, need_pairs: bool = True) -> dict[str, PairData]:
    """The real corpora of a manifest's ``pairs:`` (see :func:`load_synthetic` for the rest)."""
    path = Path(path)
    if need_pairs:
        spec = read_pairs_yaml(path, "manifest", "pairs: {de_DE-en_XX: {train: [...]}}")
    else:
        spec = _read_manifest(path)
        if "pairs" not in spec:
            return {}
        if not isinstance(spec["pairs"], dict):
            raise NmtError(f"{path}: 'pairs:' must be a mapping of pairs, e.g. pairs: {{de_DE-en_XX: {{train: [...]}}}}")
    base = path.parent
    pairs = {}
    for name, splits in spec["pairs"].items():
        a, b = langs.parse_direction(str(name))
        if not isinstance(splits, dict) or "train" not in splits:
            raise NmtError(f"{path}: pair {name} needs a 'train:' list of corpora")
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise NmtError(f"{path}: pair {name} has unknown key(s) {sorted(unknown)}; use {', '.join(SPLITS)} "
                           "(synthetic corpora go in a top-level 'synthetic:' mapping, by direction)")
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
    if not pairs and need_pairs:
        raise NmtError(f"{path}: the manifest lists no pairs")
    return pairs


_TOP_KEYS = {"pairs", "synthetic", "synthetic_ratio"}


def _read_manifest(path: Path) -> dict:
    spec = read_yaml(path, "manifest")
    if not isinstance(spec, dict) or not (set(spec) & {"pairs", "synthetic"}):
        raise NmtError(f"{path}: a manifest needs a 'pairs:' mapping (real corpora) and/or a 'synthetic:' "
                       "mapping (machine-made corpora by direction)")
    unknown = set(spec) - _TOP_KEYS
    if unknown:
        raise NmtError(f"{path}: unknown top-level key(s) {sorted(map(str, unknown))}; use {', '.join(sorted(_TOP_KEYS))}")
    return spec


def load_synthetic(path) -> tuple[dict[str, PairData], float | None]:
    """A manifest's ``synthetic:`` corpora, one :class:`PairData` per direction, and its ``synthetic_ratio``."""
    path = Path(path)
    spec = _read_manifest(path)
    ratio = spec.get("synthetic_ratio")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0
                              or ratio == float("inf")):
        raise NmtError(f"{path}: synthetic_ratio must be a positive number (synthetic pairs per real pair), "
                       f"not {shorten(repr(ratio), 40)}")
    section = spec.get("synthetic") or {}
    if not isinstance(section, dict):
        raise NmtError(f"{path}: 'synthetic:' must map directions to lists of corpora, e.g. "
                       "synthetic: {bn_IN-en_XX: [{corpus: bt/mono, kind: back-translation}]}")
    out = {}
    for name, entries in section.items():
        a, b = langs.parse_direction(str(name))
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list) or not entries:
            raise NmtError(f"{path}: synthetic {name}: expected a list of {{corpus: ..., kind: ...}} entries")
        kinds = set()
        data = PairData(a, b, synthetic=True)
        for entry in entries:
            if not isinstance(entry, dict) or "corpus" not in entry or set(entry) - {"corpus", "kind", "tag",
                                                                                    "replace_real"}:
                raise NmtError(f"{path}: synthetic {name}: entry {shorten(repr(entry), 80)} must be a mapping "
                               "with 'corpus:' and optional 'kind:' (back-translation | forward-translation), "
                               "'tag:' and 'replace_real:' (true | false)")
            kind = entry.get("kind", "back-translation")
            if kind not in SYNTHETIC_KINDS:
                raise NmtError(f"{path}: synthetic {name}: kind {shorten(repr(kind), 40)} is not one of "
                               f"{', '.join(SYNTHETIC_KINDS)}")
            tag = entry.get("tag", SYNTHETIC_KINDS[kind])
            if not isinstance(tag, bool):
                raise NmtError(f"{path}: synthetic {name}: tag must be true or false, not {shorten(repr(tag), 40)}")
            replace = entry.get("replace_real", False)
            if not isinstance(replace, bool):
                raise NmtError(f"{path}: synthetic {name}: replace_real must be true or false, not "
                               f"{shorten(repr(replace), 40)}")
            kinds.add((kind, tag, replace))
            data.splits["train"].append(_manifest_corpus(entry["corpus"], a, b, path.parent, path))
        if len(kinds) > 1:
            raise NmtError(f"{path}: synthetic {name} mixes kinds or tag / replace_real settings {sorted(kinds)}; "
                           "one direction's synthetic corpora share them")
        (data.kind, data.tag, data.replace_real), = kinds
        out[f"{a}-{b}"] = data
    return out, (float(ratio) if ratio is not None else None)


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
