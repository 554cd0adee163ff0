"""A prepared-data directory as ``nmt train`` and ``nmt pretrain`` read it.

``nmt prepare`` writes ``manifest.json`` at the top of its output directory;
``PreparedData.load`` reads it back, checks that the directory is finished and
of this nmt's format, and gives the fields training needs typed, with the file
paths of the directory's layout (``clean/``, ``spm/``, ``bin/``). The
manifest as written stays available as ``raw`` (the data report prints more
of it).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from nmt import langs
from nmt.data import DEFAULT_NORMALIZATION
from nmt.data.stages import stage_fingerprint
from nmt.errors import NmtError
from nmt.romanize import Romanization

FORMAT_VERSION = 1  # of manifest.json and the stage layout; nmt prepare --force rewrites older ones


@dataclass(frozen=True)
class DirectionData:
    """One prepared direction: the pair whose text it uses (``de_DE-en_XX`` serves both ways) and line counts."""

    data: str
    train: int
    valid: int
    test: int

    def to_dict(self) -> dict:
        return {"data": self.data, "train": self.train, "valid": self.valid, "test": self.test}


@dataclass(frozen=True)
class PreparedData:
    path: Path
    languages: list  # in language-token order
    lang_tok_style: str
    directions: dict  # "src-tgt" -> DirectionData
    pairs: list  # pair names whose text was cleaned ("de_DE-en_XX", ...)
    normalization: str  # the Unicode normalization nmt prepare applied (what translation must apply too)
    shards: int
    raw: dict  # manifest.json as written
    tags: tuple = ()  # reserved source-side tags in the dictionary (tagged synthetic data)
    romanization: Romanization = Romanization()  # languages whose text nmt prepare romanized

    @classmethod
    def load(cls, data: str | os.PathLike) -> "PreparedData":
        """Read a prepared-data directory's manifest, with a clear error when it is not one."""
        return cls.from_dict(load_prepared(data), data)

    @classmethod
    def from_dict(cls, manifest: dict, data: str | os.PathLike) -> "PreparedData":
        where = Path(data) / "manifest.json"
        try:
            directions = {str(name): DirectionData(data=str(info["data"]), train=int(info["train"]),
                                                   valid=int(info["valid"]), test=int(info["test"]))
                          for name, info in manifest["directions"].items()}
            filters = (manifest.get("settings") or {}).get("filters") or {}
            prepared = cls(path=Path(data), languages=[str(x) for x in manifest["languages"]],
                           lang_tok_style=str(manifest["lang_tok_style"]), directions=directions,
                           pairs=[str(x) for x in manifest["pairs"]],
                           normalization=str(filters.get("normalization") or DEFAULT_NORMALIZATION),
                           shards=int(manifest.get("shards", 1)), raw=manifest,
                           tags=tuple(str(x) for x in manifest.get("tags", [])),
                           romanization=Romanization.from_record(manifest.get("romanization"), str(where)))
        except KeyError as exc:
            raise NmtError(f"{where} lacks {exc}; the prepared data is incomplete: run nmt prepare --force") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise NmtError(f"{where} has a malformed entry ({exc}); run nmt prepare --force") from None
        langs.check_codes(prepared.languages)
        for name in prepared.directions:
            langs.parse_direction(name)
        return prepared

    # -- the directory's layout ------------------------------------------------
    @property
    def spm_model(self) -> Path:
        return self.path / "spm" / "spm.model"

    @property
    def dictionary(self) -> Path:
        return self.path / "bin" / "dict.txt"

    @property
    def lang_dict(self) -> Path:
        return self.path / "bin" / "lang_dict.txt"

    def clean_file(self, split: str, pair: str, lang: str) -> Path:
        """Cleaned text of one side of a pair: ``clean/{split}.{pair}.{lang}``."""
        return self.path / "clean" / f"{split}.{pair}.{lang}"

    def fingerprint(self) -> str:
        """The fingerprint of the final (bin) stage: changes whenever anything the data is made of changes."""
        return stage_fingerprint(self.path / "bin")


def load_prepared(data: str | os.PathLike) -> dict:
    """A prepared-data directory's ``manifest.json`` as written, after checking the directory is finished."""
    data = Path(data)
    path = data / "manifest.json"
    if not path.is_file() or not (data / "bin" / "stage.json").is_file():
        raise NmtError(f"{data} is not a finished prepared-data directory (no manifest.json / bin); "
                       "run nmt prepare first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise NmtError(f"{path} is not valid JSON ({exc}); run nmt prepare --force") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise NmtError(f"{data} was prepared by another nmt version (format "
                       f"{found}, need {FORMAT_VERSION}); run nmt prepare --force")
    return manifest
