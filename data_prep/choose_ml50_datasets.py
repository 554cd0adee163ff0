"""Write recipes/data/ml50.yaml: the corpora `nmt data get` downloads per ML50 pair.

The list is chosen from mtdata's own index by fixed rules, so it can be rebuilt
(and reviewed) when mtdata's index moves:

    MTDATA=/tmp/mtdata python data_prep/choose_ml50_datasets.py > recipes/data/ml50.yaml
    # to pin what a run of nmt data get downloaded (its provenance.json has every file's SHA-256):
    MTDATA=/tmp/mtdata python data_prep/choose_ml50_datasets.py --checksums-from OUT/provenance.json > ...

Rules, per language xx paired with English (ML50 uses WMT data up to 2019/2020,
IWSLT / TED talks, IITB, WAT ALT and FLORES where nothing else exists):

train  every one of these the index has: Europarl v10 (else v7), News Commentary
       v14, CommonCrawl (WMT13), Wiki Titles v2 (else v1), PMIndia (WMT19), IITB 1.5
       (hi), WAT ALT (my), Tilde RAPID 2019 (else 2016) for the WMT languages that
       had it (de, et, fi, lt, lv, pl), SETIMES2 for the WMT16 languages (ro, tr),
       IWSLT15 (vi), KFTT and JESC (ja), and the Neulab TED talks (ML50's TED58) or,
       where Neulab lacks the language, OPUS TED2020; a language with fewer than two
       corpora then gets OPUS QED, GlobalVoices and Tatoeba.
valid  the WMT newsdev of the latest WMT year up to 2020, else the newstest of the
       year before the test set, else IITB / WAT / IWSLT15 (tst2012) / Neulab TED dev,
       else the WMT Wikipedia dev sets (km, ps), else FLORES-200 dev.
test   the latest WMT newstest up to 2019 (from xx into English), else the WMT20
       newstest (ja, pl, ta, km, ps: their first WMT year; ML50 split newsdev2020 in two
       for ja, which mtdata cannot), else IITB / WAT / IWSLT15 (tst2013) / Neulab TED
       test, else FLORES-200 devtest.

WMT test sets are named two ways in mtdata's index: ``Statmt-newstest_deen-2019-deu-eng``
(2014 on) and ``Statmt-newstest-2013-eng-spa`` (2009-2013, English first); both count.

Never chosen: FLORES-101 entries (every one of them points at the Zulu dev file in
mtdata 0.5.1) and ``Statmt-books_wmt17`` / ``Statmt-dcep_wmt17`` (labelled Swedish,
but Latvian). Known defects of chosen entries are listed in README.md ("Get the data").

``https_hosts``: the hosts of chosen URLs that mtdata's own index reaches over https
somewhere (so the host serves https); their ``http://`` URLs are fetched over https.
``checksums``: only from ``--checksums-from`` (a provenance.json of nmt data get): a
list written without downloading anything pins nothing.
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
    (r"Statmt-wiki_titles-2-", r"Statmt-wiki_titles-1-"),
    (r"Statmt-pmindia-1-",),
    (r"IITB-hien_train-1\.5-",),
    (r"WAT-alt_train-2020-",),
    (r"StanfordNLP-iwslt15_train-1-",),
    (r"Phontron-kftt_train-1-",),
    (r"StanfordNLP-jesc_train-1-",),
    (r"Neulab-tedtalks_train-1-", r"OPUS-ted2020-v1-"),
]
# corpora of a WMT task, for the languages of that task only (the index has them for more)
TASK_RULES = {
    (r"Tilde-rapid-2019-", r"Tilde-rapid-2016-"): {"de", "et", "fi", "lt", "lv", "pl"},
    (r"OPUS-setimes-v2-",): {"ro", "tr"},
}
TRAIN_FALLBACK = [r"OPUS-qed-v2\.0a-", r"OPUS-globalvoices-v2018q4-", r"OPUS-tatoeba-v20230412-"]
DEV_FALLBACK = [r"IITB-hien_dev-1\.5-", r"WAT-alt_dev-2020-", r"StanfordNLP-test2012-1-", r"Neulab-tedtalks_dev-1-",
                r"Statmt-wikipedia_dev_", r"Flores-flores200_dev-1-"]
TEST_FALLBACK = [r"IITB-hien_test-1\.5-", r"WAT-alt_test-2020-", r"StanfordNLP-test2013-1-", r"Neulab-tedtalks_test-1-",
                 r"Flores-flores200_devtest-1-"]
# mislabelled in mtdata 0.5.1's index: Latvian text under a Swedish ID
NEVER = {"Statmt-books_wmt17-1-swe-eng", "Statmt-dcep_wmt17-1-swe-eng"}


def _pair_ids(all_ids, lang: langs.Language):
    """IDs of bitext between a language and English, either order, with or without a region.

    The macrolanguage code (``nep``) or FLORES-200's individual language (``npi``)."""
    codes = "|".join(sorted({lang.iso3, lang.flores.split("_")[0]}))
    lang = rf"({codes})(_[A-Za-z]+)?"
    pattern = re.compile(rf"-(({lang}-eng)|(eng-{lang}))$")
    return [i for i in all_ids if pattern.search(i) and i not in NEVER]


