/**
 * Probabilistic training steps against the deterministic step at the same batch, in the same
 * run: a FiLM-Ensemble of M = 4 members (the members are rows of one batch, B·M rows; the
 * issue's bound is 4.4× the deterministic step's time) and dropout p = 0.1 (MC dropout's
 * training step). Each is timed alternately with the deterministic step (bench/common.ts), on
 * train.bench.ts's config S; the value is rows per second (a FiLM step processes B·M·T rows)
 * and its ratio against the deterministic step's rows per second is M·t_det / t_film: the
 * efficiency of the member dimension as batch (1 = exactly M times the deterministic time).
 */
import { parseLlamaConfig } from "../src/model/config.js";
import { LlamaModel } from "../src/model/llama.js";
import { FilmEnsemble, initializeFilm } from "../src/probabilistic/film.js";
import { Tensor } from "../src/tensor.js";
import { Trainer } from "../src/train/trainer.js";
import { stepContender, type BenchSuite } from "./common.js";
import { TRAIN_CONFIGS } from "./train.bench.js";

const M = 4;
/** The bound on a FiLM M = 4 step against the deterministic step at the same batch. */
const TARGET_TIME_RATIO = 4.4;

type Mode = "deterministic" | "film" | "dropout";

function makeStep(mode: Mode, B: number, T: number): { step: () => void; dispose: () => void } {
  const bench = TRAIN_CONFIGS[0]!;
  const config = parseLlamaConfig({ ...bench.config, max_position_embeddings: T });
  const model = new LlamaModel(config);
  model.initialize(1234);
  if (mode === "film") {
    const film = new FilmEnsemble(config, M);
    initializeFilm(film, 7, 1);
    model.attachFilm(film);
  }
  const trainer = new Trainer(model, { schedule: { type: "constant", learningRate: 1e-4, totalSteps: 1 << 30 }, optimizer: { weightDecay: 0.1, maxGradNorm: 1 } });
  if (mode === "dropout") model.setDropout(0.1, trainer.rng);
  const ids = Tensor.empty([B, T], "int32");
  const data = ids.data as Int32Array;
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) % config.vocab_size >>> 0;
  return {
    step: () => void trainer.trainStep([{ ids, labels: ids }]),
    dispose: () => {
      trainer.dispose();
      model.dispose();
      ids.dispose();
    },
  };
}


export const suite: BenchSuite = {
  name: "film",
  run(ctx) {
    const B = 4;
    const T = 256;
    const det = makeStep("deterministic", B, T);
    for (const mode of ["film", "dropout"] as const) {
      const ours = makeStep(mode, B, T);
      const members = mode === "film" ? M : 1;
      const label = mode === "film" ? `FiLM-Ensemble M=${M} train step, config S (B=${B} T=${T}), rows = B·M·T` : `dropout p=0.1 train step, config S (B=${B} T=${T})`;
      const [value, baseline] = ctx.compare(label, "tokens/s", [B * members * T, B * T], [
        stepContender("growlm", B * members * T, ours.step),
        stepContender("deterministic step, same batch", B * T, det.step),
      ]) as [number, number];
      // Step time against the deterministic step: (rows/value) / (B·T/baseline).
      const timeRatio = (members * baseline) / value;
      const verdict = mode === "film" ? ` (target <= ${TARGET_TIME_RATIO}: ${timeRatio <= TARGET_TIME_RATIO ? "met" : "MISSED"})` : "";
      console.log(`    step time / deterministic step time: ${timeRatio.toFixed(3)}${verdict}`);
      ours.dispose();
    }
    det.dispose();
  },
};
