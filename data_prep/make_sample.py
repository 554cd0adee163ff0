"""Rebuild the embedded sample (data_prep/sample/) from the shared data.

    python data_prep/make_sample.py --shared ../shared/data

Deterministic: the same shared data gives the same sample. The sample keeps
short sentence pairs (English side <= 12 words, mostly Tatoeba), so that a
tiny model learns something visible on 2 CPU cores within minutes; Korean is
kept small on purpose to stand for a low-resource direction.
"""
import argparse
import random
import shutil
from pathlib import Path

SIZES = {"de_DE": 3000, "ru_RU": 3000, "ja_XX": 3000, "ko_KR": 800}  # training pairs
TEST = 200  # in-domain test pairs per language
FLORES = {"en_XX": "eng_Latn", "de_DE": "deu_Latn", "ru_RU": "rus_Cyrl", "ja_XX": "jpn_Jpan",
          "ko_KR": "kor_Hang"}
# romanization: a few FLORES-200 devtest lines per script, with what the pinned uroman makes of them
ROMANIZE_LANGS = ("ar_AR", "bn_IN", "hi_IN", "ja_XX", "ko_KR", "ru_RU", "uk_UA", "zh_CN", "he_IL", "fa_IR")
ROMANIZE_LINES = (7, 299, 635)  # short sentences, 1-based


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared/data")
    parser.add_argument("--out", default=str(Path(__file__).parent / "sample"))
    args = parser.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    raw = out / "ml50" / "raw"
    shutil.rmtree(out / "ml50", ignore_errors=True)
    raw.mkdir(parents=True)
    for lang, size in SIZES.items():
        base = shared / "ml50-mini" / "raw" / f"train.{lang}-en_XX"
        xx = Path(f"{base}.{lang}").read_text(encoding="utf-8").splitlines()
        en = Path(f"{base}.en_XX").read_text(encoding="utf-8").splitlines()
        short = [i for i, e in enumerate(en) if len(e.split()) <= 12 and xx[i].strip()]
        chosen = random.Random(f"sample:{lang}").sample(short, size + TEST)
        for split, ids in (("train", chosen[:size]), ("test", chosen[size:])):
            for side, lines in ((lang, xx), ("en_XX", en)):
                path = raw / f"{split}.{lang}-en_XX.{side}"
                path.write_text("".join(lines[i] + "\n" for i in ids), encoding="utf-8")
    flores = out / "flores200" / "devtest"
    shutil.rmtree(flores, ignore_errors=True)
    flores.mkdir(parents=True)
    for code in FLORES.values():
        shutil.copyfile(shared / "flores200" / "devtest" / f"{code}.devtest", flores / f"{code}.devtest")
    write_romanized(shared, out / "romanize")
    print(f"wrote {out}")


def write_romanized(shared: Path, out: Path) -> None:
    """``uroman-VERSION.tsv``: language, FLORES line number, the line (normalised), its romanization."""
    from nmt import langs, romanize
    from nmt.data.clean import normalize

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rows = []
    for lang in ROMANIZE_LANGS:
        flores = shared / "flores200" / "devtest" / f"{langs.get(lang).flores}.devtest"
        lines = flores.read_text(encoding="utf-8").splitlines()
        for number in ROMANIZE_LINES:
            text = normalize(lines[number - 1])
            rows.append(f"{lang}\t{number}\t{text}\t{romanize.romanize(text, lang)}\n")
    (out / f"uroman-{romanize.version()}.tsv").write_text("".join(rows), encoding="utf-8")


if __name__ == "__main__":
    main()
