import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { Transformer } from "./transformer.ts";
import {
  backendTest,
  maxAbsDiff,
  testBackends,
  tinyConfig,
  tokenBatch,
  useBackend,
} from "./_test_util.ts";

// Incremental logits equal full-recompute logits within this absolute
// tolerance (float32; logits here are O(1)): the same products, summed in a
// different grouping only where the cache is concatenated.
const KV_TOLERANCE = 1e-4;

const backends = await testBackends();

for (const entry of backends) {
  const test = backendTest(entry);

  test("decode() with a KV cache gives the logits of a full forward()", () => {
    for (const positions of ["learned", "rotary"] as const) {
      const model = new Transformer(tinyConfig({ positions }), { seed: 6 });
      const tokens = tokenBatch(2, 12, 32); // the whole context
      const full = model.forward(tokens);
      const cache = model.createCache(2);
      // A 3-token prompt, then one token at a time up to the context length.
      const pieces = [model.decode(tf.slice(tokens, [0, 0], [2, 3]), cache)];
      for (let i = 3; i < 12; i++) {
        pieces.push(model.decode(tf.slice(tokens, [0, i], [2, 1]), cache));
      }
      assertEquals(cache.length, 12);
      const incremental = tf.concat(pieces, 1);
      const diff = maxAbsDiff(full, incremental);
      assert(diff <= KV_TOLERANCE, `${positions}: max |Δ| = ${diff}`);
      // The cache is full: one more token is refused.
      const extra = tokenBatch(2, 1, 32);
      assertThrows(() => model.decode(extra, cache), RangeError, "12 cached");
      tf.dispose([tokens, full, incremental, extra, ...pieces]);
      cache.dispose();
      model.dispose();
    }
  });

  test("decode() keeps only the cache's tensors alive", () => {
    const model = new Transformer(tinyConfig({ positions: "rotary" }), {
      seed: 6,
    });
    const before = tf.memory().numTensors;
    const cache = model.createCache(1);
    for (let i = 0; i < 6; i++) {
      const token = tokenBatch(1, 1, 32, i);
      tf.dispose([model.decode(token, cache), token]);
      // k and v per layer.
      assertEquals(tf.memory().numTensors, before + 2 * model.config.nLayer);
    }
    cache.dispose();
    assertEquals(tf.memory().numTensors, before);
    model.dispose();
  });
}

Deno.test("decode() refuses models and inputs it cannot serve", async () => {
  await useBackend("cpu");
  const denoiser = new Transformer(tinyConfig({ kind: "bidirectional" }));
  const cache = denoiser.createCache(1);
  const token = tokenBatch(1, 1, 32);
  assertThrows(
    () => denoiser.decode(token, cache),
    Error,
    "needs a causal model without time conditioning",
  );
  const model = new Transformer(tinyConfig());
  const wide = model.createCache(2);
  assertThrows(
    () => model.decode(token, wide),
    RangeError,
    "the cache has batch 2",
  );
  assertThrows(
    () => model.createCache(0),
    RangeError,
    "batchSize must be a positive integer",
  );
  tf.dispose(token);
  for (const x of [cache, wide, denoiser, model]) x.dispose();
});
