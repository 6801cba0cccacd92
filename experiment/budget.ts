/**
 * What a run will cost, from its resolved configuration alone, before
 * anything is allocated: the peak memory of training and evaluating one
 * model at a time (weights, optimiser state, activations, logits), and the
 * work (floating-point operations) of training and of evaluation. A run
 * that would not fit in memory, or whose evaluation would dwarf its
 * training, is refused with the figure and the option to change.
 *
 * @module
 */
import { formatBytes } from "@d3pm/core";
import { parameterShapes } from "@d3pm/transformer";
import { modelList } from "./config.ts";
import { ConfigError, type ExperimentConfig, genStepList } from "./options.ts";
import { contestantOf } from "./registry.ts";

/** One part of an estimate, with the options that set its size. */
export interface EstimatePart {
  /** What it is, e.g. `activations of a training step`. */
  what: string;
  /** Bytes, or floating-point operations. */
  amount: number;
  /** The options to change to make it smaller, as flags. */
  options: string[];
}

/** The estimate of a run. */
export interface RunEstimate {
  /** The largest number of ids the tokenizer can have. */
  vocabSize: number;
  /** Peak memory of one model's training or evaluation, by part (bytes). */
  memory: EstimatePart[];
  /** Work of training every model of every seed (FLOPs). */
  training: EstimatePart[];
  /** Work of evaluating and generating with them (FLOPs). */
  evaluation: EstimatePart[];
}

/** Ids of the fixed tokenizers (bytes or GPT-2's, and 4 special ids). */
const FIXED_VOCAB = { byte: 260, gpt2: 50261 } as const;

/** The memory part of a bound's draws (what a scoring tool allocates). */
const BOUND_DRAWS = "the test bound's draws (all samples of 8 blocks at once)";

/** Memory the tfjs path holds beyond the estimate (the runtime, the data). */
const OVERHEAD = 512 << 20;

/**
 * Bytes of memory a corpus id costs a run, train, valid and test alike: its
 * 4-byte id, packed into blocks in the same buffer (`inPlace`), rounded
 * up. Measured (peak RSS of `--preset micro --tokenizer byte --steps 20`,
 * 64 against 128 MiB of plain text): 4.1 bytes an id tokenizing, 4.3 from
 * the token cache (see docs/run-folder.md).
 *
 * @example
 * ```ts
 * import { checkBudget, CORPUS_ID_BYTES, resolveConfig } from "@d3pm/experiment";
 * import { assertThrows } from "@std/assert";
 * const c = resolveConfig({ preset: "micro" });
 * const ids = 2 ** 32 / CORPUS_ID_BYTES; // 4 GiB of corpus
 * assertThrows(() => checkBudget(c, { available: 2 ** 32, corpusIds: ids }), Error, "--data");
 * ```
 */
export const CORPUS_ID_BYTES = 5;

/** Evaluation may cost this many times the training before it is refused... */
const EVALUATION_RATIO = 10;
/** ...and at least this many FLOPs (minutes on a CPU) are always allowed. */
const EVALUATION_FLOOR = 1e12;

const sum = (parts: readonly EstimatePart[]) =>
  parts.reduce((s, p) => s + p.amount, 0);

/**
 * Estimate a run's peak memory and its work from its configuration.
 *
 * @param c The resolved configuration.
 * @param options The engine (default tfjs: everything in host memory).
 * @returns The parts of memory, training and evaluation.
 *
 * @example Memory grows with the batch, work with the steps
 * ```ts
 * import { estimateRun, resolveConfig } from "@d3pm/experiment";
 * import { assert } from "@std/assert";
 * const c = resolveConfig({ preset: "micro", judge: "self" });
 * const peak = (e: ReturnType<typeof estimateRun>) => e.memory.reduce((s, p) => s + p.amount, 0);
 * assert(peak(estimateRun({ ...c, batchSize: 64 })) > peak(estimateRun(c)));
 * const work = (e: ReturnType<typeof estimateRun>) => e.training.reduce((s, p) => s + p.amount, 0);
 * assert(work(estimateRun({ ...c, steps: 2 * c.steps })) > 1.9 * work(estimateRun(c)));
 * ```
 */
