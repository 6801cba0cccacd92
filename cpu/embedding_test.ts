import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertThrows } from "@std/assert";
import {
  embeddingBackward,
  embeddingForward,
  embeddingIndex,
} from "./embedding.ts";
import {
  assertClose,
  blas,
  fill,
  keepRef,
  tfCpu,
  withKernels,
} from "./_test_util.ts";

const B = 3, T = 7, N = B * T, V = 11, D = 18;

for (const learned of [true, false]) {
  for (const rate of [0, 0.25]) {
    Deno.test({
      name:
        `embeddingForward() and embeddingBackward() match tf.gather and tf.grad (${
          learned ? "learned positions" : "no positions"
        }${rate ? `, dropout ${rate}` : ""})`,
      ...blas,
      fn: () =>
        withKernels(20000, async (k) => {
          await tfCpu();
          const tokens = k.ints(N);
          // Repeats, so that rows of the tied gradient sum several positions.
          tokens.set(Array.from({ length: N }, (_, i) =>
            (i * 5) % 4 + (i % 3 === 0 ? 7 : 0)));
          const wte = fill(k.floats(V * D), 1), wpe = fill(k.floats(T * D), 2);
          const out = k.floats(N * D);
          const dropout = { seed: 3, site: 640, rate };
          embeddingForward(k, {
            rows: N,
            d: D,
            length: T,
            tokens,
            wte,
            wpe: learned ? wpe : null,
            out,
            dropout,
          });
          const keepValues = Float32Array.from(
            { length: N * D },
            (_, i) =>
              rate ? keepRef(3, 640, rate, i) : 1,
          );
          const model = (e: tf.Tensor, p: tf.Tensor) => {
            let x = tf.gather(e, tf.tensor1d(tokens, "int32"));
            if (learned) {
              x = tf.add(x, tf.tile(p, [B, 1]));
            }
            return tf.mul(x, tf.tensor2d(keepValues, [N, D]));
          };
          tf.tidy(() => {
            assertClose(
              out,
              model(tf.tensor2d(wte, [V, D]), tf.tensor2d(wpe, [T, D])),
              1e-7,
              "x",
            );
          });
          // Backward: the tied gradient already holds the head's part (added to).
          const dx = fill(k.floats(N * D), 3);
          const gradWte = fill(k.floats(V * D), 4),
            gradWpe = k.floats(T * D).fill(5);
          const before = gradWte.slice();
          const index = {
            uniq: k.ints(N),
            starts: k.ints(N + 1),
            positions: k.ints(N),
          };
          const count = embeddingIndex(tokens, index);
          assertEquals(count, new Set(tokens).size);
          embeddingBackward(k, {
            batch: B,
            length: T,
            d: D,
            dx,
            index,
            count,
            gradWte,
            gradWpe: learned ? gradWpe : null,
            dropout,
          });
          tf.tidy(() => {
            const loss = (e: tf.Tensor, p: tf.Tensor) =>
              tf.sum(tf.mul(model(e, p), tf.tensor2d(dx, [N, D])));
            const e = tf.tensor2d(wte, [V, D]), p = tf.tensor2d(wpe, [T, D]);
            const added = gradWte.map((v, i) =>
              v - before[i]
            );
            if (learned) {
              const [ge, gp] = tf.grads(loss)([e, p]);
              assertClose(added, ge, 1e-6, "dwte (added)");
              assertClose(gradWpe, gp, 1e-6, "dwpe (written)");
            } else {
              const ge = tf.grad((x: tf.Tensor) => loss(x, p))(e);
              assertClose(added, ge, 1e-6, "dwte (added)");
              assertEquals([...new Set(gradWpe)], [5]); // untouched
            }
          });
          assertEquals(tf.memory().numTensors, 0);
        }),
    });
  }
}

Deno.test("embeddingIndex() refuses views too short for the batch", () => {
  assertThrows(
    () =>
      embeddingIndex(Int32Array.from([1, 2]), {
        uniq: new Int32Array(2),
        starts: new Int32Array(2),
        positions: new Int32Array(2),
      }),
    RangeError,
    "starts 3",
  );
});
