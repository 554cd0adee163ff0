"""Write recipes/data/ml50.yaml: the corpora `nmt data get` downloads per ML50 pair.

The list is chosen from mtdata's own index by fixed rules, so it can be rebuilt
(and reviewed) when mtdata's index moves:

    MTDATA=/tmp/mtdata python data_prep/choose_ml50_datasets.py > recipes/data/ml50.yaml

Rules, per language xx paired with English (ML50 uses WMT data up to 2019/2020,
IWSLT / TED talks, IITB, WAT ALT and FLORES where nothing else exists):

train  every one of these the index has: Europarl v10 (else v7), News Commentary
       v14, CommonCrawl (WMT13), Wiki Titles v1, PMIndia (WMT19), IITB 1.5 (hi),
       WAT ALT (my), and the Neulab TED talks (ML50's TED58) or, where Neulab lacks
       the language, OPUS TED2020; a language with fewer than two corpora then gets
       OPUS QED, GlobalVoices and Tatoeba.
valid  the WMT newsdev of the latest WMT year up to 2020, else the newstest of the
       year before the test set, else IITB / WAT / Neulab TED dev, else the WMT
       Wikipedia dev sets (km, ps), else FLORES-200 dev.
test   the latest WMT newstest up to 2019 (from xx into English), else IITB / WAT /
       Neulab TED test, else FLORES-200 devtest.

Known defects of chosen entries are listed in README.md ("Get the data"); FLORES-101
entries are never used (every one of them points at the Zulu dev file in mtdata 0.5.1).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nmt import langs  # noqa: E402

TRAIN_RULES = [
    (r"Statmt-europarl-10-", r"Statmt-europarl-7-"),
    (r"Statmt-news_commentary-14-",),
    (r"Statmt-commoncrawl_wmt13-1-",),
    (r"Statmt-wiki_titles-1-",),
    (r"Statmt-pmindia-1-",),
    (r"IITB-hien_train-1\.5-",),
    (r"WAT-alt_train-2020-",),
    (r"Neulab-tedtalks_train-1-", r"OPUS-ted2020-v1-"),
]
TRAIN_FALLBACK = [r"OPUS-qed-v2\.0a-", r"OPUS-globalvoices-v2018q4-", r"OPUS-tatoeba-v20230412-"]
DEV_FALLBACK = [r"IITB-hien_dev-1\.5-", r"WAT-alt_dev-2020-", r"Neulab-tedtalks_dev-1-", r"Statmt-wikipedia_dev_",
                r"Flores-flores200_dev-1-"]
TEST_FALLBACK = [r"IITB-hien_test-1\.5-", r"WAT-alt_test-2020-", r"Neulab-tedtalks_test-1-",
                 r"Flores-flores200_devtest-1-"]


def _pair_ids(all_ids, lang: langs.Language):
    """IDs of bitext between a language and English, either order, with or without a region.

    The macrolanguage code (``nep``) or FLORES-200's individual language (``npi``)."""
    codes = "|".join(sorted({lang.iso3, lang.flores.split("_")[0]}))
    lang = rf"({codes})(_[A-Za-z]+)?"
    pattern = re.compile(rf"-(({lang}-eng)|(eng-{lang}))$")
    return [i for i in all_ids if pattern.search(i)]


def _first(ids, prefixes):
    for prefix in prefixes:
        found = sorted(i for i in ids if re.match(prefix, i))
        if found:
            return found[-1]
    return None


def choose(all_ids, lang: langs.Language) -> dict:
    ids = _pair_ids(all_ids, lang)
    train = [x for x in (_first(ids, rule) for rule in TRAIN_RULES) if x]
    if len(train) < 2:
        train += [x for x in (_first(ids, [p]) for p in TRAIN_FALLBACK) if x]
    x2 = lang.iso
    years = {}
    for i in ids:
        m = re.match(rf"Statmt-newstest_{x2}en-(\d{{4}})-", i)
        if m and int(m.group(1)) <= 2019:
            years[int(m.group(1))] = i
    test = years[max(years)] if years else _first(ids, TEST_FALLBACK)
    dev = None
    if years:
        newsdev = sorted(i for i in ids if re.match(rf"Statmt-newsdev_{x2}en-(\d{{4}})-", i)
                         and int(i.split("-")[2]) <= 2020)
        earlier = [y for y in years if y < max(years)]
        dev = newsdev[-1] if newsdev else (years[max(earlier)] if earlier else None)
    dev = dev or _first(ids, DEV_FALLBACK)
    return {"train": train, "valid": [dev] if dev else [], "test": [test] if test else []}


def main() -> None:
    from mtdata.index import INDEX

    from mtdata import __version__ as mtdata_version

    all_ids = sorted(str(did) for did in INDEX.entries)
    print(f"# The corpora `nmt data get` downloads for each ML50 language paired with English,\n"
          f"# chosen from mtdata {mtdata_version}'s index by the rules in data_prep/choose_ml50_datasets.py\n"
          "# (regenerate with that script; README.md \"Get the data\" lists known defects).\n")
    print("pairs:")
    for code in langs.MBART50_LANGS:
        if code == langs.ENGLISH:
            continue
        chosen = choose(all_ids, langs.get(code))
        print(f"  {code}-{langs.ENGLISH}:")
        for split in ("train", "valid", "test"):
            print(f"    {split}: [{', '.join(chosen[split])}]")


if __name__ == "__main__":
    main()
