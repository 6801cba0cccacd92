/**
 * The model configuration: its type, validation and the named presets.
 *
 * @module
 */
import { parameterCount } from "./parameters.ts";

/** Which attention mask the model uses. */
export type ModelKind = "causal" | "bidirectional";

/** How token positions enter the model. */
export type PositionKind = "learned" | "rotary";

/**
 * A complete, validated model configuration. It is saved beside every
 * checkpoint, so it holds everything needed to rebuild the model.
 */
export interface ModelConfig {
  /** `causal` (AR decoder) or `bidirectional` (diffusion denoiser). */
  kind: ModelKind;
  /** Number of token ids, special tokens included. */
  vocabSize: number;
  /** Longest sequence the model accepts (and learned positions cover). */
  contextLength: number;
  /** Number of Transformer blocks. */
  nLayer: number;
  /** Number of attention heads; must divide `dModel`. */
  nHead: number;
  /** Residual stream width. */
  dModel: number;
  /** Hidden width of the MLP (GPT-2: 4 · dModel). */
  dMlp: number;
  /** `learned` (GPT-2 `wpe`) or `rotary` (RoPE on queries and keys). */
  positions: PositionKind;
  /** Whether blocks are modulated by the diffusion time t (adaLN). */
  timeConditioning: boolean;
  /**
   * Width of the time embedding that feeds adaLN (sinusoidal features and
   * its MLP; MDLM uses 128). Present, and unused, when `timeConditioning`
   * is false.
   */
  dTime: number;
  /** Dropout rate in [0, 1) for embeddings, attention and residuals. */
  dropout: number;
  /**
   * ALiBi-style distance penalty, bidirectional models only (absent or 0:
   * none): head h's score for a key |i − j| positions away is lowered by
   * `alibi · 2^(−8h/nHead) · |i − j|`. A prior towards neighbours: a masked
   * position's own input says nothing, so everything it knows comes through
   * attention, which otherwise starts uniform.
   */
  alibi?: number;
  /**
   * Where the ALiBi heads look (absent: `"symmetric"`, as above). With
   * `"neighbours"`, heads 0 and 1 centre their penalty on the left and the
   * right neighbour instead of the position itself — `alibi · |j − (i ∓ 1)|`
   * — and the other heads keep their symmetric slopes. A symmetric head can
   * only blend the two sides (values carry no position), while a masked
   * token's best clue is often its left or right neighbour: these two heads
   * hand the denoiser both from the first step, as a causal model gets its
   * left neighbour. Needs `alibi > 0` and two heads or more.
   */
  alibiMode?: AlibiMode;
  /**
   * Bidirectional models only (absent: false): the logits at position i
   * are read as the prediction of position i + 1, and position 0 keeps its
   * own — DiffuGPT's shift, which lets a denoiser started from a causal
   * model keep what each position learned to predict.
   */
  shift?: boolean;
}

/** Where ALiBi heads look: at the position itself, or heads 0 and 1 at its neighbours. */
export type AlibiMode = "symmetric" | "neighbours";

const KEYS: readonly (keyof ModelConfig)[] = [
  "kind",
  "vocabSize",
  "contextLength",
  "nLayer",
  "nHead",
  "dModel",
  "dMlp",
  "positions",
  "timeConditioning",
  "dTime",
  "dropout",
];

function fail(message: string): never {
  throw new RangeError(`Invalid model config: ${message}`);
}