export function estimateRun(
  c: ExperimentConfig,
  options: { engine?: "tfjs" | "webgpu" | "cpu" } = {},
): RunEstimate {
  const V = c.tokenizer === "bpe" ? c.vocabSize : FIXED_VOCAB[c.tokenizer];
  const T = c.blockLength, d = c.dModel, L = c.nLayer;
  const kinds = modelList(c);
  const params = largestModel(c, V, kinds);
  // Block diffusion reads [x_t ; x_0]: twice the positions per pass.
  const streams = Math.max(...kinds.map((k) => contestantOf(k).streams ?? 1));
  const memory = memoryParts(c, V, params, streams);
  // On the fused engine activations and logits live in GPU memory (its
  // arena is planned by the engine); the host holds the weights.
  if (options.engine === "webgpu") memory.splice(1, 3);
  // A forward pass over one token: two FLOPs per weight it uses, and the
  // attention over the block.
  const forward = 2 * params + 2 * L * T * d;
  // The same per token of the block for a contestant reading s streams:
  // s times the positions, each attending to s times the keys.
  const forwardOf = (kind: string) => {
    const s = contestantOf(kind).streams ?? 1;
    return s * 2 * params + s * s * 2 * L * T * d;
  };
  return {
    vocabSize: V,
    memory,
    training: trainingParts(c, forward, forwardOf, kinds),
    evaluation: evaluationParts(c, forward, forwardOf, kinds),
  };
}

/** The parameters of the run's largest model (the D3PM's may carry a time MLP). */
function largestModel(
  c: ExperimentConfig,
  V: number,
  kinds: readonly string[],
): number {
  let params = 0;
  for (const kind of kinds) {
    let p = 0;
    for (
      const shape of parameterShapes(contestantOf(kind).modelConfig(c, V))
        .values()
    ) {
      p += shape.reduce((a, b) => a * b, 1);
    }
    params = Math.max(params, p);
  }
  return params;
}

/** Peak memory of one model's training or evaluation on the tfjs path, by part. */
function memoryParts(
  c: ExperimentConfig,
  V: number,
  params: number,
  streams: number,
): EstimatePart[] {
  const T = c.blockLength, d = c.dModel, L = c.nLayer, H = c.nHead;
  // Floats kept per token and layer for the backward pass: the norms, q, k,
  // v, the attention output, the residuals and the MLP's two widths. tfjs
  // keeps several copies of each (its tape, broadcasts, gradients): the
  // factors below are measured (a micro run at batch 2,048 peaked at 3.0
  // GB of RSS against 3.0 GB estimated).
  const perToken = L * (10 * d + 2 * c.dMlp);
  // The exact bound scores its blocks in one batch.
  const rows = Math.max(c.batchSize, c.genBatch, c.exactBlocks);
  return [
    {
      what:
        "weights, gradients, AdamW moments, EMA and copies for validation and judging",
      amount: 4 * 8 * params,
      options: ["--n-layer", "--d-model", "--d-mlp", "--vocab-size"],
    },
    {
      what: "activations of a training step",
      amount: 4 * 7 * c.batchSize * streams * T * perToken,
      options: ["--batch-size", "--block-length", "--n-layer"],
    },
    {
      what: "attention scores and probabilities",
      amount: 4 * 10 * rows * H * (streams * T) ** 2 * L,
      options: [
        "--block-length",
        "--batch-size",
        "--gen-batch",
        "--exact-blocks",
      ],
    },
    {
      what: "logits, their softmax and gradient",
      amount: 4 * 10 * rows * T * V,
      options: [
        "--batch-size",
        "--gen-batch",
        "--exact-blocks",
        "--vocab-size",
      ],
    },
    {
      // A bound draws all of a batch of blocks' samples before its passes
      // (eval's overBlocks: 8 blocks; measured at about 24 bytes a token).
      what: BOUND_DRAWS,
      amount: 24 * 8 * streams * T * c.elboSamples,
      options: ["--elbo-samples"],
    },
    {
      what: "the diffusion process's tables and the generated tokens",
      amount: 8 * 4 * c.diffusionSteps + 4 * c.genTokens * 2,
      options: ["--diffusion-steps", "--gen-tokens"],
    },
  ];
}

