import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { registerBlasBackend } from "./blas_backend.ts";
import { randomFloats } from "@d3pm/core";
import { referenceGpt } from "./_reference_gpt.ts";

const blas = registerBlasBackend();

Deno.test("registerBlasBackend() replaces the hot kernels and keeps the rest of cpu's", () => {
  for (
    const name of [
      "BatchMatMul",
      "_FusedMatMul",
      "UnsortedSegmentSum",
      "GatherV2",
      "Softmax",
      "Multiply",
      "Exp",
      "Sum",
      "Transpose",
    ]
  ) assert(blas.kernels.includes(name), name);
  const own = new Set(tf.getKernelsForBackend("blas").map((k) => k.kernelName));
  for (const k of tf.getKernelsForBackend("cpu")) {
    assert(own.has(k.kernelName), k.kernelName);
  }
  assert(registerBlasBackend() === blas);
});

Deno.test("blas BatchMatMul broadcasts batch dimensions like NumPy", async () => {
  await tf.setBackend("blas");
  const rand = randomFloats(3);
  const av = Float32Array.from({ length: 2 * 5 * 7 }, () => rand() - 0.5);
  const bv = Float32Array.from({ length: 3 * 7 * 4 }, () => rand() - 0.5);
  const c = tf.matMul(tf.tensor(av, [2, 1, 5, 7]), tf.tensor(bv, [3, 7, 4]));
  assertEquals(c.shape, [2, 3, 5, 4]);
  const got = await c.data();
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      for (let r = 0; r < 5; r++) {
        for (let q = 0; q < 4; q++) {
          let s = 0;
          for (let k = 0; k < 7; k++) {
            s += av[i * 35 + r * 7 + k] * bv[j * 28 + k * 4 + q];
          }
          assertAlmostEquals(got[((i * 3 + j) * 5 + r) * 4 + q], s, 1e-5);
        }
      }
    }
  }
  tf.dispose(c);
});

Deno.test("blas falls back to cpu's kernels for int32 inputs", async () => {
  await tf.setBackend("blas");
  const a = tf.tensor2d([[1, 2], [3, 4]], [2, 2], "int32");
  const c = tf.matMul(a, a);
  assertEquals(c.dtype, "int32");
  assertEquals(Array.from(await c.data()), [7, 10, 15, 22]);
  assertEquals(Array.from(await tf.add(a, a).data()), [2, 4, 6, 8]);
  tf.dispose([a, c]);
});

Deno.test("blas never recycles an array the caller has read", async () => {
  await tf.setBackend("blas");
  const x = tf.fill([4096], 2);
  const y = tf.mul(x, 3);
  const kept = y.dataSync();
  y.dispose();
  // Many same-sized outputs after the dispose: none may reuse `kept`.
  const others = Array.from({ length: 8 }, (_, i) => tf.mul(x, i));
  assert(kept.every((v) => v === 6));
  tf.dispose([x, ...others]);
});

Deno.test("blas recycles the arrays of disposed intermediates correctly", async () => {
  await tf.setBackend("blas");
  const x = tf.tensor1d(Float32Array.from({ length: 5000 }, (_, i) => i));
  for (let step = 0; step < 5; step++) {
    const y = tf.tidy(() => tf.sum(tf.mul(tf.add(x, 1), tf.sub(x, 1))));
    // Σ (i+1)(i-1) = Σ i² - n
    const n = 5000;
    const want = ((n - 1) * n * (2 * n - 1)) / 6 - n;
    assertAlmostEquals((await y.data())[0], want, want * 1e-6);
    y.dispose();
  }
  x.dispose();
});

const TINY = { vocab: 97, seq: 16, dModel: 32, heads: 4, layers: 2, mlp: 64 };

function tokens(batch: number, seq: number, vocab: number): Int32Array {
  const rand = randomFloats(11);
  return Int32Array.from(
    { length: batch * seq },
    () => Math.floor(rand() * vocab),
  );
}

Deno.test("blas keeps tf.memory().numTensors flat over repeated training steps", async () => {
  await tf.setBackend("blas");
  const model = referenceGpt(TINY, { seed: 5 });
  const ids = tokens(3, TINY.seq, TINY.vocab);
  model.step(ids, 3); // Adam creates its moments on the first step.
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) model.step(ids, 3);
  assertEquals(tf.memory().numTensors, before);
  model.dispose();
});

Deno.test("a small GPT trains the same on blas as on cpu", async () => {
  const losses: Record<string, number[]> = {};
  for (const backend of ["cpu", "blas"]) {
    await tf.setBackend(backend);
    const model = referenceGpt(TINY, { seed: 5, lr: 1e-2 });
    const ids = tokens(2, TINY.seq, TINY.vocab);
    losses[backend] = [];
    for (let i = 0; i < 4; i++) {
      losses[backend].push(await model.step(ids, 2));
    }
    model.dispose();
  }
  for (let i = 0; i < 4; i++) {
    assertAlmostEquals(losses.blas[i], losses.cpu[i], 1e-3);
  }
  assert(losses.blas[3] < losses.blas[0], "the loss goes down");
});

Deno.test("blas exp, tanh and sigmoid keep cpu's results at the edges", async () => {
  const edges = [
    NaN,
    Infinity,
    -Infinity,
    0,
    -0,
    1e-30,
    88.7,
    89,
    -103,
    -105,
    20,
  ];
  const results: Record<string, Float32Array[]> = {};
  for (const backend of ["cpu", "blas"]) {
    await tf.setBackend(backend);
    const x = tf.tensor1d(edges);
    const ys = [tf.exp(x), tf.tanh(x), tf.sigmoid(x)];
    results[backend] = await Promise.all(
      ys.map(async (y) => Float32Array.from(await y.data())),
    );
    tf.dispose([x, ...ys]);
  }
  for (let k = 0; k < 3; k++) {
    for (let i = 0; i < edges.length; i++) {
      const want = results.cpu[k][i], got = results.blas[k][i];
      if (Number.isNaN(want)) assert(Number.isNaN(got), `${k} ${edges[i]}`);
      else {assert(
          Math.abs(got - want) <= 1e-6 * Math.abs(want) + 1e-30 || got === want,
          `${k}: f(${edges[i]}) = ${got}, expected ${want}`,
        );}
    }
  }
});
