#!/usr/bin/env python3
"""Compares `growlm metrics` with the Python references on the corpora of cases.json.

Needs (not installed on the development machine): sacrebleu 2.6, rouge_score 0.1.2, nltk,
evaluate (with its "bleu", "rouge" and "sari" metric scripts reachable or cached), easse 0.2.4;
and node with this repository's dependencies. Run from the repository root:

    python3 tools/metrics-check/check_against_python.py [--cases tools/metrics-check/cases.json]

Every number growlm prints is compared with the library's to 1e-6 (absolute). evaluate's
aggregated ROUGE is a bootstrap estimate, so ROUGE is compared per example
(use_aggregator=False) and growlm's mean against the mean of evaluate's per-example values.
Exits 1 if anything differs.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import evaluate
import numpy as np
import sacrebleu
from easse.sari import corpus_sari, get_corpus_sari_operation_scores
from rouge_score import rouge_scorer

TOL = 1e-6
ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def growlm(corpus, metrics, extra=()):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for i, prediction in enumerate(corpus["predictions"]):
            row = {"prediction": prediction, "references": corpus["references"][i]}
            if "sources" in corpus:
                row["source"] = corpus["sources"][i]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        name = f.name
    try:
        cmd = ["npx", "tsx", "src/cli/index.ts", "metrics", "--input", name, "--metric", ",".join(metrics), *extra]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out)
    finally:
        os.unlink(name)


class Checker:
    def __init__(self):
        self.failures = 0
        self.checked = 0

    def close(self, where, ours, theirs):
        if isinstance(theirs, (list, tuple)):
            if len(ours) != len(theirs):
                self.fail(where, ours, theirs)
                return
            for i, (a, b) in enumerate(zip(ours, theirs)):
                self.close(f"{where}[{i}]", a, b)
            return
        self.checked += 1
        if not (math.isfinite(ours) and abs(float(ours) - float(theirs)) <= TOL):
            self.fail(where, ours, theirs)

    def fail(self, where, ours, theirs):
        self.failures += 1
        print(f"MISMATCH {where}: growlm {ours!r} vs python {theirs!r}")


def streams(references):
    """Per-segment reference lists -> sacreBLEU's reference streams, None-padded."""
    width = max(len(r) for r in references)
    return [[r[k] if k < len(r) else None for r in references] for k in range(width)]


def check_corpus(corpus, check):
    name = corpus["name"]
    preds, refs = corpus["predictions"], corpus["references"]
    has_sources = "sources" in corpus
    metrics = ["bleu", "sacrebleu", "sentence_bleu"] + (["sari", "easse_sari"] if has_sources else [])
    ours = growlm(corpus, metrics)

    try:
        hf = evaluate.load("bleu").compute(predictions=preds, references=refs)
        for key in ["bleu", "precisions", "brevity_penalty", "length_ratio", "translation_length", "reference_length"]:
            check.close(f"{name}.bleu.{key}", ours["bleu"][key], hf[key])
    except ZeroDivisionError:
        print(f"note {name}.bleu: evaluate raised ZeroDivisionError (zero length); growlm gives {ours['bleu']['bleu']}")

    sb = sacrebleu.corpus_bleu(preds, streams(refs))
    for key, value in [("score", sb.score), ("counts", sb.counts), ("totals", sb.totals), ("precisions", sb.precisions),
                       ("bp", sb.bp), ("sys_len", sb.sys_len), ("ref_len", sb.ref_len)]:
        check.close(f"{name}.sacrebleu.{key}", ours["sacrebleu"][key], value)
    check.close(f"{name}.sentence_bleu", ours["sentence_bleu"]["scores"],
                [sacrebleu.sentence_bleu(p, r).score for p, r in zip(preds, refs)])

    for stem in (False, True):
        extra = ["--use_aggregator", "false"] + (["--use_stemmer"] if stem else [])
        per = growlm(corpus, ["rouge"], extra)["rouge"]
        mean = growlm(corpus, ["rouge"], ["--use_stemmer"] if stem else [])["rouge"]
        scorer = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=stem)
        direct = [scorer.score_multi(r, p) for p, r in zip(preds, refs)]
        hf = evaluate.load("rouge").compute(predictions=preds, references=refs, use_stemmer=stem, use_aggregator=False)
        for t in ROUGE_TYPES:
            check.close(f"{name}.rouge(stem={stem}).{t}", per[t], [d[t].fmeasure for d in direct])
            check.close(f"{name}.rouge(stem={stem}).{t} evaluate", per[t], hf[t])
            check.close(f"{name}.rouge(stem={stem}).{t} mean", mean[t], float(np.mean(hf[t])))

    if has_sources:
        srcs = corpus["sources"]
        hf = evaluate.load("sari").compute(sources=srcs, predictions=preds, references=refs)
        check.close(f"{name}.sari", ours["sari"]["sari"], hf["sari"])
        if len({len(r) for r in refs}) == 1:
            refs_sents = [list(col) for col in zip(*refs)]
            add, keep, dele = get_corpus_sari_operation_scores(srcs, preds, refs_sents)
            check.close(f"{name}.easse_sari", ours["easse_sari"]["sari"], corpus_sari(srcs, preds, refs_sents))
            check.close(f"{name}.easse_sari.add/keep/del", [ours["easse_sari"][k] for k in ("add", "keep", "del")], [add, keep, dele])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=os.path.join(os.path.dirname(__file__), "cases.json"))
    args = parser.parse_args()
    with open(args.cases, encoding="utf-8") as f:
        corpora = json.load(f)
    check = Checker()
    for corpus in corpora:
        check_corpus(corpus, check)
    print(f"{check.checked} values compared, {check.failures} mismatches (tolerance {TOL})")
    sys.exit(1 if check.failures else 0)


if __name__ == "__main__":
    main()
