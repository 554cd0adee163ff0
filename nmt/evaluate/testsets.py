"""Test sets: where the source and reference lines of a direction come from.

Three kinds, all ending in the same ``TestSet`` (line-aligned source and
reference, the 1-based line numbers used, the files and their SHA-256):

``flores200``
    A FLORES-200 directory holding ``{flores_code}.devtest`` (or ``.dev``)
    files, e.g. ``data_prep/sample/flores200/devtest``. The FLORES code of an
    ML50 language comes from ``nmt.langs``. Any two languages make a direction.
``ml50``
    An ML50 raw directory (``test.de_DE-en_XX.de_DE`` ...): the held-out split
    of the training data, in both directions of each pair.
``files``
    Plain line-aligned files: ``--src``/``--ref`` are file names (one
    direction) or patterns with ``{src}``, ``{tgt}`` (ML50 codes), ``{src_iso}``,
    ``{tgt_iso}`` (``de``, ``en``) or ``{src_flores}``, ``{tgt_flores}``
    placeholders, e.g. ``wmt/newstest2021.{src_iso}-{tgt_iso}.{tgt_iso}``.

Line ranges (``--lines 1-500`` or ``1-100,301-400``) select lines of every
test file, 1-based and inclusive; the report records them because FLORES has
no public dev split here and a score on "FLORES" means nothing without them.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from nmt import langs
from nmt.errors import NmtError
from nmt.fileio import read_lines, sha256_file

KINDS = ("flores200", "ml50", "files")
DEFAULT_FLORES_DIR = Path(__file__).resolve().parents[2] / "data_prep" / "sample" / "flores200" / "devtest"


# -- line ranges -------------------------------------------------------------
@dataclass(frozen=True)
class LineRange:
    """1-based inclusive ranges; ``None`` spans mean "to the end"."""

    spans: tuple = ()  # ((first, last|None), ...); empty = every line

    @classmethod
    def parse(cls, text: str | None) -> "LineRange":
        if not text or text.strip() in ("", "all"):
            return cls()
        spans = []
        for part in text.split(","):
            match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d*)\s*)?", part)
            if not match:
                raise NmtError(f"bad --lines {text!r}: write ranges like 1-500 or 1-100,301-400 (1-based, inclusive)")
            first = int(match.group(1))
            last = first if match.group(2) is None else (int(match.group(2)) if match.group(2) else None)
            if first < 1 or (last is not None and last < first):
                raise NmtError(f"bad --lines range {part.strip()!r}: lines count from 1 and a range must not be "
                               "backwards")
            spans.append((first, last))
        ordered = sorted(spans, key=lambda s: s[0])
        for (a0, a1), (b0, _) in zip(ordered, ordered[1:]):
            if a1 is None or b0 <= a1:
                raise NmtError(f"bad --lines {text!r}: ranges overlap")
        return cls(tuple(ordered))

    def indices(self, n_lines: int, what: str = "the test file") -> list[int]:
        """0-based indices of the selected lines of a file of ``n_lines`` lines."""
        if not self.spans:
            return list(range(n_lines))
        out = []
        for first, last in self.spans:
            last = n_lines if last is None else last
            if last > n_lines:
                raise NmtError(f"--lines {self.describe()} goes past the end of {what} ({n_lines} lines)")
            out.extend(range(first - 1, last))
        return out

    def describe(self, n_lines: int | None = None) -> str:
        if not self.spans:
            return f"1-{n_lines}" if n_lines else "all"
        parts = []
        for first, last in self.spans:
            end = last if last is not None else (n_lines if n_lines is not None else "")
            parts.append(str(first) if end == first else f"{first}-{end}")
        return ",".join(parts)


# -- test sets ---------------------------------------------------------------
@dataclass
class TestSet:
    name: str  # e.g. flores200-devtest, ml50-test, newstest2021
    src_lang: str
    tgt_lang: str
    src_file: Path
    ref_file: Path
    lines: LineRange
    src: list = field(default_factory=list)  # selected source lines
    ref: list = field(default_factory=list)  # selected reference lines
    indices: list = field(default_factory=list)  # 0-based line indices in the files
    total_lines: int = 0

    __test__ = False  # not a pytest class

    @property
    def direction(self) -> str:
        return f"{self.src_lang}-{self.tgt_lang}"

    @property
    def lines_text(self) -> str:
        return self.lines.describe(self.total_lines)

    def describe(self) -> dict:
        return {"name": self.name, "src_file": str(self.src_file), "ref_file": str(self.ref_file),
                "lines": self.lines_text, "n_lines": len(self.indices), "total_lines": self.total_lines,
                "src_sha256": sha256_file(self.src_file), "ref_sha256": sha256_file(self.ref_file)}


def _read(path: Path) -> list[str]:
    lines, _ = read_lines(path)
    return lines  # type: ignore[return-value]


def load_pair(name: str, src_lang: str, tgt_lang: str, src_file: Path, ref_file: Path, lines: LineRange) -> TestSet:
    """Read a line-aligned source/reference pair and select ``lines``."""
    src_all, ref_all = _read(src_file), _read(ref_file)
    if len(src_all) != len(ref_all):
        raise NmtError(f"test set {name} {src_lang}-{tgt_lang}: {src_file} has {len(src_all)} lines but "
                       f"{ref_file} has {len(ref_all)}; source and reference must be line-aligned")
    if not src_all:
        raise NmtError(f"test set {name} {src_lang}-{tgt_lang}: {src_file} is empty")
    idx = lines.indices(len(src_all), str(src_file))
    return TestSet(name, src_lang, tgt_lang, Path(src_file), Path(ref_file), lines,
                   [src_all[i] for i in idx], [ref_all[i] for i in idx], idx, len(src_all))


def testset_source(kind: str | None = None, lines: str | None = None, flores_dir=None, ml50_dir=None,
                   split: str = "test", src: str | None = None, ref: str | None = None,
                   name: str | None = None) -> "TestSetSource":
    """The test set of ``nmt evaluate``: ``kind`` flores200 | ml50 | files (default: files with
    ``src``/``ref``, ml50 with ``ml50_dir``, else flores200); ``lines``: 1-based ranges (``1-500``)."""
    kind = kind or ("files" if (src or ref) else "ml50" if ml50_dir else "flores200")
    if (src or ref) and kind != "files":
        raise NmtError(f"--src/--ref give a plain-file test set; they cannot be combined with --testset {kind}")
    return TestSetSource(kind, LineRange.parse(lines), flores_dir=flores_dir, ml50_dir=ml50_dir, split=split,
                         src_pattern=src, ref_pattern=ref, name=name)


class TestSetSource:
    """Finds the files of a test set per direction; ``load`` reads and selects lines."""

    __test__ = False

    def __init__(self, kind: str, lines: LineRange, flores_dir=None, ml50_dir=None, split: str = "test",
                 src_pattern: str | None = None, ref_pattern: str | None = None, name: str | None = None):
        if kind not in KINDS:
            raise NmtError(f"unknown test set {kind!r}; choose one of {', '.join(KINDS)}")
        self.kind, self.lines, self.split = kind, lines, split
        self.src_pattern, self.ref_pattern = src_pattern, ref_pattern
        if kind == "flores200":
            self.dir = Path(flores_dir) if flores_dir else DEFAULT_FLORES_DIR
            if not self.dir.is_dir():
                raise NmtError(f"FLORES-200 directory {self.dir} does not exist; pass --flores-dir DIR "
                               "(a directory of {flores_code}.devtest files)")
            self.suffix = next((s for s in ("devtest", "dev") if any(self.dir.glob(f"*_*.{s}"))), None)
            if self.suffix is None:
                raise NmtError(f"{self.dir} holds no FLORES-200 files ({{flores_code}}.devtest or .dev, "
                               "e.g. deu_Latn.devtest)")
            self.name = name or f"flores200-{self.suffix}"
        elif kind == "ml50":
            if not ml50_dir:
                raise NmtError("--testset ml50 needs --ml50-dir (an ML50 raw directory with test.xx_XX-en_XX.* files)")
            self.dir = Path(ml50_dir)
            if not self.dir.is_dir():
                raise NmtError(f"ML50 directory {self.dir} does not exist")
            self.name = name or f"ml50-{split}"
        else:
            if not src_pattern or not ref_pattern:
                raise NmtError("plain-file test sets need both --src and --ref")
            self.dir = None
            self.name = name or "files"

    @property
    def is_pattern(self) -> bool:
        return self.kind == "files" and "{" in (self.src_pattern or "") + (self.ref_pattern or "")

    def files(self, src: str, tgt: str) -> tuple[Path, Path] | None:
        """The (source, reference) files of a direction, or None when the set lacks it."""
        if self.kind == "flores200":
            pair = (self.dir / f"{langs.get(src).flores}.{self.suffix}", self.dir / f"{langs.get(tgt).flores}.{self.suffix}")
        elif self.kind == "ml50":
            pair = None
            for name in (f"{src}-{tgt}", f"{tgt}-{src}"):
                candidate = (self.dir / f"{self.split}.{name}.{src}", self.dir / f"{self.split}.{name}.{tgt}")
                if candidate[0].is_file() and candidate[1].is_file():
                    pair = candidate
                    break
            if pair is None:
                return None
        else:
            pair = (Path(_fill(self.src_pattern, src, tgt)), Path(_fill(self.ref_pattern, src, tgt)))
        return pair if pair[0].is_file() and pair[1].is_file() else None

    def available(self, candidates) -> list[tuple[str, str]]:
        return [(s, t) for s, t in candidates if self.files(s, t)]

    def load(self, src: str, tgt: str) -> TestSet:
        pair = self.files(src, tgt)
        if pair is None:
            raise NmtError(f"test set {self.name} has no {src}-{tgt} files ({self.expected(src, tgt)})")
        return load_pair(self.name, src, tgt, pair[0], pair[1], self.lines)

    def expected(self, src: str, tgt: str) -> str:
        if self.kind == "flores200":
            return (f"expected {self.dir}/{langs.get(src).flores}.{self.suffix} and "
                    f"{langs.get(tgt).flores}.{self.suffix}")
        if self.kind == "ml50":
            return f"expected {self.dir}/{self.split}.{src}-{tgt}.{{{src},{tgt}}} or {self.split}.{tgt}-{src}.*"
        return f"expected {_fill(self.src_pattern, src, tgt)} and {_fill(self.ref_pattern, src, tgt)}"

    def describe(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "lines": self.lines.describe()}
        if self.dir is not None:
            out["dir"] = str(self.dir)
        if self.kind == "ml50":
            out["split"] = self.split
        if self.kind == "files":
            out.update(src=self.src_pattern, ref=self.ref_pattern)
        return out


def _fill(pattern: str, src: str, tgt: str) -> str:
    s, t = langs.get(src), langs.get(tgt)
    try:
        return pattern.format(src=src, tgt=tgt, src_iso=s.iso, tgt_iso=t.iso, src_flores=s.flores,
                              tgt_flores=t.flores)
    except (KeyError, IndexError, ValueError) as exc:
        raise NmtError(f"bad file pattern {pattern!r} ({exc}); placeholders are {{src}} {{tgt}} {{src_iso}} "
                       "{tgt_iso} {src_flores} {tgt_flores}") from None


def all_pairs(codes) -> list[tuple[str, str]]:
    return [(a, b) for a, b in itertools.permutations(codes, 2)]