/** Work of training every model of every seed, and the judge. */
function trainingParts(
  c: ExperimentConfig,
  forward: number,
  forwardOf: (kind: string) => number,
  kinds: readonly string[],
): EstimatePart[] {
  const T = c.blockLength;
  const runs = c.seeds;
  const perModel = kinds.reduce((s, k) => s + forwardOf(k), 0);
  const training: EstimatePart[] = [{
    what: "training",
    amount: 3 * perModel * c.steps * c.batchSize * T * runs,
    options: ["--steps", "--batch-size", "--seeds"],
  }];
  if (c.judge === "auto") {
    training.push({
      what: "training the judge (once; cached)",
      amount: 3 * forward * c.judgeSteps * c.batchSize * T,
      options: ["--judge-steps"],
    });
  }
  return training;
}

/** Work of evaluating every model of every seed and generating with it. */
function evaluationParts(
  c: ExperimentConfig,
  forward: number,
  forwardOf: (kind: string) => number,
  kinds: readonly string[],
): EstimatePart[] {
  const T = c.blockLength;
  const runs = c.seeds;
  // Only the contestants whose evaluation runs the exact discrete bound pay
  // its passes (not the MLM, nor a staggered D3PM).
  const exact = kinds.filter((k) => contestantOf(k).exactBound?.(c)).length;
  const evalBlocks = c.evalBlocks > 0 ? c.evalBlocks : 1024;
  const validations = c.validEvery > 0
    ? Math.ceil(c.steps / c.validEvery) + 1
    : 0;
  const steps = genStepList(c).reduce((a, b) => a + b, 0);
  // Passes of a bound: one per draw; of an exact NLL: one.
  const scoring = kinds.reduce(
    (s, k) => s + forwardOf(k) * (contestantOf(k).bound ? c.elboSamples : 1),
    0,
  );
  const generating = kinds.reduce((s, k) => {
    const x = contestantOf(k);
    return s + forward *
        (x.generationPasses?.(c) ?? (x.unmasking ? steps : 1));
  }, 0);
  return [
    {
      what: "the exact discrete bound (a forward pass per diffusion step)",
      amount: forward * T * c.exactBlocks * c.diffusionSteps * exact * runs,
      options: ["--exact-blocks", "--diffusion-steps"],
    },
    {
      what: "the test bound",
      amount: T * evalBlocks * scoring * runs,
      options: ["--eval-blocks", "--elbo-samples"],
    },
    {
      what: "validation",
      amount: T * c.validBlocks * validations * scoring * runs,
      options: ["--valid-blocks", "--valid-every"],
    },
    {
      what: "generation (a forward pass of the block per unmasking step)",
      // The timed tokens, or more: --gen-samples rows judged at each count.
      amount: Math.max(c.genTokens, c.genSamples * T) * generating * runs,
      options: ["--gen-tokens", "--gen-samples", "--gen-steps"],
    },
  ];
}

/** Options of {@linkcode checkBudget}. */
export interface BudgetOptions {
  /** Bytes of memory the run may use (default: what the system has available now). */
  available?: number;
  /** The training engine (default tfjs: activations in host memory). */
  engine?: "tfjs" | "webgpu" | "cpu";
  /**
   * Check memory only (a tool that evaluates a trained run: no training
   * to weigh its work against).
   */
  memoryOnly?: boolean;
  /**
   * The ids of the tokenized corpus, all splits (known once it is read):
   * {@linkcode CORPUS_ID_BYTES} each are added to the estimate, and a run
   * over the budget is refused naming `--data`.
   */
  corpusIds?: number;
  /**
   * `corpusIds` counts only the splits read so far (a check before the
   * next one is held): a refusal says "at least" that many.
   */
  corpusPartial?: boolean;
  /**
   * The tool's own flags for the run's options a refusal names
   * (`deno task evaluate`: `--elbo-samples` is its `--samples`).
   */
  flags?: Readonly<Record<string, string>>;
}

