/**
 * The experiment's configuration: presets, validation and command-line
 * overrides. Every key can be overridden as `--kebab-case-key value`;
 * unknown keys are an error.
 *
 * @module
 */

import {
  preset as modelPreset,
  type PresetName as ModelPresetName,
} from "@d3pm/transformer";

/** The models a run can train, in the order it trains them. */
export const MODEL_KINDS = ["ar", "d3pm", "mlm"] as const;

/** Which model of a run: the AR model, the D3PM, or the masked language model. */
export type ModelKind = typeof MODEL_KINDS[number];

/** Everything a run depends on; saved as `config.json` in the run folder. */
export interface ExperimentConfig {
  /** Preset the run started from. */
  preset: PresetName;
  /**
   * The contestants, comma-separated, from `ar`, `d3pm` and `mlm` (a
   * BERT-style masked language model on the D3PM's backbone); stored in
   * the order they are trained.
   */
  models: string;
  /** Number of seeds (0..seeds−1). */
  seeds: number;
  /** tfjs backend: auto, tensorflow, webgpu, blas, wasm or cpu. */
  backend: "auto" | "tensorflow" | "webgpu" | "blas" | "wasm" | "cpu";
  /**
   * Training engine: `tfjs` (the backend above), `webgpu` (the fused engine
   * of `@d3pm/webgpu`, on any adapter, software ones too), or `auto` (the
   * fused engine on a real GPU adapter, else tfjs).
   */
  engine: "auto" | "tfjs" | "webgpu";
  /** Steps between loss readings on the fused engine (each one GPU→CPU sync). */
  logEvery: number;
  /** Corpus directory (`wiki.{train,valid,test}.{tokens,raw}`); empty: the embedded WikiText-2. */
  data: string;
  /** Run folder. */
  out: string;
  /** Continue from the checkpoints in `out`. */
  resume: boolean;
  /** Start afresh in a folder that holds an earlier run (moved aside, not deleted). */
  force: boolean;
  /** `bpe` (trained on the train split), `gpt2` or `byte`. */
  tokenizer: "bpe" | "gpt2" | "byte";
  /** Vocabulary size of a trained BPE (special tokens included). */
  vocabSize: number;
  /** Tokens per block (the models' context). */
  blockLength: number;
  /** Transformer blocks. */
  nLayer: number;
  /** Attention heads. */
  nHead: number;
  /** Residual width. */
  dModel: number;
  /** MLP width. */
  dMlp: number;
  /** `learned` or `rotary` positions. */
  positions: "learned" | "rotary";
  /** Condition the D3PM denoiser on t (adaLN). */
  timeConditioning: boolean;
  /** Dropout rate. */
  dropout: number;
  /**
   * ALiBi slope of the bidirectional models' first head (D3PM and MLM; 0:
   * none): a prior towards neighbouring positions.
   */
  alibi: number;
  /**
   * Where the ALiBi heads look: `symmetric` (each at the position itself),
   * or `neighbours` (heads 0 and 1 centred on the left and the right
   * neighbour, the others symmetric). Without effect when `alibi` is 0.
   */
  alibiMode: "symmetric" | "neighbours";
  /** Optimiser steps per model (the token budget is matched across models). */
  steps: number;
  /** Blocks per step. */
  batchSize: number;
  /** Peak learning rate (of the D3PM and the MLM, and of the AR model unless `arLr` is set). */
  lr: number;
  /** Peak learning rate of the AR model and its judge (0: the same as `lr`); each model gets its own best. */
  arLr: number;
  /** Warm-up steps. */
  warmup: number;
  /** AdamW weight decay. */
  weightDecay: number;
  /** Gradient clipping (global norm). */
  clipNorm: number;
  /** EMA decay of the weights used for evaluation (0 disables). */
  emaDecay: number;
  /** Steps between checkpoints. */
  checkpointEvery: number;
  /** `mdlm` (continuous SUBS objective) or `d3pm` (discrete hybrid bound). */
  diffusionLoss: "mdlm" | "d3pm";
  /** Diffusion steps T of the discrete process. */
  diffusionSteps: number;
  /** Smallest time the D3PM's training loss draws (MDLM: 0.001). */
  tMin: number;
  /** Largest time it draws (1; below 1 with a raised `tMin`: BD3-LM's clipped rate). */
  tMax: number;
  /**
   * One training time per `row` (MDLM) or per `token`, or one mask `count`
   * per row (the same objective without the `1/t` weight's heavy tail).
   */
  timesPer: "row" | "token" | "count";
  /** Test blocks evaluated (0: all). */
  evalBlocks: number;
  /** Steps between validations of both models on the valid split (0: none). */
  validEvery: number;
  /** Valid-split blocks per validation (the D3PM reuses one fixed set of draws). */
  validBlocks: number;
  /** Which weights are evaluated: the `last` step's, or the `best` validation's. */
  keep: "last" | "best";
  /** Monte-Carlo draws (by mask count) per test block for the continuous bound. */
  elboSamples: number;
  /** Test blocks for the exact discrete bound (T forward passes per batch; 0 skips it). */
  exactBlocks: number;
  /** Tokens generated per speed measurement (the thesis: 100,000). */
  genTokens: number;
  /** Rows per generated batch (the thesis: 4). */
  genBatch: number;
  /** D3PM step counts for the speed–quality curve, comma-separated. */
  genSteps: string;
  /** Samples of each model written to samples.txt. */
  samples: number;
  /** Fraction of test tokens hidden for infilling. */
  infillFraction: number;
  /**
   * Who scores samples for generative perplexity: `auto` (an AR model of
   * the same shape trained separately for `judgeSteps`, cached per data,
   * tokenizer and block length), `self` (the run's own AR model — it then
   * judges its own samples), or the folder of another run (its seed-0 AR).
   */
  judge: string;
  /** Training steps of the `auto` judge. */
  judgeSteps: number;
}

