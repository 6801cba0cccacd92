import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import { crossEntropy } from "./cross_entropy.ts";
import { assertClose, blas, fill, tfCpu, withKernels } from "./_test_util.ts";

const ROWS = 9, V = 43;

for (const exclude of [null, 5]) {
  Deno.test({
    name:
      `crossEntropy() matches tfjs's weighted softmax cross-entropy and its gradient (ignored rows, zero weights${
        exclude === null ? "" : ", an excluded column"
      })`,
    ...blas,
    fn: () =>
      withKernels(20000, async (k) => {
        await tfCpu();
        const logits = fill(k.floats(ROWS * V), 1, 30); // wide: exp must not overflow
        const original = logits.slice();
        const targets = k.ints(ROWS),
          weights = k.floats(ROWS),
          loss = k.floats(ROWS).fill(7);
        targets.set([0, 42, 17, -1, 3, 8, 8, 21, 30]);
        weights.set([1, 0.5, 2, 1, 0, 1, 1, 0.25, 3]);
        crossEntropy(k, {
          rows: ROWS,
          vocab: V,
          logits,
          targets,
          weights,
          loss,
          exclude,
        });
        tf.tidy(() => {
          // Excluded column: −1e30 before the softmax (probability 0, and
          // no 0·∞ in the one-hot product); ignored rows weigh 0.
          const mask = Float32Array.from({ length: V }, (_, v) =>
            v === exclude ? -1e30 : 0);
          const live = Float32Array.from(weights, (w, r) =>
            targets[r] >= 0 ? w : 0);
          const onehot = tf.oneHot(
            tf.tensor1d(
              Int32Array.from(targets, (t) =>
                Math.max(t, 0)),
              "int32",
            ),
            V,
          );
          const perRow = (x: tf.Tensor) =>
            tf.mul(
              tf.neg(
                tf.sum(
                  tf.mul(tf.logSoftmax(tf.add(x, tf.tensor1d(mask))), onehot),
                  1,
                ),
              ),
              tf.tensor1d(live),
            );
          const x = tf.tensor2d(original, [ROWS, V]);
          assertClose(loss, perRow(x), 2e-6, "loss per row");
          const grad = tf.grad((z: tf.Tensor) =>
            tf.sum(perRow(z))
          )(x);
          assertClose(logits, grad, 2e-6, "dlogits");
        });
        for (const r of [3, 4]) { // ignored: loss 0, gradient 0
          assertEquals(loss[r], 0);
          assertEquals([...new Set(logits.subarray(r * V, (r + 1) * V))], [0]);
        }
        assertEquals(tf.memory().numTensors, 0);
      }),
  });
}
