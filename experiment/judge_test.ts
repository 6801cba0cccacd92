import { assertEquals, assertNotEquals } from "@std/assert";
import {
  type ExperimentConfig,
  judgeKey,
  judgePlan,
  type OptionKey,
  resolveConfig,
} from "./mod.ts";

// Another valid value of every option. A Record over every key: an option
// added to the table does not compile here until it is classified below.
const CHANGED: Record<OptionKey, unknown> = {
  preset: "tiny",
  models: "ar",
  seeds: 3,
  firstSeed: 2,
  backend: "cpu",
  engine: "tfjs",
  logEvery: 5,
  data: "elsewhere",
  out: "elsewhere",
  resume: true,
  force: true,
  tokenizer: "bpe",
  vocabSize: 999,
  blockLength: 64,
  nLayer: 2,
  nHead: 4,
  dModel: 128,
  dMlp: 256,
  positions: "learned",
  dropout: 0.1,
  timeConditioning: true,
  alibi: 2,
  alibiMode: "neighbours",
  steps: 17,
  batchSize: 3,
  lr: 0.01,
  arLr: 0.02,
  warmup: 7,
  weightDecay: 0.2,
  clipNorm: 0.5,
  emaDecay: 0.5,
  checkpointEvery: 3,
  diffusionLoss: "d3pm",
  diffusionSteps: 100,
  tMin: 0.2,
  tMax: 0.9,
  timesPer: "token",
  evalBlocks: 3,
  validEvery: 10,
  validBlocks: 3,
  keep: "best",
  elboSamples: 3,
  exactBlocks: 3,
  genTokens: 99,
  genBatch: 3,
  genSamples: 5,
  genSteps: "3",
  samples: 5,
  infillFraction: 0.3,
  judge: "self",
  judgeSteps: 99,
  fullMaskShare: 0.1,
  initFrom: "runs/src",
  annealSteps: 5,
  shift: true,
};

// What the auto judge's training reads from the configuration. `data`,
// `tokenizer` and `vocabSize` reach it through the data (the train split's
// hash, the tokenizer's id and size), tested below.
const TRAINING: readonly OptionKey[] = [
  "blockLength",
  "nLayer",
  "nHead",
  "dModel",
  "dMlp",
  "positions",
  "dropout",
  "batchSize",
  "lr",
  "arLr",
  "warmup",
  "weightDecay",
  "clipNorm",
  "emaDecay",
  "judgeSteps",
];

const DATA = {
  tokenizer: { id: "byte", vocabSize: 260 },
  trainSha256: "0123",
} as const;

Deno.test("the judge's cache key changes with every option its training reads, and with no other", () => {
  const c = resolveConfig({ preset: "micro" });
  const key = judgeKey(judgePlan(c, DATA));
  const changing: OptionKey[] = [];
  for (const k of Object.keys(CHANGED) as OptionKey[]) {
    const other = { ...c, [k]: CHANGED[k] } as ExperimentConfig;
    assertNotEquals(JSON.stringify(other[k]), JSON.stringify(c[k]), k);
    if (judgeKey(judgePlan(other, DATA)) !== key) changing.push(k);
  }
  assertEquals(changing, [...TRAINING]);
});

Deno.test("the judge's cache key changes with the data, the tokenizer and its real size", () => {
  const c = resolveConfig({ preset: "micro" });
  const key = judgeKey(judgePlan(c, DATA));
  assertNotEquals(
    judgeKey(judgePlan(c, { ...DATA, trainSha256: "4567" })),
    key,
  );
  assertNotEquals(
    judgeKey(
      judgePlan(c, { ...DATA, tokenizer: { id: "bpe-x", vocabSize: 260 } }),
    ),
    key,
  );
  assertNotEquals(
    judgeKey(
      judgePlan(c, { ...DATA, tokenizer: { id: "byte", vocabSize: 300 } }),
    ),
    key,
  );
  // Without EMA the plan has none (and a different key from any decay).
  assertNotEquals(judgeKey(judgePlan({ ...c, emaDecay: 0 }, DATA)), key);
});
