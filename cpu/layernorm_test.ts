import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import { layernormBackward, layernormForward } from "./layernorm.ts";
import { assertClose, blas, fill, tfCpu, withKernels } from "./_test_util.ts";

// 3 batch rows of 5 tokens, an odd width.
const B = 3, T = 5, ROWS = B * T, D = 27;

// The tfjs reference: LayerNorm with eps 1e-5, then adaLN's
// y·(1 + scale_b) + shift_b when mods [B, stride] is given.
function reference(
  x: tf.Tensor2D,
  w: tf.Tensor1D,
  b: tf.Tensor1D,
  mods?: { shift: tf.Tensor2D; scale: tf.Tensor2D },
): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, 1, true);
  let y = tf.add(
    tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), w),
    b,
  );
  if (mods) {
    const per = (m: tf.Tensor2D) =>
      tf.reshape(tf.tile(tf.expandDims(m, 1), [1, T, 1]), [ROWS, D]);
    y = tf.add(tf.mul(y, tf.add(1, per(mods.scale))), per(mods.shift));
  }
  return y as tf.Tensor2D;
}

for (const modulated of [false, true]) {
  Deno.test({
    name:
      `layernormForward() and layernormBackward() match tfjs and its gradients${
        modulated ? " (adaLN modulation)" : ""
      }`,
    ...blas,
    fn: () =>
      withKernels(20000, async (k) => {
        await tfCpu();
        const x = fill(k.floats(ROWS * D), 1, 3), y = k.floats(ROWS * D);
        x.forEach((v, i) => (x[i] = v + (i % 7))); // a mean far from 0
        const weight = fill(k.floats(D), 2), bias = fill(k.floats(D), 3);
        const mean = k.floats(ROWS), rstd = k.floats(ROWS);
        const stride = 2 * D + 3;
        const mods = fill(k.floats(B * stride), 4, 0.5);
        layernormForward(k, {
          rows: ROWS,
          d: D,
          x,
          y,
          weight,
          bias,
          mean,
          rstd,
          modulation: modulated ? { view: mods, stride, length: T } : undefined,
        });
        const modTensors = () => {
          const rows = (off: number) =>
            tf.tensor2d(
              Float32Array.from(
                { length: B * D },
                (_, i) => mods[Math.floor(i / D) * stride + off + (i % D)],
              ),
              [B, D],
            );
          return { shift: rows(0), scale: rows(D) };
        };
        tf.tidy(() => {
          const ref = reference(
            tf.tensor2d(x, [ROWS, D]),
            tf.tensor1d(weight),
            tf.tensor1d(bias),
            modulated ? modTensors() : undefined,
          );
          assertClose(y, ref, 2e-6, "y");
          const m = tf.moments(tf.tensor2d(x, [ROWS, D]), 1);
          assertClose(mean, m.mean, 1e-6, "mean");
          assertClose(rstd, tf.rsqrt(tf.add(m.variance, 1e-5)), 2e-6, "rstd");
        });
        if (modulated) return; // the modulation's backward is modulateBackward's (adaln_test)
        // Backward of L = Σ y·g: dx (added to what dx held), dweight, dbias.
        const g = fill(k.floats(ROWS * D), 5), dx = fill(k.floats(ROWS * D), 6);
        const before = dx.slice();
        const gradWeight = k.floats(D).fill(9), gradBias = k.floats(D).fill(9);
        layernormBackward(k, {
          rows: ROWS,
          d: D,
          dy: g,
          x,
          mean,
          rstd,
          weight,
          dx,
          accumulate: true,
          gradWeight,
          gradBias,
        });
        tf.tidy(() => {
          const loss = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
            tf.sum(
              tf.mul(
                reference(
                  xx as tf.Tensor2D,
                  ww as tf.Tensor1D,
                  bb as tf.Tensor1D,
                ),
                tf.tensor2d(g, [ROWS, D]),
              ),
            );
          const [gx, gw, gb] = tf.grads(loss)([
            tf.tensor2d(x, [ROWS, D]),
            tf.tensor1d(weight),
            tf.tensor1d(bias),
          ]);
          assertClose(
            dx.map((v, i) => v - before[i]),
            gx,
            2e-5,
            "dx (accumulated)",
          );
          assertClose(gradWeight, gw, 2e-6, "dweight (written)");
          assertClose(gradBias, gb, 1e-6, "dbias (written)");
          // Written, not accumulated, when accumulate is off.
          layernormBackward(k, {
            rows: ROWS,
            d: D,
            dy: g,
            x,
            mean,
            rstd,
            weight,
            dx,
            gradWeight,
            gradBias,
          });
          assertClose(dx, gx, 2e-5, "dx (written)");
        });
        assertEquals(tf.memory().numTensors, 0);
      }),
  });
}
