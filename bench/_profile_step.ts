// The training step bench:cpu-profile and bench/cpu_joins_ab.ts time on
// the CPU engine: bench:cpu's reference shape or the tiny preset's, as a
// causal model with learned positions (V 4096, T 128, 4 layers, 4 heads),
// and one seeded batch of random tokens. Private.

import { prng } from "@d3pm/core";
import { type ModelConfig, preset } from "@d3pm/transformer";

/** Width, MLP width and batch of each shape. */
export const PROFILE_SHAPES: Record<
  "reference" | "tiny",
  { d: number; mlp: number; batch: number }
> = {
  tiny: { d: 128, mlp: 512, batch: 4 },
  reference: { d: 256, mlp: 1024, batch: 8 },
};

/** The step's model at `shape` (no dropout). */
export function profileConfig(shape: keyof typeof PROFILE_SHAPES): ModelConfig {
  const s = PROFILE_SHAPES[shape];
  return preset("tiny", {
    kind: "causal",
    vocabSize: 4096,
    contextLength: 128,
    nLayer: 4,
    dModel: s.d,
    nHead: 4,
    dMlp: s.mlp,
    positions: "learned",
    dropout: 0,
  });
}

/**
 * A training batch of `n` uniform random tokens below `vocab` (inputs, then
 * targets, from one PRNG seeded 7), each row weighted 1/n.
 */
export function randomBatch(n: number, vocab: number): {
  inputs: Int32Array;
  targets: Int32Array;
  weights: Float32Array;
} {
  const rand = prng(7);
  const ids = () =>
    Int32Array.from({ length: n }, () => Math.floor(rand.next() * vocab));
  const inputs = ids();
  return { inputs, targets: ids(), weights: new Float32Array(n).fill(1 / n) };
}
