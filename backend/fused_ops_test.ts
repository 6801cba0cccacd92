import * as tf from "@tensorflow/tfjs";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { registerBlasBackend } from "./blas_backend.ts";
import {
  adamwUpdate,
  gelu,
  layerNorm,
  sparseSoftmaxCrossEntropy,
} from "./fused_ops.ts";
import { randomFloats } from "@d3pm/core";

registerBlasBackend();

// A small model built from the fused ops: embedding → layerNorm → GELU MLP →
// tied logits → sparse cross-entropy, trained with adamwUpdate.
async function train(backend: string, steps: number): Promise<number[]> {
  await tf.setBackend(backend);
  const rand = randomFloats(11);
  const init = (shape: number[], std: number) =>
    tf.variable(
      tf.tensor(
        Float32Array.from(
          { length: shape.reduce((a, b) => a * b, 1) },
          () => (rand() - 0.5) * std,
        ),
        shape,
      ),
    );
  const params = new Map<string, tf.Variable>([
    ["wte", init([29, 16], 0.2)],
    ["lnw", tf.variable(tf.ones([16]))],
    ["lnb", tf.variable(tf.zeros([16]))],
    ["w1", init([16, 40], 0.3)],
    ["w2", init([40, 16], 0.3)],
  ]);
  const m = new Map<string, tf.Tensor>(
    [...params].map(([k, p]) => [k, tf.zerosLike(p)]),
  );
  const v = new Map<string, tf.Tensor>(
    [...params].map(([k, p]) => [k, tf.zerosLike(p)]),
  );
  const ids = tf.tensor1d(
    Int32Array.from({ length: 24 }, () => Math.floor(rand() * 29)),
    "int32",
  );
  const labels = tf.tensor1d(
    Int32Array.from({ length: 24 }, (_, i) => i % 7 === 0 ? -1 : (i * 5) % 29),
    "int32",
  );
  const p = (k: string) => params.get(k)!;
  const losses: number[] = [];
  const before = tf.memory().numTensors;
  for (let step = 1; step <= steps; step++) {
    const { value, grads } = tf.variableGrads(() =>
      tf.tidy(() => {
        const x = tf.gather(p("wte"), ids); // [24, 16]
        const h = layerNorm(x, { weight: p("lnw"), bias: p("lnb") });
        const y = tf.add(x, tf.matMul(gelu(tf.matMul(h, p("w1"))), p("w2")));
        const logits = tf.matMul(y, p("wte"), false, true) as tf.Tensor2D;
        return tf.mean(sparseSoftmaxCrossEntropy(logits, labels)) as tf.Scalar;
      }), [...params.values()]);
    tf.tidy(() => {
      for (const [k, param] of params) {
        const next = adamwUpdate(
          { param, grad: grads[param.name], m: m.get(k)!, v: v.get(k)! },
          {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weightDecay: 0.1,
            step,
          },
        );
        param.assign(next.param);
        tf.dispose([m.get(k)!, v.get(k)!]);
        m.set(k, tf.keep(next.m));
        v.set(k, tf.keep(next.v));
      }
    });
    losses.push((await value.data())[0]);
    tf.dispose([value, ...Object.values(grads)]);
    if (step > 1) assertEquals(tf.memory().numTensors, before);
  }
  tf.dispose([ids, labels, ...params.values(), ...m.values(), ...v.values()]);
  return losses;
}

Deno.test("fused ops train a small model identically on blas (fused kernels) and cpu (tfjs ops), with no tensor leaks", async () => {
  assert(tf.getKernel("D3pmSparseSoftmaxCrossEntropy", "blas") !== undefined);
  assert(tf.getKernel("D3pmSparseSoftmaxCrossEntropy", "cpu") === undefined);
  const fast = await train("blas", 12);
  const reference = await train("cpu", 12);
  assert(fast[11] < fast[0] - 0.5, `loss fell from ${fast[0]} to ${fast[11]}`);
  for (let i = 0; i < fast.length; i++) {
    assertAlmostEquals(fast[i], reference[i], 1e-4);
  }
});