/**
 * Refuse a run that would not fit in `available` bytes, or whose evaluation
 * would cost more than ten times its training (and more than 10¹² FLOPs);
 * otherwise return one line that states the estimate.
 *
 * @param c The resolved configuration.
 * @param options The memory the run may use and its engine.
 * @returns A line for the log: peak memory and work.
 * @throws {ConfigError} Naming the figure, the largest part and the options
 *   that shrink it.
 *
 * @example
 * ```ts
 * import { checkBudget, ConfigError, resolveConfig } from "@d3pm/experiment";
 * import { assertStringIncludes, assertThrows } from "@std/assert";
 * const c = resolveConfig({ preset: "micro" });
 * assertStringIncludes(checkBudget(c, { available: 8 * 2 ** 30 }), "estimate: peak memory");
 * assertThrows(
 *   () => checkBudget({ ...c, batchSize: 60000 }, { available: 8 * 2 ** 30 }),
 *   ConfigError,
 *   "lower --batch-size",
 * );
 * ```
 */
export function checkBudget(
  c: ExperimentConfig,
  options: BudgetOptions = {},
): string {
  const available = options.available ?? availableMemory();
  const e = estimateRun(c, options);
  // A scoring tool holds one model's weights and a bound's draws.
  const memory = options.memoryOnly
    ? [
      { ...e.memory[0], what: "weights", amount: e.memory[0].amount / 8 },
      ...e.memory.filter((p) => p.what === BOUND_DRAWS),
    ]
    : e.memory;
  const corpus = (options.corpusIds ?? 0) * CORPUS_ID_BYTES;
  const peak = sum(memory) + OVERHEAD + corpus;
  const largest = (parts: EstimatePart[]) =>
    parts.reduce((a, b) => b.amount > a.amount ? b : a);
  const named = (part: EstimatePart) =>
    part.options.map((o) => options.flags?.[o] ?? o).join(" or ");
  if (options.corpusIds !== undefined && peak > available) {
    throw corpusRefusal(c, {
      ids: options.corpusIds,
      partial: options.corpusPartial ?? false,
      corpus,
      peak,
      available,
      other: { ...largest(memory), named: named(largest(memory)) },
    });
  }
  if (peak > available) {
    const part = largest(memory);
    throw new ConfigError(
      `The run would need about ${formatBytes(peak)} of memory, more than the ${
        formatBytes(available)
      } available, mostly for ${part.what} (${
        formatBytes(part.amount)
      }): lower ${named(part)}`,
    );
  }
  if (options.memoryOnly) {
    return `estimate: peak memory about ${formatBytes(peak)} (${
      formatBytes(available)
    } available)`;
  }
  const train = sum(e.training);
  const evaluate = sum(e.evaluation);
  if (evaluate > Math.max(EVALUATION_RATIO * train, EVALUATION_FLOOR)) {
    const part = largest(e.evaluation);
    throw new ConfigError(
      `The run's evaluation would cost ${
        (evaluate / train).toFixed(0)
      } times its training (${flops(evaluate)} against ${
        flops(train)
      }), mostly ${part.what} (${flops(part.amount)}): lower ${
        part.options.join(" or ")
      }`,
    );
  }
  const withCorpus = options.corpusIds === undefined
    ? ""
    : ` with the corpus (${options.corpusIds} ids, ${formatBytes(corpus)})`;
  return `estimate: peak memory about ${formatBytes(peak)}${withCorpus} (${
    formatBytes(available)
  } available); ${flops(train)} of training, ${flops(evaluate)} of evaluation`;
}

/**
 * The refusal of a run whose tokenized corpus tips it over the memory
 * available: the corpus and the largest other part, each with what shrinks
 * it, the larger first (a corpus of 1% of the total is no remedy).
 */
