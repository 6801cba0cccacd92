// Parity of the WebGPU engine with the tfjs Transformer on the `cpu` backend
// (llm.c's test_gpt2, with tfjs as the reference): the executors' shared
// suite (webgpu/_parity_suite.ts: logits, loss, every gradient, 3 AdamW
// steps, scoring, bit-identical resume; tolerances stated there), and what
// only a GPU has: more rows than one dispatch dimension holds.

import * as tf from "@tensorflow/tfjs";
import { Transformer } from "@d3pm/transformer";
import {
  assertLossAndGradients,
  refusalParity,
  resumeParity,
  scoringParity,
  trainingParity,
} from "./_parity_suite.ts";
import { WebGpuTransformer } from "./mod.ts";
import { gpu, testDevice, webgpuExecutor } from "./_test_util.ts";
import { parityConfig, randomIds } from "./_test_models.ts";

trainingParity(webgpuExecutor);
scoringParity(webgpuExecutor);
refusalParity(webgpuExecutor);
resumeParity(webgpuExecutor);

// More rows than one dispatch dimension holds (65,535 workgroups): the
// per-row kernels (LayerNorm, cross-entropy) run on a 2-D grid.
Deno.test({
  name: "WebGpuTransformer matches tfjs with more than 65,535 rows (2-D grids)",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const config = parityConfig("causal", "learned", {
      vocabSize: 16,
      contextLength: 64,
      nLayer: 1,
      nHead: 2,
      dModel: 8,
      dMlp: 16,
    });
    const batchSize = 1040, length = 64, n = batchSize * length; // 66,560
    const inputs = randomIds(n, 16, 41), targets = randomIds(n, 16, 42);
    const model = new Transformer(config, { seed: 7 });
    const engine = await WebGpuTransformer.create(config, {
      batchSize,
      length,
      seed: 7,
      device: testDevice(),
    });
    try {
      const x = tf.tensor2d(inputs, [batchSize, length], "int32");
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          const lp = tf.logSoftmax(tf.reshape(model.forward(x), [n, 16]));
          const picked = tf.sum(
            tf.mul(lp, tf.oneHot(tf.tensor1d(targets, "int32"), 16)),
            1,
          );
          return tf.neg(tf.mean(picked)) as tf.Scalar;
        }), model.trainableVariables());
      engine.backward({
        inputs,
        targets,
        weights: new Float32Array(n).fill(1 / n),
      });
      await assertLossAndGradients(engine, model, value, grads);
      x.dispose();
    } finally {
      engine.dispose();
      model.dispose();
    }
  },
});
