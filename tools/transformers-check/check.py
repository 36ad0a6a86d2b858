"""The transformers side of growlm's Hugging Face compatibility check.

Run where transformers is installed (the device machine has it):
    npx tsx tools/transformers-check/prepare.ts tools/transformers-check/work     # here
    python3 tools/transformers-check/check.py tools/transformers-check/work OUT   # there
(the work folder is git-ignored: name it in the device run's carry). Checks that transformers loads every growlm-written model with
no missing, unexpected or mismatched tensor and computes growlm's logits, and that
transformers' tokenizers (Rust) encode and decode as growlm does. Then writes, for growlm's
tests, models and a tokenizer saved by transformers itself (OUT/transformers-written.tar)
with transformers' logits, and a report (OUT/report.json). Exits non-zero on a mismatch.
"""
import json
import os
import sys
import tarfile

import torch
import transformers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

work, out = sys.argv[1], sys.argv[2]
expected = json.load(open(os.path.join(work, "expected.json")))
report = {"transformers": transformers.__version__, "torch": torch.__version__, "models": {}, "tokenizers": {}}
failures = []
LOGITS_RTOL = 1e-5


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


for name, exp in expected["models"].items():
    model, info = LlamaForCausalLM.from_pretrained(
        os.path.join(work, name), dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    model.eval()
    ids = torch.tensor(exp["ids"])
    with torch.no_grad():
        logits = model(ids).logits.double()
    ours = torch.tensor(exp["logits"], dtype=torch.float64).reshape(logits.shape)
    err = rel(ours, logits)
    keys = {k: sorted(map(str, v)) for k, v in info.items() if v}
    report["models"][name] = {"logits_rel_err": err, "loading_info": keys, "config_dtype": str(model.config.dtype)}
    if err > LOGITS_RTOL or keys:
        failures.append(f"model {name}: logits rel err {err:.3e}, loading info {keys}")

for name, t in expected["tokenizers"].items():
    tok = AutoTokenizer.from_pretrained(os.path.join(work, t["dir"]))
    rows = []
    for text, ours, decoded in zip(expected["texts"], t["encodings"], t["decodings"]):
        theirs = tok(text)["input_ids"]
        back = tok.decode(theirs, skip_special_tokens=True)
        rows.append({"text": text, "same_ids": theirs == ours, "same_decode": back == decoded, "transformers": theirs, "growlm": ours})
        if theirs != ours:
            failures.append(f"tokenizer {name}: {text!r} -> transformers {theirs} growlm {ours}")
        if back != decoded:
            failures.append(f"tokenizer {name}: decode of {text!r} -> transformers {back!r} growlm {decoded!r}")
    report["tokenizers"][name] = {"class": type(tok).__name__, "rows": rows}

# Models and a tokenizer written by transformers, for growlm's tests to read.
written = os.path.join(out, "transformers-written")
os.makedirs(written, exist_ok=True)
torch.manual_seed(0)
config = LlamaConfig(
    vocab_size=83, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
)
model = LlamaForCausalLM(config)
with torch.no_grad():
    for n, p in model.named_parameters():
        if n.endswith("norm.weight"):
            p.add_(0.1 * torch.randn_like(p))
model.eval()
ids = torch.tensor([[(i * 31 + 7) % 83 for i in range(12)], [(i * 17 + 3) % 83 for i in range(12)]])
logits = {}
model.save_pretrained(os.path.join(written, "f32"))
with torch.no_grad():
    logits["f32"] = model(ids).logits.flatten().tolist()
bf16 = LlamaForCausalLM(config)
bf16.load_state_dict(model.state_dict())
bf16 = bf16.to(torch.bfloat16)
bf16.save_pretrained(os.path.join(written, "bf16_sharded"), max_shard_size="20KB")
widened = bf16.to(torch.float32).eval()
with torch.no_grad():
    logits["bf16_sharded"] = widened(ids).logits.flatten().tolist()
tok = AutoTokenizer.from_pretrained(os.path.join(work, expected["tokenizers"]["tied_byte"]["dir"]))
tok.save_pretrained(os.path.join(written, "tokenizer-byte"))
json.dump(
    {"transformers": transformers.__version__, "ids": ids.tolist(), "logits": logits,
     "encodings": {text: tok(text)["input_ids"] for text in expected["texts"]}},
    open(os.path.join(written, "expected.json"), "w"),
)
with tarfile.open(os.path.join(out, "transformers-written.tar"), "w") as tar:
    tar.add(written, arcname="transformers-written")

report["failures"] = failures
json.dump(report, open(os.path.join(out, "report.json"), "w"), indent=1)
print(json.dumps({k: v for k, v in report.items() if k != "tokenizers"}, indent=1))
for name, t in report["tokenizers"].items():
    print(name, t["class"], "all ids equal:", all(r["same_ids"] for r in t["rows"]), "all decodes equal:", all(r["same_decode"] for r in t["rows"]))
print("FAILURES:" if failures else "all checks passed", *failures, sep="\n")
sys.exit(1 if failures else 0)