/** Names of the presets (the same as the transformer presets). */
export type PresetName = ModelPresetName;

/** The model fields of an experiment preset: the transformer preset of the same name. */
function model(name: PresetName) {
  const m = modelPreset(name);
  return {
    vocabSize: m.vocabSize,
    blockLength: m.contextLength,
    nLayer: m.nLayer,
    nHead: m.nHead,
    dModel: m.dModel,
    dMlp: m.dMlp,
    positions: m.positions,
    dropout: m.dropout,
  };
}

const BASE: Omit<ExperimentConfig, "preset"> = {
  seeds: 1,
  models: "ar,d3pm",
  backend: "auto",
  engine: "auto",
  logEvery: 10,
  data: "",
  out: "runs/latest",
  resume: false,
  force: false,
  tokenizer: "bpe",
  ...model("tiny"),
  timeConditioning: false,
  alibi: 0,
  alibiMode: "symmetric",
  steps: 300,
  batchSize: 8,
  lr: 1e-3,
  arLr: 0,
  warmup: 30,
  weightDecay: 0.1,
  clipNorm: 1,
  emaDecay: 0.99,
  checkpointEvery: 100,
  diffusionLoss: "mdlm",
  diffusionSteps: 1000,
  tMin: 0.001,
  tMax: 1,
  timesPer: "row",
  evalBlocks: 64,
  validEvery: 50,
  validBlocks: 32,
  keep: "last",
  elboSamples: 2,
  exactBlocks: 2,
  genTokens: 4096,
  genBatch: 4,
  genSteps: "16,64,128",
  samples: 3,
  infillFraction: 0.15,
  judge: "auto",
  judgeSteps: 600,
};

/**
 * The presets; `tiny` is the default. Each trains the transformer preset of
 * the same name (`@d3pm/transformer`'s `preset()`), so a name means one model.
 *
 * @example
 * ```ts
 * import { PRESETS, resolveConfig } from "@d3pm/experiment";
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * assertEquals(resolveConfig(), PRESETS.tiny); // no overrides: the default preset
 * assertEquals(PRESETS.micro.tokenizer, "byte");
 * for (const [name, config] of Object.entries(PRESETS)) {
 *   assertEquals(config.preset, name);
 *   assertEquals(config.nLayer, preset(config.preset).nLayer); // the same model
 *   assertEquals(config.blockLength, preset(config.preset).contextLength);
 * }
 * ```
 */
