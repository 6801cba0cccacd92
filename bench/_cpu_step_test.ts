// The kernels composed in the plan's order give the tfjs Transformer's loss
// and every gradient: the check that their conventions (offsets, strides,
// transposes, the tied head, RoPE, ALiBi) fit together.

import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals } from "@std/assert";
import { prng } from "@d3pm/core";
import { ignoreUnless } from "@d3pm/core/testing";
import { loadCblas } from "@d3pm/backend/cblas";
import { createCpuKernels } from "@d3pm/cpu";
import { Transformer, validateConfig } from "@d3pm/transformer";
import { planCpuStep, stepWords } from "./_cpu_step.ts";

let missing: string | null = null;
try {
  loadCblas().close();
} catch (e) {
  missing = (e as Error).message;
}

const configs = [
  { kind: "causal", positions: "learned" },
  {
    kind: "bidirectional",
    positions: "rotary",
    alibi: 1.5,
    alibiMode: "neighbours",
  },
] as const;

for (const extra of configs) {
  Deno.test({
    name:
      `the kernels in the plan's order give the tfjs model's loss and every gradient (${extra.kind}, ${extra.positions}${
        "alibi" in extra ? ", ALiBi" : ""
      })`,
    ignore: ignoreUnless("blas", missing),
    fn: async () => {
      await tf.setBackend("cpu");
      const config = validateConfig({
        vocabSize: 37,
        contextLength: 9,
        nLayer: 2,
        nHead: 3,
        dModel: 24,
        dMlp: 40,
        timeConditioning: false,
        dTime: 8,
        dropout: 0,
        ...extra,
      });
      const B = 2, T = 9, n = B * T;
      const model = new Transformer(config, { seed: 3 });
      const k = await createCpuKernels({
        words: stepWords(config, B, T, 5),
        threads: 2,
        grain: 1,
      });
      try {
        const step = planCpuStep(k, config, B, T, { chunkRows: 5 }); // 4 chunks, the last short
        // Weights moved far from the init, so outputs depend on the context.
        const rng = prng(4);
        for (const [name, v] of model.variables) {
          const values = Float32Array.from(
            v.dataSync(),
            (x) => x + (rng.next() - 0.5) * 0.8,
          );
          v.assign(tf.tensor(values, v.shape));
          step.params.get(name)!.value.set(values);
        }
        const inputs = Int32Array.from(
          { length: n },
          () => Math.floor(rng.next() * 37),
        );
        const targets = Int32Array.from(
          { length: n },
          () => Math.floor(rng.next() * 37),
        );
        const loss = step.backward(inputs, targets);
        const vars = [...model.variables.values()];
        const { value, grads } = tf.variableGrads(() =>
          tf.tidy(() => {
            const logits = model.forward(tf.tensor2d(inputs, [B, T], "int32"));
            return tf.losses.softmaxCrossEntropy(
              tf.oneHot(tf.tensor1d(targets, "int32"), 37),
              tf.reshape(logits, [n, 37]),
            ) as tf.Scalar;
          }), vars);
        assertAlmostEquals(loss, value.dataSync()[0], 1e-5);
        for (const [name, v] of model.variables) {
          const expected = grads[v.name].dataSync();
          const actual = step.params.get(name)!.grad;
          let diff = 0, scale = 0;
          for (let i = 0; i < expected.length; i++) {
            diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
            scale = Math.max(scale, Math.abs(expected[i]));
          }
          assert(
            diff <= 1e-4 * scale,
            `${name}: relative error ${(diff / scale).toExponential(2)}`,
          );
        }
        tf.dispose([value, ...Object.values(grads)]);
      } finally {
        k.dispose();
        model.dispose();
      }
    },
  });
}
