/**
 * mmlu (lm-evaluation-harness tasks/mmlu/default, tasks version 1.0, groups version 2): 57
 * subjects, each a task mmlu_<subject>, in four category groups (stem, other, social
 * sciences, humanities) under the group mmlu; every group reports acc as the size-weighted
 * mean over its subjects. Prompt: the description "The following are multiple choice
 * questions (with answers) about <subject words>.\n\n", then per question
 * "<question.strip()>\nA. <choice 0>\nB. ...\nD. <choice 3>\nAnswer:" and the continuations
 * " A" .. " D". Documents: {"question", "choices": [4 strings], "answer": 0..3} (cais/mmlu,
 * config <subject>); mmlu/<subject>/test.jsonl is evaluated, the first k of
 * mmlu/<subject>/dev.jsonl are the few-shot examples.
 */
import type { GroupSpec, TaskSpec } from "../harness.js";
import { pythonStrip } from "../python-str.js";
import { badDoc, integerField, stringField, stringListField } from "./doc-fields.js";

type Category = "stem" | "other" | "social_sciences" | "humanities";

/** Each subject's category, as the subject YAMLs tag them (mmlu_<category>_tasks). */
export const MMLU_SUBJECTS: Readonly<Record<string, Category>> = {
  abstract_algebra: "stem",
  anatomy: "stem",
  astronomy: "stem",
  business_ethics: "other",
  clinical_knowledge: "other",
  college_biology: "stem",
  college_chemistry: "stem",
  college_computer_science: "stem",
  college_mathematics: "stem",
  college_medicine: "other",
  college_physics: "stem",
  computer_security: "stem",
  conceptual_physics: "stem",
  econometrics: "social_sciences",
  electrical_engineering: "stem",
  elementary_mathematics: "stem",
  formal_logic: "humanities",
  global_facts: "other",
  high_school_biology: "stem",
  high_school_chemistry: "stem",
  high_school_computer_science: "stem",
  high_school_european_history: "humanities",
  high_school_geography: "social_sciences",
  high_school_government_and_politics: "social_sciences",
  high_school_macroeconomics: "social_sciences",
  high_school_mathematics: "stem",
  high_school_microeconomics: "social_sciences",
  high_school_physics: "stem",
  high_school_psychology: "social_sciences",
  high_school_statistics: "stem",
  high_school_us_history: "humanities",
  high_school_world_history: "humanities",
  human_aging: "other",
  human_sexuality: "social_sciences",
  international_law: "humanities",
  jurisprudence: "humanities",
  logical_fallacies: "humanities",
  machine_learning: "stem",
  management: "other",
  marketing: "other",
  medical_genetics: "other",
  miscellaneous: "other",
  moral_disputes: "humanities",
  moral_scenarios: "humanities",
  nutrition: "other",
  philosophy: "humanities",
  prehistory: "humanities",
  professional_accounting: "other",
  professional_law: "humanities",
  professional_medicine: "other",
  professional_psychology: "social_sciences",
  public_relations: "social_sciences",
  security_studies: "social_sciences",
  sociology: "social_sciences",
  us_foreign_policy: "social_sciences",
  virology: "other",
  world_religions: "humanities",
};

const LETTERS = ["A", "B", "C", "D"] as const;

function mmluTask(subject: string, category: Category): TaskSpec {
  const name = `mmlu_${subject}`;
  return {
    name,
    alias: subject,
    version: 1.0,
    dataset: { path: "cais/mmlu", name: subject, dir: `mmlu/${subject}` },
    splits: { training: null, validation: null, test: "test", fewshot: "dev" },
    fewshotSampler: "first_n",
    multipleInputs: false,
    docToText: (doc, where) => {
      const choices = stringListField(name, doc, "choices", where);
      if (choices.length < 4) throw badDoc(name, where, `field "choices" must hold 4 strings but holds ${choices.length}`);
      const question = pythonStrip(stringField(name, doc, "question", where));
      return `${question}\n${LETTERS.map((letter, i) => `${letter}. ${choices[i]!}`).join("\n")}\nAnswer:`;
    },
    docToChoice: () => [...LETTERS],
    docToTarget: (doc, where) => integerField(name, doc, "answer", where),
    description: `The following are multiple choice questions (with answers) about ${subject.split("_").join(" ")}.\n\n`,
    targetDelimiter: " ",
    fewshotDelimiter: "\n\n",
    metricList: [{ metric: "acc", aggregation: "mean", higher_is_better: true }],
    config: {
      tag: `mmlu_${category}_tasks`,
      doc_to_text: "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
      doc_to_target: "answer",
      doc_to_choice: [...LETTERS],
    },
  };
}

/** The 57 subject tasks, in alphabetical order. */
export const mmluTasks: readonly TaskSpec[] = Object.entries(MMLU_SUBJECTS).map(([subject, category]) => mmluTask(subject, category));

const CATEGORY_ALIASES: Readonly<Record<Category, string>> = {
  stem: "stem",
  other: "other",
  social_sciences: "social sciences",
  humanities: "humanities",
};

const ACC_BY_SIZE = [{ metric: "acc", weightBySize: true }] as const;

/** mmlu and its four category groups. */
export const mmluGroups: readonly GroupSpec[] = [
  {
    name: "mmlu",
    version: "2",
    children: ["mmlu_stem", "mmlu_other", "mmlu_social_sciences", "mmlu_humanities"],
    aggregateMetricList: ACC_BY_SIZE,
  },
  ...(Object.keys(CATEGORY_ALIASES) as Category[]).map(
    (category): GroupSpec => ({
      name: `mmlu_${category}`,
      alias: CATEGORY_ALIASES[category],
      version: "2",
      children: Object.keys(MMLU_SUBJECTS)
        .filter((s) => MMLU_SUBJECTS[s] === category)
        .map((s) => `mmlu_${s}`),
      aggregateMetricList: ACC_BY_SIZE,
    }),
  ),
];