function corpusRefusal(
  c: ExperimentConfig,
  f: {
    ids: number;
    partial: boolean;
    corpus: number;
    peak: number;
    available: number;
    other: EstimatePart & { named: string };
  },
): ConfigError {
  const smaller = c.data
    ? "use a smaller corpus than --data"
    : "use a smaller corpus (--data DIR)";
  const lower = `lower ${f.other.named}`;
  const remedies = f.corpus >= f.other.amount
    ? [smaller, lower]
    : [lower, smaller];
  return new ConfigError(
    `The corpus of ${
      c.data ? `--data ${c.data}` : "the embedded WikiText-2"
    } is ${f.partial ? "at least " : ""}${f.ids} ids${
      f.partial ? " (the splits read so far)" : ""
    }, about ${
      formatBytes(f.corpus)
    } of memory at ${CORPUS_ID_BYTES} bytes an id, which brings the run to about ${
      formatBytes(f.peak)
    }, more than the ${
      formatBytes(f.available)
    } available; besides the corpus, most is for ${f.other.what} (${
      formatBytes(f.other.amount)
    }): ${remedies.join(", ")}, or free memory`,
  );
}

function flops(x: number): string {
  return formatFlops(x, { decimals: 1 });
}

/** How many digits {@linkcode formatFlops} writes: significant or decimals. */
export type FlopsDigits = { significant: number } | { decimals: number };

/**
 * A count of floating-point operations with an SI prefix: `4.05 TFLOP`.
 * The unit is the one the rounded figure fits below 1000 in, so 999.96
 * kFLOP at three significant digits is `1.00 MFLOP`, never `1.00e+3 kFLOP`,
 * and 950 at one significant digit is `1 kFLOP` (rounded once, not to 1000
 * and then to `0.9`). Units go up to Y (10^24); past 999.5 YFLOP the count
 * is written as a power of ten in FLOP (`1.00e+27 FLOP`), or at decimals as
 * YFLOP over 1000.
 *
 * @param x The count (not finite: `? FLOP`).
 * @param digits Significant digits (default 3) or decimals.
 * @returns The count for people.
 *
 * @example
 * ```ts
 * import { formatFlops } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(formatFlops(4.054e12), "4.05 TFLOP");
 * assertEquals(formatFlops(999_960), "1.00 MFLOP");
 * assertEquals(formatFlops(999.5e18), "1.00 ZFLOP");
 * assertEquals(formatFlops(950, { significant: 1 }), "1 kFLOP");
 * assertEquals(formatFlops(12_345, { decimals: 1 }), "12.3 kFLOP");
 * assertEquals(formatFlops(NaN), "? FLOP");
 * ```
 */
export function formatFlops(
  x: number,
  digits: FlopsDigits = { significant: 3 },
): string {
  if (!Number.isFinite(x)) return "? FLOP";
  const units = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"];
  if ("significant" in digits) {
    // Round once; the unit follows the rounded figure's power of ten.
    const rounded = x.toExponential(digits.significant - 1); // d.dd…e±E
    const power = Number(rounded.slice(rounded.indexOf("e") + 1));
    const u = Math.max(0, Math.floor(power / 3));
    if (u >= units.length) return `${rounded} FLOP`;
    const figure = Number(rounded) / 1000 ** u;
    // A figure with more integer digits than significant ones (900 at one)
    // is whole already: toPrecision would write it "9e+2".
    const text = Math.abs(figure) >= 10 ** digits.significant
      ? figure.toFixed(0)
      : figure.toPrecision(digits.significant);
    return `${text} ${units[u]}FLOP`;
  }
  // Decimals count within the unit: the next unit while the figure as
  // written reaches 1000 (999.96 → "1000.0"); 1 - 0.5e-(d+3) rounds to 1.
  let u = 0;
  while (
    Math.abs(Number(x.toFixed(digits.decimals))) >= 1000 &&
    u < units.length - 1
  ) {
    x /= 1000;
    u++;
  }
  return `${x.toFixed(digits.decimals)} ${units[u]}FLOP`;
}

/**
 * Memory available to a new allocation now (the system's view).
 *
 * @returns Bytes; infinite where the system does not say.
 *
 * @example
 * ```ts
 * import { availableMemory } from "@d3pm/experiment";
 * import { assert } from "@std/assert";
 * assert(availableMemory() > 0);
 * ```
 */
export function availableMemory(): number {
  try {
    return Deno.systemMemoryInfo().available;
  } catch {
    return Number.POSITIVE_INFINITY; // unknown: no refusal on memory
  }
}
