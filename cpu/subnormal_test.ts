// No subnormal floats leave the softmax kernels: WebAssembly has no
// flush-to-zero mode and x86 runs products on subnormal operands many times
// slower (the tiny preset's D3PM step, ALiBi slope 16: probabilities of far
// keys underflow; 451 → 122 ms a step once flushed, under load). Attention
// probabilities and their backward's dS, and the head's dlogits, hold 0 or
// normal floats only.
import { assertEquals } from "@std/assert";
import { prng } from "@d3pm/core";
import {
  attentionBackward,
  attentionForward,
  createCpuKernels,
  crossEntropy,
} from "./mod.ts";

const MIN_NORMAL = 1.1754943508222875e-38;

function fill(v: Float32Array, f: (i: number) => number): Float32Array {
  for (let i = 0; i < v.length; i++) v[i] = f(i);
  return v;
}

function subnormals(x: Float32Array): number {
  let n = 0;
  for (const v of x) if (v !== 0 && Math.abs(v) < MIN_NORMAL) n++;
  return n;
}

Deno.test("attention with a steep ALiBi leaves no subnormal probability or dS", async () => {
  const B = 1, H = 4, T = 64, hd = 8, d = H * hd;
  const k = await createCpuKernels({ words: 1 << 18, threads: 2, grain: 1 });
  try {
    const rng = prng(1);
    const qkv = fill(k.floats(B * T * 3 * d), () => rng.next() - 0.5);
    const y = k.floats(B * T * d), lse = k.floats(B * H * T);
    const probs = k.floats(B * H * T * T), ds = k.floats(B * H * T * T);
    const dy = fill(k.floats(B * T * d), () => rng.next() - 0.5);
    const dqkv = k.floats(B * T * 3 * d);
    const shape = {
      batch: B,
      length: T,
      heads: H,
      headDim: hd,
      causal: false,
      alibi: { slope: 16, neighbours: true },
    };
    attentionForward(k, { ...shape, qkv, y, lse, probs });
    attentionBackward(k, { ...shape, qkv, y, dy, probs, dqkv, scratch: ds });
    assertEquals(subnormals(probs), 0);
    assertEquals(subnormals(ds), 0);
  } finally {
    k.dispose();
  }
});

Deno.test("cross-entropy leaves no subnormal gradient", async () => {
  const V = 64, rows = 4;
  const k = await createCpuKernels({ words: 4096, threads: 1 });
  try {
    const logits = fill(k.floats(rows * V), (i) => (i % V) * 1.6); // spread 100 nats
    const targets = k.ints(rows).fill(V - 1);
    const weights = k.floats(rows).fill(1e-3), loss = k.floats(rows);
    crossEntropy(k, { rows, vocab: V, logits, targets, weights, loss });
    assertEquals(subnormals(logits), 0);
  } finally {
    k.dispose();
  }
});