function positiveInteger(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    fail(`${key} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Check that a value is a complete model configuration, e.g. one parsed from
 * a `config.json`. Unknown and missing keys are errors.
 *
 * @param value Anything.
 * @returns The same configuration, typed (a fresh object).
 * @throws {RangeError} A one-line message naming the bad key and what is accepted.
 *
 * @example
 * ```ts
 * import { preset, validateConfig } from "@d3pm/transformer";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const config = preset("tiny");
 * assertEquals(validateConfig(JSON.parse(JSON.stringify(config))), config);
 * assertThrows(() => validateConfig({ ...config, nHed: 4 }), RangeError, "unknown key");
 * ```
 */
export function validateConfig(value: unknown): ModelConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(`expected an object, got ${JSON.stringify(value)}`);
  }
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (
      !(KEYS as readonly string[]).includes(key) && key !== "alibi" &&
      key !== "alibiMode" && key !== "shift"
    ) {
      fail(
        `unknown key "${key}"; accepted keys: ${
          KEYS.join(", ")
        }, alibi, alibiMode, shift`,
      );
    }
  }
  for (const key of KEYS) {
    if (!(key in o)) fail(`missing key "${key}"`);
  }
  if (o.kind !== "causal" && o.kind !== "bidirectional") {
    fail(
      `kind must be "causal" or "bidirectional", got ${JSON.stringify(o.kind)}`,
    );
  }
  if (o.positions !== "learned" && o.positions !== "rotary") {
    fail(
      `positions must be "learned" or "rotary", got ${
        JSON.stringify(o.positions)
      }`,
    );
  }
  if (typeof o.timeConditioning !== "boolean") {
    fail(
      `timeConditioning must be a boolean, got ${
        JSON.stringify(o.timeConditioning)
      }`,
    );
  }
  const config: ModelConfig = {
    kind: o.kind,
    vocabSize: positiveInteger(o, "vocabSize"),
    contextLength: positiveInteger(o, "contextLength"),
    nLayer: positiveInteger(o, "nLayer"),
    nHead: positiveInteger(o, "nHead"),
    dModel: positiveInteger(o, "dModel"),
    dMlp: positiveInteger(o, "dMlp"),
    positions: o.positions,
    timeConditioning: o.timeConditioning,
    dTime: positiveInteger(o, "dTime"),
    dropout: o.dropout as number,
  };
  if (
    typeof o.dropout !== "number" || !(o.dropout >= 0 && o.dropout < 1)
  ) {
    fail(
      `dropout must be a number in [0, 1), got ${JSON.stringify(o.dropout)}`,
    );
  }
  if (config.dModel % config.nHead !== 0) {
    fail(
      `nHead must divide dModel, got dModel ${config.dModel} and nHead ${config.nHead}`,
    );
  }
  const headDim = config.dModel / config.nHead;
  if (config.positions === "rotary" && headDim % 2 !== 0) {
    fail(
      `rotary positions need an even head size dModel/nHead, got ${headDim}`,
    );
  }
  if (config.dTime % 2 !== 0) {
    fail(
      `dTime must be even (sine and cosine halves), got ${config.dTime}`,
    );
  }
  checkSizes(config);
  if (o.alibi !== undefined) {
    if (
      typeof o.alibi !== "number" || !Number.isFinite(o.alibi) || o.alibi < 0
    ) {
      fail(`alibi must be a number ≥ 0, got ${JSON.stringify(o.alibi)}`);
    }
    if (o.alibi > 0 && config.kind !== "bidirectional") {
      fail(
        `alibi is implemented for bidirectional models only, got kind ${config.kind}`,
      );
    }
    if (o.alibi > 0) config.alibi = o.alibi;
  }
  if (o.alibiMode !== undefined) {
    if (o.alibiMode !== "symmetric" && o.alibiMode !== "neighbours") {
      fail(
        `alibiMode must be "symmetric" or "neighbours", got ${
          JSON.stringify(o.alibiMode)
        }`,
      );
    }
    if (o.alibiMode === "neighbours") {
      if (!config.alibi) {
        fail(`alibiMode "neighbours" needs alibi > 0 (its slope)`);
      }
      if (config.nHead < 2) {
        fail(
          `alibiMode "neighbours" needs two heads or more, got nHead ${config.nHead}`,
        );
      }
      config.alibiMode = "neighbours";
    }
  }
  if (o.shift !== undefined) {
    if (typeof o.shift !== "boolean") {
      fail(`shift must be true or false, got ${JSON.stringify(o.shift)}`);
    }
    if (o.shift && config.kind !== "bidirectional") {
      fail(`shift is for bidirectional models only, got kind ${config.kind}`);
    }
    if (o.shift) config.shift = true;
  }
  return config;
}

/** Most values in one weight matrix (one typed array), and most parameters. */
const MAX_MATRIX = 2 ** 31 - 1;
const MAX_PARAMETERS = 2 ** 33;

// Refused here, not after allocating gigabytes of weights: ids are int32, a
// weight matrix is one typed array, and 2^33 float32 parameters are 32 GiB
// before gradients and AdamW moments.
function checkSizes(c: ModelConfig): void {
  if (c.vocabSize > MAX_MATRIX) {
    fail(
      `vocabSize must be at most 2^31 − 1 (ids are int32), got ${c.vocabSize}`,
    );
  }
  const d = c.dModel;
  const matrices: [string, number][] = [
    ["vocabSize × dModel", c.vocabSize * d],
    [
      "contextLength × dModel",
      c.positions === "learned" ? c.contextLength * d : 0,
    ],
    ["dModel × 3·dModel", 3 * d * d],
    ["dModel × dMlp", d * c.dMlp],
    ["dTime × 6·dModel", c.timeConditioning ? c.dTime * 6 * d : 0],
  ];
  for (const [name, size] of matrices) {
    if (size > MAX_MATRIX) {
      fail(
        `the ${name} weight would hold ${size} values, more than 2^31 − 1 in one matrix; use smaller sizes`,
      );
    }
  }
  const n = parameterCount(c);
  if (n > MAX_PARAMETERS) {
    fail(
      `the model would have ${n} parameters, more than 2^33 (32 GiB of float32 weights); use fewer layers or smaller sizes`,
    );
  }
}

/** Names of the built-in presets (the experiment's presets use the same models). */
export type PresetName = "micro" | "tiny" | "small" | "paper";

/**
 * The preset names, smallest first.
 *
 * @example
 * ```ts
 * import { parameterCount, preset, PRESET_NAMES } from "@d3pm/transformer";
 * import { assert, assertEquals } from "@std/assert";
 * assertEquals(PRESET_NAMES, ["micro", "tiny", "small", "paper"]);
 * const sizes = PRESET_NAMES.map((name) => parameterCount(preset(name)));
 * assert(sizes.every((n, i) => i === 0 || n > sizes[i - 1]));
 * ```
 */
export const PRESET_NAMES: readonly PresetName[] = [
  "micro",
  "tiny",
  "small",
  "paper",
];

const PRESETS: Record<PresetName, ModelConfig> = {
  // Seconds: tests of the wiring, on bytes.
  micro: {
    kind: "causal",
    vocabSize: 260,
    contextLength: 32,
    nLayer: 1,
    nHead: 2,
    dModel: 64,
    dMlp: 128,
    positions: "rotary",
    timeConditioning: false,
    dTime: 128,
    dropout: 0,
  },
  // 2-core CPU, minutes: the default experiment. Rotary positions: the
  // denoiser learns to use its neighbours much sooner with relative
  // positions (MDLM uses them too).
  tiny: {
    kind: "causal",
    vocabSize: 4096,
    contextLength: 128,
    nLayer: 4,
    nHead: 4,
    dModel: 128,
    dMlp: 512,
    positions: "rotary",
    timeConditioning: false,
    dTime: 128,
    dropout: 0,
  },
  // CPU, about an hour.
  small: {
    kind: "causal",
    vocabSize: 8192,
    contextLength: 256,
    nLayer: 6,
    nHead: 6,
    dModel: 384,
    dMlp: 1536,
    positions: "rotary",
    timeConditioning: false,
    dTime: 128,
    dropout: 0,
  },
  // The thesis setting: GPT-2 small with the GPT-2 vocabulary (50257) plus
  // this project's 4 special tokens, learned positions.
  paper: {
    kind: "causal",
    vocabSize: 50261,
    contextLength: 1024,
    nLayer: 12,
    nHead: 12,
    dModel: 768,
    dMlp: 3072,
    positions: "learned",
    timeConditioning: false,
    dTime: 128,
    dropout: 0.1,
  },
};

/**
 * A preset configuration with some keys overridden (e.g. the tokenizer's
 * vocabulary size, or `kind: "bidirectional"` for the denoiser).
 *
 * | preset | layers | dModel | heads | context | vocab | parameters (causal) |
 * |---|---|---|---|---|---|---|
 * | `micro` | 1 | 64 | 2 | 32 | 260 (bytes) | 50,240 |
 * | `tiny` | 4 | 128 | 4 | 128 | 4096 | 1,317,632 |
 * | `small` | 6 | 384 | 6 | 256 | 8192 | 13,793,280 |
 * | `paper` | 12 | 768 | 12 | 1024 | 50261 | 124,442,880 |
 *
 * `micro`, `tiny` and `small` use rotary positions, `paper` learned ones
 * (GPT-2). The experiment's presets of the same names train these models.
 *
 * @param name `micro`, `tiny`, `small` or `paper`.
 * @param overrides Keys to replace; the result is validated.
 * @returns A fresh, validated configuration.
 *
 * @example
 * ```ts
 * import { preset } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * const denoiser = preset("tiny", { kind: "bidirectional", timeConditioning: true });
 * assertEquals(denoiser.nLayer, 4);
 * assertEquals(denoiser.kind, "bidirectional");
 * ```
 */
export function preset(
  name: PresetName,
  overrides: Partial<ModelConfig> = {},
): ModelConfig {
  if (!Object.hasOwn(PRESETS, name)) {
    throw new RangeError(
      `Unknown preset "${name}"; accepted presets: ${PRESET_NAMES.join(", ")}`,
    );
  }
  return validateConfig({ ...PRESETS[name], ...overrides });
}
