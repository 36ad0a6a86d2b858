#!/usr/bin/python3
"""Porter-stemmer fixture: words and their stems under NLTK's PorterStemmer() (NLTK_EXTENSIONS),
the stemmer rouge_score uses. Run with Debian's python3-nltk (3.8):

    /usr/bin/python3 tools/metrics-check/make_porter_fixture.py OUT.json FILE...

Words are every distinct [a-z]+ run (after lowercasing) in the given text files, plus the
examples of Porter's paper and NLTK's irregular forms; with --limit K a deterministic sample of
K of them (every irregular form and paper example kept) is written.
"""
import json
import random
import re
import sys

import nltk
from nltk.stem import porter

PAPER = """caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled
sized hopping tanned falling hissing fizzed failing filing happy sky relational conditional rational
valenci hesitanci digitizer conformabli radicalli differentli vileli analogousli vietnamization
predication operator feudalism decisiveness hopefulness callousness formaliti sensitiviti sensibiliti
triplicate formative formalize electriciti electrical hopeful goodness revival allowance inference
airliner gyroscopic adjustable defensible irritant replacement adjustment dependent adoption homologou
communism activate angulariti homologous effective bowdlerize probate rate cease controll roll
dying lying tying news innings inning outings outing cannings canning howe proceed exceed succeed
skies dies flies spied died enjoy generously geology theology archaeology fully hopefully ion
as is us be by a""".split()


def main():
    args = sys.argv[1:]
    limit = None
    if args[0] == "--limit":
        limit = int(args[1])
        args = args[2:]
    out, files = args[0], args[1:]
    words = set()
    for name in files:
        with open(name, encoding="utf-8", errors="ignore") as f:
            words.update(re.findall(r"[a-z]+", f.read().lower()))
    words = sorted(words)
    if limit is not None and len(words) > limit:
        words = sorted(random.Random(0).sample(words, limit))
    words = sorted(set(words) | set(PAPER))
    stemmer = porter.PorterStemmer()
    assert stemmer.mode == porter.PorterStemmer.NLTK_EXTENSIONS
    with open(out, "w") as f:
        json.dump({"nltk": nltk.__version__, "mode": stemmer.mode, "words": words,
                   "stems": [stemmer.stem(w) for w in words]}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{out}: {len(words)} words")


if __name__ == "__main__":
    main()
