import { type LanguageModel, prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
} from "@std/assert";
import { evaluateInfill } from "./infill.ts";
import { absorbingBeta } from "./schedule.ts";

await tf.setBackend("cpu");

function toy(forward: (x: tf.Tensor2D) => tf.Tensor3D): LanguageModel {
  return {
    config: { kind: "bidirectional", vocabSize: 9, contextLength: 64 },
    timeConditioned: false,
    forward,
    dispose() {},
  };
}

Deno.test("evaluateInfill() scores an oracle at accuracy 1 and NLL 0, and a uniform model near chance", async () => {
  const x0 = {
    tokens: Int32Array.from({ length: 16 * 32 }, (_, i) => (i * 5) % 8),
    batchSize: 16,
    length: 32,
  };
  // The oracle knows the data rule: token at flat position i is (i·5) mod 8.
  const oracle = toy((x) =>
    tf.tidy(() => {
      const [b, l] = x.shape;
      const truth = Int32Array.from({ length: b * l }, (_, i) => (i * 5) % 8);
      return tf.oneHot(tf.tensor2d(truth, [b, l], "int32"), 9).mul(
        60,
      ) as tf.Tensor3D;
    })
  );
  const opts = {
    fraction: 0.3,
    maskId: 8,
    schedule: absorbingBeta({ steps: 20 }),
    steps: 20,
    prng: prng(1),
  };
  const good = await evaluateInfill(oracle, x0, opts);
  assertEquals(good.accuracy, 1);
  assertAlmostEquals(good.nll, 0, 1e-4);
  assertEquals(good.total, 16 * 32);
  // Each token is hidden with probability 0.3: 154 expected, sd 10.
  assert(Math.abs(good.hidden - 0.3 * 512) < 40, `${good.hidden}`);
  const uniform = toy((x) => tf.zeros([...x.shape, 9]) as tf.Tensor3D);
  const bad = await evaluateInfill(uniform, x0, { ...opts, prng: prng(1) });
  assertAlmostEquals(bad.nll, Math.log(8), 1e-4);
  assert(bad.accuracy < 0.25, `${bad.accuracy}`);
  await assertRejects(
    () => evaluateInfill(uniform, x0, { ...opts, fraction: 1 }),
    RangeError,
    "fraction must be in (0, 1)",
  );
});
