/** growlm preprocess and growlm finetune with the study's own command line. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

import { finetune } from "../../src/cli/finetune.js";
import { parseHfArgs } from "../../src/cli/hf-args.js";
import { init } from "../../src/cli/init.js";
import { preprocess } from "../../src/cli/preprocess.js";

describe("Hugging Face style flags", () => {
  const specs = { do_train: { kind: "bool" as const }, max_steps: { kind: "int" as const }, evaluation_strategy: { kind: "string" as const, aliases: ["eval_strategy"], choices: ["no", "steps"] } };
  test("booleans alone or with true/false, negative numbers, = and aliases, ignored flags once", () => {
    const r = parseHfArgs("t", ["--do_train", "--max_steps", "-1", "--eval_strategy=steps", "--deepspeed", "ds.json", "--deepspeed", "x"], specs, new Set(["deepspeed"]));
    expect(Object.fromEntries(r.values)).toEqual({ do_train: true, max_steps: -1, evaluation_strategy: "steps" });
    expect(r.ignored).toEqual(["deepspeed"]);
    expect(parseHfArgs("t", ["--do_train", "false"], specs, new Set()).values.get("do_train")).toBe(false);
  });
  test.each([
    [["--nope", "1"], /unknown flag --nope/],
    [["--max_steps", "1.5"], /--max_steps must be an integer/],
    [["--do_train", "maybe"], /--do_train takes true or false/],
    [["--evaluation_strategy", "epoch"], /must be one of no, steps/],
    [["stray"], /unexpected argument "stray"/],
  ])("refuses %j", (argv, message) => {
    expect(() => parseHfArgs("t", argv, specs, new Set())).toThrow(message);
  });
});

describe("growlm preprocess + finetune", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-cli-ft-"));
    vi.spyOn(console, "log").mockImplementation(() => {});
    vi.spyOn(console, "error").mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the study's training command runs as written (launcher and paths aside)", async () => {
    const raw = path.join(dir, "raw");
    fs.mkdirSync(raw);
    const src = Array.from({ length: 20 }, (_, i) => `Sentence ${i} is -LRB-quite-RRB- long.`);
    const tgt = src.map((_, i) => `Sentence ${i} is long.`);
    fs.writeFileSync(path.join(raw, "simplification_1.train.json"), JSON.stringify({ src, tgt, src_info: src.map((s) => ({ normal_sentence: s })) }));
    fs.writeFileSync(path.join(raw, "simplification_1.test.json"), JSON.stringify({ src: src.slice(0, 2), tgt: tgt.slice(0, 2), src_info: src.slice(0, 2).map((s, i) => ({ normal_sentence: `${s}\n`, simple_sentence: `${tgt[i]}\n`, prompt_name: "simplification_1" })) }));
    const data = path.join(dir, "data.json");
    preprocess.run(["--folder_path", raw, "--output_path", data, "--eval_dataset_size", "0.1"]);
    fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify({ vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 256 }));
    await init.run(["--config", path.join(dir, "cfg.json"), "--out", path.join(dir, "base"), "--tokenizer", "byte"]);
    const out = path.join(dir, "m1");
    // The README's m1 command, minus deepspeed's launcher; sizes shrunk to a tiny run.
    await finetune.run(
      `--model_name_or_path ${path.join(dir, "base")} --dataset ${data} --dataset_format prompt --output_dir ${out} --run_name llm_7b_m1_prompt_exp2
       --num_train_epochs 1 --max_steps -1 --per_device_train_batch_size 8 --gradient_accumulation_steps 1 --per_device_eval_batch_size 4
       --eval_accumulation_steps 16 --save_strategy epoch --evaluation_strategy steps --eval_steps 300 --save_total_limit 1 --learning_rate 2e-5
       --logging_steps 150 --lr_scheduler_type constant --gradient_checkpointing true --deepspeed ds_config_3.json --bf16 true --report_to wandb
       --logging_first_step true --seed 42 --do_train true --do_eval true --do_predict false --predict_with_generate false --train_on_source false
       --trust_remote_code true --task simp --source_max_len 128 --target_max_len 32`.split(/\s+/),
    );
    expect(fs.readdirSync(out)).toContain("checkpoint-3");
    const logs = fs.readFileSync(path.join(out, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(logs[0]).toMatchObject({ step: 1, learning_rate: 2e-5 });
    expect(logs.at(-1)).toHaveProperty("eval_loss");
    expect(vi.mocked(console.error).mock.calls[0]![0]).toMatch(/ignoring --eval_accumulation_steps, --deepspeed, --report_to, --trust_remote_code/);

    // The README's test command (finetune_v3.py's flags) on the checkpoint just written.
    const test = path.join(out, "test");
    await finetune.run(
      `--model_name_or_path ${path.join(out, "checkpoint-3")} --dataset ${data} --dataset_format prompt --output_dir ${test} --run_name llm_7b_m0_inf_prompt
       --trust_remote_code true --overwrite_output_dir false --do_train false --do_eval false --do_predict true --predict_with_generate true
       --per_device_eval_batch_size 8 --dataloader_num_workers 4 --seed 42 --report_to none --bf16 true --dataloader_pin_memory true
       --gradient_checkpointing false --num_beams 3 --length_penalty 0.8 --remove_unused_columns false --compute_rouge true --compute_sari true
       --compute_bleu true --max_new_tokens 8 --task simp --source_max_len 128`.split(/\s+/),
    );
    const lines = fs.readFileSync(path.join(test, "predictions.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(Object.keys(lines[0])).toEqual(expect.arrayContaining(["input", "output", "src_info", "prediction_with_input", "prediction"]));
    const metrics = JSON.parse(fs.readFileSync(path.join(test, "metrics.json"), "utf8"));
    expect(Object.keys(metrics).sort()).toEqual(["bleu", "rouge", "sari"]);
  });
});