def _first(ids, prefixes):
    for prefix in prefixes:
        found = sorted(i for i in ids if re.match(prefix, i))
        if found:
            return found[-1]
    return None


def _newstest_years(ids, x2: str) -> dict:
    """Year -> WMT newstest ID for xx-English, from both of the index's naming schemes."""
    years = {}
    for i in sorted(ids):
        m = re.match(rf"Statmt-newstest_{x2}en-(\d{{4}})-", i) or re.match(r"Statmt-newstest-(\d{4})-", i)
        if m:
            years.setdefault(int(m.group(1)), i)
    return years


def choose(all_ids, lang: langs.Language) -> dict:
    ids = _pair_ids(all_ids, lang)
    x2 = lang.iso
    rules = TRAIN_RULES + [rule for rule, task in TASK_RULES.items() if x2 in task]
    train = [x for x in (_first(ids, rule) for rule in rules) if x]
    if len(train) < 2:
        train += [x for x in (_first(ids, [p]) for p in TRAIN_FALLBACK) if x]
    all_years = _newstest_years(ids, x2)
    years = {y: i for y, i in all_years.items() if y <= 2019} or {y: i for y, i in all_years.items() if y == 2020}
    test = years[max(years)] if years else _first(ids, TEST_FALLBACK)
    dev = None
    if years:
        newsdev = sorted(i for i in ids if re.match(rf"Statmt-newsdev_{x2}en-(\d{{4}})-", i)
                         and int(i.split("-")[2]) <= 2020)
        earlier = [y for y in all_years if y < max(years)]
        dev = newsdev[-1] if newsdev else (all_years[max(earlier)] if earlier else None)
    dev = dev or _first(ids, DEV_FALLBACK)
    return {"train": train, "valid": [dev] if dev else [], "test": [test] if test else []}


def https_hosts(index, chosen_ids) -> list[str]:
    """Hosts of the chosen entries' http:// URLs that the index reaches over https elsewhere."""
    from urllib.parse import urlparse

    secure = set()
    for entry in index.entries.values():
        for url in (entry.url if isinstance(entry.url, (list, tuple)) else [entry.url]):
            if url.startswith("https://"):
                secure.add(urlparse(url).hostname)
    plain = set()
    for did in chosen_ids:
        entry = index[did]
        for url in (entry.url if isinstance(entry.url, (list, tuple)) else [entry.url]):
            if url.startswith("http://"):
                plain.add(urlparse(url).hostname)
    return sorted(plain & secure)


def main() -> None:
    import argparse
    import json

    from mtdata.entry import DatasetId
    from mtdata.index import INDEX

    from mtdata import __version__ as mtdata_version

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checksums-from", help="provenance.json of an nmt data get run: pin its files' SHA-256")
    args = parser.parse_args()
    all_ids = sorted(str(did) for did in INDEX.entries)
    chosen = {code: choose(all_ids, langs.get(code)) for code in langs.MBART50_LANGS if code != langs.ENGLISH}
    ids = sorted({did for splits in chosen.values() for dids in splits.values() for did in dids})
    hosts = https_hosts(INDEX, [DatasetId.parse(did) for did in ids])
    pins = {}
    if args.checksums_from:
        record = json.loads(open(args.checksums_from, encoding="utf-8").read())
        pins = {f["url"]: f["sha256"] for info in record["datasets"].values() for f in info["sources"]}
    print(f"# The corpora `nmt data get` downloads for each ML50 language paired with English,\n"
          f"# chosen from mtdata {mtdata_version}'s index by the rules in data_prep/choose_ml50_datasets.py\n"
          "# (regenerate with that script; README.md \"Get the data\" lists known defects).\n")
    print("# http:// URLs on these hosts are fetched over https:// (the index reaches each of them over https\n"
          "# elsewhere); the other hosts of this list have no https URL in the index and stay http.")
    print(f"https_hosts: [{', '.join(hosts)}]\n")
    if pins:
        print(f"# SHA-256 of the files downloaded by the run recorded in {args.checksums_from}")
        print("checksums:")
        for url, digest in sorted(pins.items()):
            print(f"  {json.dumps(url)}: {digest}")
    else:
        print("# No checksums: this list was made where nothing could be downloaded. Pin the files of a run you\n"
              "# trust with --checksums-from OUT/provenance.json (nmt data get records every file's SHA-256).")
        print("checksums: {}")
    print("\npairs:")
    for code, splits in chosen.items():
        print(f"  {code}-{langs.ENGLISH}:")
        for split in ("train", "valid", "test"):
            print(f"    {split}: [{', '.join(splits[split])}]")


if __name__ == "__main__":
    main()
