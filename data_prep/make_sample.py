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
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