export const PRESETS: Record<PresetName, ExperimentConfig> = {
  // Seconds: for tests of the wiring, not for figures.
  micro: {
    ...BASE,
    ...model("micro"),
    preset: "micro",
    tokenizer: "byte",
    // Enough for both models to beat the unigram entropy of bytes (3.19 nats):
    // the denoiser needs ~500 steps before it uses its context at all.
    steps: 800,
    batchSize: 16,
    lr: 5e-3,
    warmup: 20,
    emaDecay: 0.9,
    checkpointEvery: 250,
    validEvery: 100,
    validBlocks: 16,
    diffusionSteps: 50,
    evalBlocks: 64,
    elboSamples: 8,
    exactBlocks: 2,
    genTokens: 256,
    genSteps: "4,16",
    samples: 1,
    judgeSteps: 400,
  },
  // A 2-core CPU in about ten minutes: the default.
  tiny: {
    ...BASE,
    preset: "tiny",
    // 512K training tokens. Chosen by `deno task ablate` (README): batch 4
    // (more, smaller steps at matched tokens help both models), each model
    // its own best lr, no EMA at this budget, and for the D3PM BD3-LM's
    // clipped mask rate and an ALiBi prior: heads 0 and 1 on the
    // left and right neighbour, heads 2 and 3 symmetric (slopes 1, 1/4).
    steps: 1000,
    batchSize: 4,
    lr: 1.4e-3,
    arLr: 4e-3,
    tMin: 0.3,
    tMax: 0.8,
    alibi: 16,
    alibiMode: "neighbours",
    warmup: 60,
    emaDecay: 0,
    checkpointEvery: 500,
    validEvery: 100,
    // Bound draws by mask count, the same for every seed: 16 per test block
    // put the Monte-Carlo spread of the test bound near 0.01 nats.
    elboSamples: 16,
    exactBlocks: 1,
    genTokens: 2048,
    genSteps: "16,64",
    judgeSteps: 1000,
  },
  // A 2-core CPU in about an hour; several seeds.
  small: {
    ...BASE,
    ...model("small"),
    preset: "small",
    steps: 3000,
    batchSize: 8,
    lr: 6e-4,
    warmup: 200,
    checkpointEvery: 500,
    validEvery: 250,
    validBlocks: 64,
    evalBlocks: 256,
    exactBlocks: 4,
    genTokens: 16384,
    genSteps: "32,128,256,1000",
    seeds: 3,
    judgeSteps: 6000,
  },
  // The thesis setting, for a GPU: GPT-2 small, GPT-2 vocabulary, T = 1024, WikiText-103.
  paper: {
    ...BASE,
    ...model("paper"),
    preset: "paper",
    tokenizer: "gpt2",
    steps: 100000,
    batchSize: 4,
    lr: 3e-4,
    warmup: 2000,
    emaDecay: 0.9999,
    checkpointEvery: 1000,
    validEvery: 1000,
    validBlocks: 128,
    evalBlocks: 0,
    elboSamples: 4,
    exactBlocks: 8,
    genTokens: 100000,
    genSteps: "100,250,500,1000",
    seeds: 3,
    judgeSteps: 200000,
  },
};

/**
 * Keys that may differ between a run and its `--resume`: they steer the
 * process, not what is trained or measured.
 *
 * @example
 * ```ts
 * import { configDiff, resolveConfig, RESUMABLE_KEYS } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(RESUMABLE_KEYS, ["resume", "force", "out", "backend", "logEvery"]);
 * const started = resolveConfig({ preset: "micro" });
 * const resumed = resolveConfig({ preset: "micro", resume: true, out: "runs/moved", backend: "cpu" });
 * assertEquals(configDiff(started, resumed), ""); // only resumable keys changed
 * ```
 */
export const RESUMABLE_KEYS: readonly (keyof ExperimentConfig)[] = [
  "resume",
  "force",
  "out",
  "backend",
  "logEvery",
];

