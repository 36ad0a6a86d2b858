/**
 * Continual-learning metrics from a results matrix R[s][j]: the score on task j after stage s
 * (row 0: the model before any fine-tuning). The textbook definitions (Lopez-Paz & Ranzato
 * 2017; Chaudhry et al. 2018; Riemer et al. 2019) assume task j is trained at stage j exactly
 * once; scenarios here may train a task several times (revisits) and evaluate tasks never
 * trained (probes), so each task's own stages are used:
 *
 *   first(j), last(j)   the first and the last stage that trains task j (S = the final stage)
 *   ACC  = mean_j R[S][j]                                      over every evaluated task
 *   LA   = mean_j R[first(j)][j]                               over trained tasks (plasticity)
 *   BWT  = mean_j ( R[S][j] − R[last(j)][j] )                  over trained tasks with last(j) < S
 *   FWT  = mean_j ( R[first(j) − 1][j] − R[0][j] )             over trained tasks with first(j) > 1
 *   f_j  = max_{first(j) ≤ l < S} R[l][j] − R[S][j]            over trained tasks with last(j) < S
 *   F    = mean_j f_j                                          (average forgetting, ≥ 0 is forgetting)
 *   FG_j = mean_{s ≥ 1} ( R[0][j] − R[s][j] ) / R[0][j] · 100  (the study's relative drop, per task)
 *
 * With one visit per task in order this is exactly the textbook ACC, LA, BWT, FWT (b̄_j = R[0][j],
 * the base model's zero-shot score) and F_T. For metrics where lower is better
 * (higherIsBetter false) every difference is negated, so a positive BWT still means improvement
 * and a positive F still means forgetting.
 */
import { GrowlmError } from "../errors.js";

export interface ClMetrics {
  acc: number;
  learningAccuracy: number;
  bwt: number;
  fwt: number;
  forgetting: number;
  /** Per task: f_j (NaN where not defined). */
  taskForgetting: Record<string, number>;
  /** Per task: the study's FG in % (NaN where R[0][j] is 0). */
  relativeDrop: Record<string, number>;
}

function mean(values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * @param stages the task trained at each stage 1..S (stages[s − 1] is stage s)
 * @param tasks the evaluated tasks, the columns of R
 * @param R (S + 1) rows × tasks.length columns
 */
export function continualMetrics(stages: readonly string[], tasks: readonly string[], R: readonly (readonly number[])[], higherIsBetter = true): ClMetrics {
  const op = "continualMetrics";
  const S = stages.length;
  if (R.length !== S + 1 || R.some((row) => row.length !== tasks.length)) {
    throw new GrowlmError(op, `R must be ${S + 1} × ${tasks.length} (stages + 1 rows, one column per task)`);
  }
  const sign = higherIsBetter ? 1 : -1;
  const at = (s: number, j: number): number => R[s]![j]!;
  const acc = mean(tasks.map((_, j) => at(S, j)));
  const la: number[] = [];
  const bwt: number[] = [];
  const fwt: number[] = [];
  const forgetting: number[] = [];
  const taskForgetting: Record<string, number> = {};
  const relativeDrop: Record<string, number> = {};
  tasks.forEach((task, j) => {
    const trained = stages.flatMap((t, i) => (t === task ? [i + 1] : []));
    const base = at(0, j);
    relativeDrop[task] = base === 0 || S === 0 ? Number.NaN : (mean(Array.from({ length: S }, (_, i) => base - at(i + 1, j))) / base) * 100 * sign;
    taskForgetting[task] = Number.NaN;
    if (trained.length === 0) return;
    const first = trained[0]!;
    const last = trained.at(-1)!;
    la.push(at(first, j));
    if (first > 1) fwt.push(sign * (at(first - 1, j) - base));
    if (last < S) {
      bwt.push(sign * (at(S, j) - at(last, j)));
      let best = -Infinity;
      for (let l = first; l < S; l++) best = Math.max(best, sign * at(l, j));
      const f = best - sign * at(S, j);
      taskForgetting[task] = f;
      forgetting.push(f);
    }
  });
  return { acc, learningAccuracy: mean(la), bwt: mean(bwt), fwt: mean(fwt), forgetting: mean(forgetting), taskForgetting, relativeDrop };
}
