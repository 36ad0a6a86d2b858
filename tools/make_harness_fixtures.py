"""Reference fixtures for growlm's benchmark harness, computed by lm-evaluation-harness 0.4.13 itself.

Runs lm-eval's own simple_evaluate (task YAMLs, ConfigurableTask prompts, few-shot samplers,
process_results, aggregation and groups) on the small documents in
test/fixtures/harness/data with a fake language model whose answers are a pure function of
the request strings (fake_loglikelihood below, reproduced in test/eval/harness.test.ts), and
writes what growlm must reproduce to test/fixtures/harness/lm_eval_runs.json. It also writes
CPython `random` draws (python_random.json) and Python `str` results (python_str.json).

Usage (Debian's python3 with python3-jinja2, python3-yaml, python3-numpy, python3-tqdm and
python3-requests; lm_eval from its 0.4.13 wheel, unzipped):

    mkdir -p /tmp/lmeval && cd /tmp/lmeval && unzip -o lm_eval-0.4.13-py3-none-any.whl
    /usr/bin/python3 tools/make_harness_fixtures.py --lm_eval /tmp/lmeval

Modules lm-eval imports but that play no part in these runs are replaced by stand-ins:
`datasets` (only its Dataset container: a list with `features` and `map`, as lm-eval uses
them; the data are read from the local JSONL files), `sacrebleu`, `dill` and `pandas`
(generation metrics, request caching, the W&B logger), lm_eval.result_schema (type
declarations only) and typing_extensions.deprecated (a decorator).
"""

import argparse
import hashlib
import json
import random
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "test" / "fixtures" / "harness"
DATA = FIXTURES / "data"


class Dataset(list):
    """The part of datasets.Dataset lm-eval uses: a list of dict rows with `features` and `map`."""

    @property
    def features(self):
        keys = {}
        for row in self:
            for k in row:
                keys[k] = None
        return keys

    def map(self, fn):
        return Dataset([{**row, **fn(row)} for row in self])