/**
 * Keys added to the configuration after runs had been made, each with the
 * value that reproduces what those runs did: a saved `config.json` or
 * checkpoint without the key reads as this value, so that such runs still
 * resume (and a real change is still refused).
 *
 * @example
 * ```ts
 * import { ADDED_KEYS, configDiff, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const now = resolveConfig({ preset: "micro" });
 * const { alibi: _, alibiMode: __, ...older } = now; // a run made before ALiBi
 * assertEquals(ADDED_KEYS.alibi, 0);
 * assertEquals(configDiff(older as typeof now, now), "");
 * assertEquals(
 *   configDiff(older as typeof now, { ...now, alibi: 2 }),
 *   "--alibi is 2 but the run used 0",
 * );
 * ```
 */
export const ADDED_KEYS: Readonly<Partial<ExperimentConfig>> = {
  alibi: 0,
  alibiMode: "symmetric",
};

/**
 * A bad option or config value; the message is one line.
 *
 * @example The message names the option and what it accepts
 * ```ts
 * import { ConfigError, resolveConfig } from "@d3pm/experiment";
 * import { assertThrows } from "@std/assert";
 * assertThrows(
 *   () => resolveConfig({ steps: -5 }),
 *   ConfigError,
 *   "Option --steps must be a positive integer, got -5",
 * );
 * assertThrows(() => resolveConfig({ preset: "huge" }), ConfigError, "expected one of micro, tiny, small, paper");
 * ```
 */
