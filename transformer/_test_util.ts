// Shared by the tests: the backends to run on, and tiny configurations.
// Excluded from publishing (see deno.json).

import * as tf from "@tensorflow/tfjs";
import { ignoreUnless } from "@d3pm/core/testing";
import { type ModelConfig, validateConfig } from "./config.ts";

/** A backend to test on, and why it is skipped (if it is). */
export interface TestBackend {
  name: string;
  skip: string | null;
}

const probes = new Map<string, Promise<string | null>>();

// A backend from @d3pm/backend (`blas`, `wasm`) when it can be initialised
// here; otherwise the reason it cannot. Imported dynamically so that a
// missing or unfinished backend package skips these runs instead of failing
// the file.
function probe(name: "blas" | "wasm"): Promise<string | null> {
  if (!probes.has(name)) {
    probes.set(
      name,
      (async () => {
        const previous = tf.getBackend();
        try {
          const { initBackend } = await import("@d3pm/backend");
          const info = await initBackend({ prefer: name });
          return info.name === name ? null : `initBackend gave ${info.name}`;
        } catch (e) {
          return `${name} backend unavailable: ${
            e instanceof Error ? e.message.split("\n")[0] : e
          }`;
        } finally {
          if (previous) await tf.setBackend(previous);
        }
      })(),
    );
  }
  return probes.get(name)!;
}

/**
 * `cpu` (the reference), `blas` (the fast backend) and `wasm` (no
 * `UnsortedSegmentSum` in stock tfjs), each skipped with its reason if
 * unusable here.
 */
export async function testBackends(): Promise<TestBackend[]> {
  return [
    { name: "cpu", skip: null },
    { name: "blas", skip: await probe("blas") },
    { name: "wasm", skip: await probe("wasm") },
  ];
}

/**
 * A `Deno.test` registrar for one backend: names end in `(backend)`, the
 * backend is made active before each test, and an unusable backend's tests
 * are ignored with the reason printed — or fail where that backend is
 * required (`CI=true`, `D3PM_REQUIRE`; see `@d3pm/core/testing`).
 */
export function backendTest(
  backend: TestBackend,
): (name: string, fn: () => void | Promise<void>) => void {
  const ignore = ignoreUnless(backend.name, backend.skip);
  return (name, fn) =>
    Deno.test({
      name: `${name} (${backend.name})`,
      ignore,
      fn: async () => {
        await useBackend(backend.name);
        await fn();
      },
    });
}

/** Make `name` the active tfjs backend. */
export async function useBackend(name: string): Promise<void> {
  if (tf.getBackend() !== name) {
    if (!(await tf.setBackend(name))) {
      throw new Error(`Cannot use backend ${name}`);
    }
  }
  await tf.ready();
}

/** A model small enough for the slow reference backend. */
export function tinyConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return validateConfig({
    kind: "causal",
    vocabSize: 32,
    contextLength: 12,
    nLayer: 2,
    nHead: 2,
    dModel: 16,
    dMlp: 32,
    positions: "learned",
    timeConditioning: false,
    dTime: 8,
    dropout: 0,
    ...overrides,
  });
}

/** Largest absolute difference of two tensors. */
export function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** A deterministic int32 token batch [B, T] with ids in [0, vocab). */
export function tokenBatch(
  batch: number,
  length: number,
  vocab: number,
  salt = 0,
): tf.Tensor2D {
  const values = new Int32Array(batch * length);
  for (let i = 0; i < values.length; i++) {
    values[i] = (i * 7 + salt * 13 + 3) % vocab;
  }
  return tf.tensor2d(values, [batch, length], "int32");
}
