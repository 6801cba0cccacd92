// The seeded models, shapes and tfjs references of the engines' tests, with
// no device: the parity suite (webgpu/_parity_suite.ts) and the CPU
// engine's tests import them without requesting a GPU. Private.

import { prng, type StoredTensor, tokenProbabilities } from "@d3pm/core";
import { chiSquare, type Fit } from "../core/_test_stats.ts";
import * as tf from "@tensorflow/tfjs";
import {
  type ModelConfig,
  Transformer,
  validateConfig,
} from "@d3pm/transformer";

/**
 * Small odd shapes: B 2, T 7, d 24, 3 heads, V 37, 2 layers, dMlp 40;
 * `extra` overrides any of them.
 */
export function parityConfig(
  kind: "causal" | "bidirectional",
  positions: "learned" | "rotary",
  extra: Partial<ModelConfig> = {},
): ModelConfig {
  return validateConfig({
    kind,
    vocabSize: 37,
    contextLength: 9,
    nLayer: 2,
    nHead: 3,
    dModel: 24,
    dMlp: 40,
    positions,
    timeConditioning: false,
    dTime: 8,
    dropout: 0,
    ...extra,
  });
}

/** Seeded ids in [0, vocab). */
export function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const rng = prng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(rng.next() * vocab));
}

/**
 * Largest |a − b| over max |b|, the relative error used by every parity
 * assertion (per tensor).
 */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new Error(`length ${a.length} vs ${b.length}`);
  }
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

/**
 * A tfjs model (on `cpu`) with weights moved far from GPT-2's init — so that
 * its outputs depend on the context (the init with tied embeddings repeats
 * the input token) — and the same weights for an engine.
 */
export async function perturbedModel(
  config: ModelConfig,
  seed: number,
): Promise<{ model: Transformer; weights: Map<string, StoredTensor> }> {
  await tf.setBackend("cpu");
  const model = new Transformer(config, { seed });
  const weights = new Map<string, StoredTensor>();
  const rng = prng(seed + 1);
  for (const [name, v] of model.variables) {
    const data = Float32Array.from(
      v.dataSync(),
      (x) => x + (rng.next() - 0.5) * 0.8,
    );
    v.assign(tf.tensor(data, v.shape));
    weights.set(name, { shape: [...v.shape], data });
  }
  return { model, weights };
}

/**
 * Greedy rows after `start` and `prefix`, recomputing tfjs on each prefix;
 * `exclude` (≥ 0) is never picked.
 */
export function greedyAfter(
  model: Transformer,
  b: number,
  l: number,
  start: number,
  prefix: number[],
  exclude = -1,
): Int32Array {
  const out = new Int32Array(b * l);
  for (let r = 0; r < b; r++) {
    out[r * l] = start;
    out.set(prefix, r * l + 1);
  }
  for (let i = 1 + prefix.length; i < l; i++) {
    const rows = new Int32Array(b * i);
    for (let r = 0; r < b; r++) rows.set(out.subarray(r * l, r * l + i), r * i);
    const logits = tf.tidy(() =>
      model.forward(tf.tensor2d(rows, [b, i], "int32")).slice(
        [0, i - 1, 0],
        [b, 1, -1],
      )
    );
    const data = logits.dataSync();
    logits.dispose();
    const v = data.length / b;
    for (let r = 0; r < b; r++) {
      let best = -1;
      for (let j = 0; j < v; j++) {
        if (j === exclude) continue;
        if (best < 0 || data[r * v + j] > data[r * v + best]) best = j;
      }
      out[r * l + i] = best;
    }
  }
  return out;
}

/** The tfjs model's next-token probabilities after `context` (float64). */
export function softmaxAfter(
  model: Transformer,
  context: number[],
): Float64Array {
  const logits = tf.tidy(() =>
    model.forward(tf.tensor2d(context, [1, context.length], "int32")).slice(
      [0, context.length - 1, 0],
      [1, 1, -1],
    ).dataSync()
  );
  return tokenProbabilities(logits as Float32Array, {});
}

/**
 * χ² of the first drawn token of `rows` rows (each `start, …prefix, drawn…`)
 * against the tfjs model's softmax after `context` (the row's given part).
 */
export function firstDrawFit(
  model: Transformer,
  tokens: Int32Array,
  rows: number,
  context: number[],
): { ok: Fit; probs: Float64Array } {
  const l = tokens.length / rows, at = context.length;
  const probs = softmaxAfter(model, context);
  const h = new Float64Array(probs.length);
  for (let r = 0; r < rows; r++) h[tokens[r * l + at]]++;
  return { ok: chiSquare(h, probs), probs };
}