export class ConfigError extends Error {
  /**
   * A configuration error.
   *
   * @param message What is wrong and what is accepted.
   */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Longest block (context) accepted. */
const MAX_BLOCK = 16384;

const CHOICES: Partial<Record<keyof ExperimentConfig, readonly string[]>> = {
  preset: ["micro", "tiny", "small", "paper"],
  backend: ["auto", "tensorflow", "webgpu", "blas", "wasm", "cpu"],
  engine: ["auto", "tfjs", "webgpu"],
  tokenizer: ["bpe", "gpt2", "byte"],
  positions: ["learned", "rotary"],
  diffusionLoss: ["mdlm", "d3pm"],
  keep: ["last", "best"],
  timesPer: ["row", "token", "count"],
  alibiMode: ["symmetric", "neighbours"],
};

/** kebab-case → camelCase. */
export function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** camelCase → kebab-case. */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * A preset with overrides applied, each value converted to its key's type
 * and checked.
 *
 * @param overrides Key → value (strings from the command line, or typed values).
 * @returns The resolved configuration.
 * @throws {ConfigError} For an unknown key or a bad value.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(resolveConfig({ preset: "micro", steps: "30" }).steps, 30);
 * assertThrows(() => resolveConfig({ stepz: "3" }), Error, "Unknown option --stepz");
 * ```
 */
export function resolveConfig(
  overrides: Record<string, unknown> = {},
): ExperimentConfig {
  const presetName = String(overrides.preset ?? "tiny");
  if (!CHOICES.preset!.includes(presetName)) {
    throw new ConfigError(
      `Unknown preset "${presetName}": expected one of ${
        CHOICES.preset!.join(", ")
      }`,
    );
  }
  const config: ExperimentConfig = { ...PRESETS[presetName as PresetName] };
  const keys = Object.keys(config) as (keyof ExperimentConfig)[];
  for (const [rawKey, raw] of Object.entries(overrides)) {
    const key = camel(rawKey) as keyof ExperimentConfig;
    if (!keys.includes(key)) {
      throw new ConfigError(
        `Unknown option --${kebab(rawKey)}: accepted options are ${
          keys.map((k) => `--${kebab(k)}`).join(", ")
        }`,
      );
    }
    const current = config[key];
    let value: unknown = raw;
    if (typeof current === "number") {
      if (raw === true || raw === "") {
        throw new ConfigError(`Option --${kebab(key)} needs a number`);
      }
      value = typeof raw === "number" ? raw : Number(raw);
      if (!Number.isFinite(value as number) || String(raw).trim() === "") {
        throw new ConfigError(
          `Option --${kebab(key)} must be a number, got ${JSON.stringify(raw)}`,
        );
      }
    } else if (typeof current === "boolean") {
      if (raw === true || raw === "true" || raw === "1" || raw === "") {
        value = true;
      } else if (raw === false || raw === "false" || raw === "0") value = false;
      else {throw new ConfigError(
          `Option --${kebab(key)} must be true or false, got ${
            JSON.stringify(raw)
          }`,
        );}
    } else {
      if (raw === true) {
        throw new ConfigError(`Option --${kebab(key)} needs a value`);
      }
      value = String(raw);
    }
    (config as unknown as Record<string, unknown>)[key] = value;
  }
  validate(config);
  config.models = modelList(config).join(",");
  return config;
}

/**
 * The models of `--models`, in training order.
 *
 * @param c The configuration.
 * @returns The model kinds.
 * @throws {ConfigError} For an unknown or repeated name, or an empty list.
 *
 * @example
 * ```ts
 * import { modelList, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(modelList(resolveConfig()), ["ar", "d3pm"]);
 * assertEquals(resolveConfig({ models: "mlm, ar,d3pm" }).models, "ar,d3pm,mlm");
 * assertThrows(() => resolveConfig({ models: "ar,bert" }), Error, "distinct models from ar, d3pm, mlm");
 * ```
 */
export function modelList(c: ExperimentConfig): ModelKind[] {
  const names = c.models.split(",").map((s) => s.trim());
  const accepted = MODEL_KINDS as readonly string[];
  const bad = names.find((n) => !accepted.includes(n));
  if (bad !== undefined || names.length !== new Set(names).size) {
    throw new ConfigError(
      `Option --models must be a comma-separated list of distinct models from ${
        accepted.join(", ")
      }, got "${c.models}"`,
    );
  }
  return MODEL_KINDS.filter((k) => names.includes(k));
}

function validate(c: ExperimentConfig): void {
  validateKinds(c);
  validateRanges(c);
  if (c.judge === "self" && !modelList(c).includes("ar")) {
    throw new ConfigError(
      `Option --judge self needs the AR model in --models (got "${c.models}"): use --judge auto, or add ar`,
    );
  }
}

/** Choices and integer options. */
function validateKinds(c: ExperimentConfig): void {
  for (const [key, choices] of Object.entries(CHOICES)) {
    const v = String(c[key as keyof ExperimentConfig]);
    if (!choices.includes(v)) {
      throw new ConfigError(
        `Option --${kebab(key)} must be one of ${
          choices.join(", ")
        }, got "${v}"`,
      );
    }
  }
  const positive = [
    "seeds",
    "vocabSize",
    "blockLength",
    "nLayer",
    "nHead",
    "dModel",
    "dMlp",
    "steps",
    "batchSize",
    "checkpointEvery",
    "diffusionSteps",
    "elboSamples",
    "genTokens",
    "genBatch",
    "validBlocks",
    "judgeSteps",
    "logEvery",
  ] as const;
  for (const k of positive) {
    if (!Number.isInteger(c[k]) || c[k] < 1) {
      throw new ConfigError(
        `Option --${kebab(k)} must be a positive integer, got ${c[k]}`,
      );
    }
  }
  for (
    const k of [
      "evalBlocks",
      "exactBlocks",
      "samples",
      "warmup",
      "validEvery",
    ] as const
  ) {
    if (!Number.isInteger(c[k]) || c[k] < 0) {
      throw new ConfigError(
        `Option --${kebab(k)} must be an integer ≥ 0, got ${c[k]}`,
      );
    }
  }
}

/** Ranges and relations between options. */
function validateRanges(c: ExperimentConfig): void {
  if (c.blockLength < 2 || c.blockLength > MAX_BLOCK) {
    throw new ConfigError(
      `Option --block-length must be in [2, ${MAX_BLOCK}], got ${c.blockLength}`,
    );
  }
  if (c.tokenizer === "bpe" && (c.vocabSize < 261 || c.vocabSize > 1 << 20)) {
    throw new ConfigError(
      `Option --vocab-size must be in [261, ${
        1 << 20
      }] for a BPE tokenizer (256 bytes + 4 special tokens + at least one merge), got ${c.vocabSize}`,
    );
  }
  if (!(c.clipNorm > 0)) {
    throw new ConfigError(
      `Option --clip-norm must be > 0, got ${c.clipNorm}`,
    );
  }
  if (!(c.weightDecay >= 0)) {
    throw new ConfigError(
      `Option --weight-decay must be ≥ 0, got ${c.weightDecay}`,
    );
  }
  if (!(c.tMin >= 0 && c.tMin < c.tMax && c.tMax <= 1)) {
    throw new ConfigError(
      `Options --t-min and --t-max need 0 ≤ t-min < t-max ≤ 1, got ${c.tMin} and ${c.tMax}`,
    );
  }
  if (c.timesPer === "token" && c.timeConditioning) {
    throw new ConfigError(
      "Option --times-per token needs --time-conditioning false (a time-conditioned denoiser takes one t per row)",
    );
  }
  if (c.judge.trim() === "") {
    throw new ConfigError(
      "Option --judge must be auto, self, or the folder of a finished run",
    );
  }
  if (c.validEvery % c.logEvery !== 0) {
    throw new ConfigError(
      `Option --valid-every (${c.validEvery}) must be a multiple of --log-every (${c.logEvery}): the fused engine validates on logged steps`,
    );
  }
  if (c.engine === "webgpu" && c.diffusionLoss === "d3pm") {
    throw new ConfigError(
      "Option --engine webgpu trains the mdlm objective only (d3pm's loss is a sum of KL terms); use --engine tfjs or --diffusion-loss mdlm",
    );
  }
  if (c.keep === "best" && c.validEvery === 0) {
    throw new ConfigError(
      "Option --keep best needs validations: set --valid-every to a positive number of steps",
    );
  }
  if (c.resume && c.force) {
    throw new ConfigError(
      "Options --resume and --force contradict each other: --resume continues the run in --out, --force starts afresh",
    );
  }
  if (c.dModel % c.nHead !== 0) {
    throw new ConfigError(
      `Option --d-model (${c.dModel}) must be a multiple of --n-head (${c.nHead})`,
    );
  }
  if (!(c.arLr >= 0)) {
    throw new ConfigError(
      `Option --ar-lr must be ≥ 0 (0: the same as --lr), got ${c.arLr}`,
    );
  }
  if (!(c.lr > 0)) {
    throw new ConfigError(`Option --lr must be > 0, got ${c.lr}`);
  }
  if (!(c.alibi >= 0 && Number.isFinite(c.alibi))) {
    throw new ConfigError(
      `Option --alibi must be a number ≥ 0 (0: none), got ${c.alibi}`,
    );
  }
  if (c.alibi > 0 && c.alibiMode === "neighbours" && c.nHead < 2) {
    throw new ConfigError(
      `Option --alibi-mode neighbours needs --n-head ≥ 2 (heads 0 and 1 look left and right), got ${c.nHead}`,
    );
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) {
    throw new ConfigError(
      `Option --dropout must be in [0, 1), got ${c.dropout}`,
    );
  }
  if (!(c.emaDecay >= 0 && c.emaDecay < 1)) {
    throw new ConfigError(
      `Option --ema-decay must be in [0, 1), got ${c.emaDecay}`,
    );
  }
  if (!(c.infillFraction > 0 && c.infillFraction < 1)) {
    throw new ConfigError(
      `Option --infill-fraction must be in (0, 1), got ${c.infillFraction}`,
    );
  }
  if (c.warmup > c.steps) {
    throw new ConfigError(
      `Option --warmup (${c.warmup}) must not exceed --steps (${c.steps})`,
    );
  }
  const steps = genStepList(c);
  if (
    steps.some((s) => !Number.isInteger(s) || s < 1 || s > c.diffusionSteps)
  ) {
    throw new ConfigError(
      `Option --gen-steps must be comma-separated integers in [1, ${c.diffusionSteps}], got "${c.genSteps}"`,
    );
  }
}

/**
 * The D3PM step counts of `genSteps`.
 *
 * @param c The configuration.
 * @returns The step counts, in the given order.
 *
 * @example
 * ```ts
 * import { genStepList, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(genStepList(resolveConfig({ genSteps: "256, 16,64" })), [256, 16, 64]);
 * ```
 */
export function genStepList(c: ExperimentConfig): number[] {
  return c.genSteps.split(",").map((s) => Number(s.trim()));
}