def install_stand_ins(lm_eval_dir):
    datasets = types.ModuleType("datasets")
    datasets.Dataset = Dataset
    datasets.__version__ = "2.20.0"

    def no_download(*args, **kwargs):
        raise RuntimeError("datasets.load_dataset is not available here: documents come from test/fixtures/harness/data")

    datasets.load_dataset = no_download
    utils = types.ModuleType("datasets.utils")
    metadata = types.ModuleType("datasets.utils.metadata")
    metadata.MetadataConfigs = dict
    utils.metadata = metadata
    datasets.utils = utils
    sys.modules.update({"datasets": datasets, "datasets.utils": utils, "datasets.utils.metadata": metadata})
    for name in ("sacrebleu", "dill", "pandas"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["pandas"].DataFrame = dict
    import typing_extensions

    if not hasattr(typing_extensions, "deprecated"):
        typing_extensions.deprecated = lambda *a, **k: (lambda f: f)
    schema = types.ModuleType("lm_eval.result_schema")
    schema.EvalResults = schema._SampleCount = schema._TaskMetrics = schema.SampleResult = dict
    sys.modules["lm_eval.result_schema"] = schema
    sys.path.insert(0, str(lm_eval_dir))


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def local_dataset(path, name):
    """The splits of one Hugging Face dataset, from the fixture files growlm reads too."""
    dirs = {
        ("baber/piqa", None): "piqa",
        ("aps/super_glue", "boolq"): "boolq",
        ("Rowan/hellaswag", None): "hellaswag",
        ("allenai/winogrande", "winogrande_xl"): "winogrande",
        ("allenai/ai2_arc", "ARC-Easy"): "arc_easy",
        ("allenai/ai2_arc", "ARC-Challenge"): "arc_challenge",
        ("jannalu/crows_pairs_multilingual", "english"): "crows_pairs_english",
    }
    if path == "cais/mmlu":
        rows = read_jsonl(DATA / "mmlu.jsonl")
        return {split: Dataset([r["doc"] for r in rows if r["split"] == split and r["doc"]["subject"] == name]) for split in ("dev", "test")}
    folder = DATA / dirs[(path, name)]
    return {p.stem: Dataset(read_jsonl(p)) for p in sorted(folder.glob("*.jsonl"))}


def fake_loglikelihood(context, continuation):
    """A deterministic stand-in for a model: exact binary fractions of a SHA-256 of the request."""
    h = hashlib.sha256((context + "\u241f" + continuation).encode("utf-8")).hexdigest()
    logprob = -(int(h[0:8], 16) / 4294967296) * 8 - int(h[8:10], 16) / 64
    return logprob, int(h[10], 16) % 2 == 0


def request_digest(args):
    """SHA-256 over a document's (context, continuation) pairs, joined by U+0000 and U+0001."""
    text = "\u0001".join(ctx + "\u0000" + cont for ctx, cont in args)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


TASKS = ["piqa", "boolq", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "crows_pairs_english", "mmlu"]
# Tasks whose prompts and configs are stored whole (the rest by digest, to keep the fixture small).
FULL_ARGUMENTS = {"piqa", "boolq", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "crows_pairs_english", "mmlu_abstract_algebra", "mmlu_formal_logic"}
RUNS = [
    {"num_fewshot": 0, "fewshot_seed": 1234, "limit": None},
    {"num_fewshot": 2, "fewshot_seed": 1234, "limit": None},
    {"num_fewshot": 3, "fewshot_seed": 7, "limit": 0.6},
]
KEEP = ("results", "groups", "group_subtasks", "versions", "n-shot", "higher_is_better", "n-samples")
CONFIG_KEYS = (
    "task", "task_alias", "tag", "dataset_path", "dataset_name", "training_split", "validation_split", "test_split",
    "fewshot_split", "doc_to_text", "doc_to_target", "doc_to_choice", "description", "target_delimiter",
    "fewshot_delimiter", "num_fewshot", "metric_list", "output_type", "repeats", "should_decontaminate",
    "doc_to_decontamination_query", "metadata",
)


def printable_config(config):
    """The config fields that hold data (templates, splits, metrics), without the loader's config_source."""
    out = {k: config[k] for k in CONFIG_KEYS if k in config and isinstance(config[k], (str, int, float, bool, list, dict))}
    out["metadata"] = {k: v for k, v in out.get("metadata", {}).items() if k != "config_source"}
    return out


def lm_eval_runs():
    from lm_eval import evaluator
    from lm_eval.api.model import LM
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks import TaskManager

    def download(self, dataset_kwargs=None, **kwargs):
        self.dataset = local_dataset(self.config.dataset_path, self.config.dataset_name)

    ConfigurableTask.download = download

    class FakeLM(LM):
        def loglikelihood(self, requests, disable_tqdm=False):
            return [fake_loglikelihood(*req.args) for req in requests]

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def generate_until(self, requests, disable_tqdm=False):
            raise NotImplementedError

    manager = TaskManager()
    out = []
    for run in RUNS:
        res = evaluator.simple_evaluate(
            model=FakeLM(),
            tasks=TASKS,
            num_fewshot=run["num_fewshot"],
            fewshot_random_seed=run["fewshot_seed"],
            torch_random_seed=None,
            limit=run["limit"],
            task_manager=manager,
            log_samples=True,
            bootstrap_iters=100000,
        )
        record = {"options": run}
        for key in KEEP:
            if key in res:
                record[key] = res[key]
        if run is RUNS[0]:
            record["configs"] = {t: printable_config(c) for t, c in res["configs"].items() if t in FULL_ARGUMENTS}
        record["arguments"] = {}
        record["argument_digests"] = {}
        for task, samples in res["samples"].items():
            docs = [[list(a) for a in s["arguments"]] for s in sorted(samples, key=lambda s: s["doc_id"])]
            record["argument_digests"][task] = [request_digest(d) for d in docs]
            if task in FULL_ARGUMENTS:
                record["arguments"][task] = docs
        out.append(record)
    return out


def python_random():
    cases = []
    for seed in (0, 1, 1234, 42, 2**32 + 5, 2**40 - 3):
        r = random.Random(seed)
        cases.append({"seed": seed, "getrandbits32": [r.getrandbits(32) for _ in range(5)]})
    samples = []
    for seed, n, k in ((1234, 6, 3), (1234, 10, 10), (7, 21, 5), (7, 22, 5), (3, 100, 7), (3, 25, 6), (9, 1000, 40), (11, 3, 0)):
        r = random.Random(seed)
        draws = [r.sample(range(n), k) for _ in range(3)]
        samples.append({"seed": seed, "n": n, "k": k, "draws": draws})
    return {"python": sys.version.split()[0], "getrandbits": cases, "sample": samples}


def python_str():
    texts = ["", "  hello  ", "\u001c\u0085x\u00a0\u2028", "\ufeffx\ufeff", "ßtraße", "ǆemal", "ﬁne ﬂow", "hELLO wORLD", "ΑΣ ΟΔΟΣ", "ΣΑΣ", "ᾳbc", "éCOLE", "i̇stanbul", "𝒜bc", "\tTabs\t\n"]
    return [{"text": t, "strip": t.strip(), "rstrip": t.rstrip(), "capitalize": t.capitalize(), "len": len(t)} for t in texts]


def write(name, value, indent=1):
    path = FIXTURES / name
    path.write_text(json.dumps(value, ensure_ascii=False, indent=indent, separators=(",", ":") if indent is None else None) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lm_eval", required=True, help="folder holding the lm_eval package of the 0.4.13 wheel")
    args = parser.parse_args()
    install_stand_ins(Path(args.lm_eval))
    import importlib.metadata

    version = importlib.metadata.version("lm_eval") if (Path(args.lm_eval) / "lm_eval-0.4.13.dist-info").exists() else "unknown"
    if version != "0.4.13":
        sys.exit(f"expected lm_eval 0.4.13 in {args.lm_eval}, found {version}")
    write("python_random.json", python_random())
    write("python_str.json", python_str())
    # Compact: the prompts of three runs over 64 tasks.
    write("lm_eval_runs.json", {"lm_eval": version, "runs": lm_eval_runs()}, indent=None)


if __name__ == "__main__":
    main()
