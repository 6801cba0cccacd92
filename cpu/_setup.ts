// Setting the CPU engine up: the options checked against the config, the
// initial weights (seeded as the tfjs Transformer's), the kernel memory
// sized once for everything the engine will hold — parameters, the training
// state and arena, one inference region that serves scoring, forward passes
// and a causal model's decode plan — the kernels started on it, and the
// state built, the kernels released again if that fails. Private.

import {
  initialWeights,
  type ModelConfig,
  validateConfig,
} from "@d3pm/transformer/init";
import {
  checkEngineOptions,
  type EngineShape,
  parameterTable,
  planArena,
  planDecode,
  planInts,
} from "@d3pm/webgpu/plan";
import { createCpuKernels } from "./kernels.ts";
import { type EngineSettings, EngineState, fail } from "./_state.ts";
import type { CpuTransformerOptions } from "./engine.ts";

// Most floats of logits a forward pass writes at once.
const LOGITS_FLOATS = 1 << 21;

// Words a k.floats(n) takes (64-byte alignment).
const words = (n: number) => Math.ceil(n / 16) * 16 + 16;

/**
 * Validate the config and options, size the kernel memory, start the
 * kernels and build the state on them.
 */
export async function openEngine(
  config: ModelConfig,
  options: CpuTransformerOptions,
): Promise<{ state: EngineState; shape: EngineShape }> {
  const c = validateConfig(config);
  const shape = check(c, options);
  const weights = options.weights ?? initialWeights(c, options.seed ?? 0);
  const table = parameterTable(c);
  const P = table.size, H = c.nHead, Tm = c.contextLength;
  const chunkFloats = (options.chunkRows ?? 128) * c.vocabSize;
  const SR = options.scoreRows ?? 16;
  // The region serves scoring and forward passes of `SR` rows, and a
  // causal model's decode plan of at least one row at full length: its KV
  // cache grows with the layers, the score plan's activations do not.
  const decode = c.kind === "causal" && !c.timeConditioning
    ? planDecode(c, 1, Tm, chunkFloats)
    : undefined;
  const evalAct = Math.max(
    planArena(c, SR, Tm, "score", chunkFloats).size,
    decode?.arena.size ?? 0,
  );
  const evalInts = Math.max(
    planInts(SR * Tm).size,
    decode?.ints.size ?? 0,
  );
  const probs = SR * H * Tm * Tm;
  const fr = forwardRows(c, SR, Tm);
  const logits = fr * Tm * c.vocabSize;
  let total = words(P) + words(evalAct) + words(evalInts) + words(probs) +
    words(logits);
  if (!options.evaluationOnly) {
    const B = shape.batchSize, T = shape.length;
    const att = B * H * T * T;
    total += 3 * words(P) + (options.emaDecay !== undefined ? words(P) : 0);
    total += words(planArena(c, B, T, "training", chunkFloats).size);
    total += words(planInts(B * T).size) + words(c.nLayer * att) +
      words(att) + (c.dropout > 0 ? words(c.nLayer * att) : 0);
  }
  // The norm's partial sums and the kernels' own scratch.
  total += words(Math.ceil(P / 16384) + 1) + (1 << 14);
  const k = await createCpuKernels({
    words: total,
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
  });
  try {
    const settings: EngineSettings = {
      seed: (options.seed ?? 0) >>> 0,
      adam: {
        beta1: options.adamw?.beta1 ?? 0.9,
        beta2: options.adamw?.beta2 ?? 0.95,
        eps: options.adamw?.eps ?? 1e-8,
        weightDecay: options.adamw?.weightDecay ?? 0.1,
      },
      exclude: options.excludeToken ?? 0xffffffff,
      chunkFloats,
      scoreRows: SR,
      clipNorm: options.clipNorm ?? 1,
      emaDecay: options.emaDecay,
      evaluationOnly: options.evaluationOnly ?? false,
    };
    const state = new EngineState(c, k, table, settings, shape, weights, {
      evalAct,
      evalInts,
      probs,
      logits,
    });
    return { state, shape };
  } catch (e) {
    k.dispose();
    throw e;
  }
}

// Rows of a forward pass whose logits fit LOGITS_FLOATS (at least one).
function forwardRows(c: ModelConfig, rows: number, length: number): number {
  return Math.max(
    1,
    Math.min(rows, Math.floor(LOGITS_FLOATS / (length * c.vocabSize))),
  );
}

// Check the options against the config; returns the training shape.
function check(c: ModelConfig, o: CpuTransformerOptions): EngineShape {
  const shape = checkEngineOptions(c, o, fail);
  for (const key of ["chunkRows", "scoreRows"] as const) {
    const v = o[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
      fail(`${key} must be a positive integer, got ${v}`);
    }
  }
  return shape;
}
