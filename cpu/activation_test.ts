import * as tf from "@tensorflow/tfjs";
import {
  geluBackward,
  geluForward,
  siluBackward,
  siluForward,
} from "./activation.ts";
import {
  assertClose,
  blas,
  fill,
  tfCpu,
  values,
  withKernels,
} from "./_test_util.ts";

const gelu = (x: tf.Tensor) =>
  tf.mul(
    tf.mul(0.5, x),
    tf.add(
      1,
      tf.tanh(
        tf.mul(
          Math.sqrt(2 / Math.PI),
          tf.add(x, tf.mul(0.044715, tf.pow(x, 3))),
        ),
      ),
    ),
  );
const silu = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x));

for (
  const [name, fwd, bwd, ref] of [
    ["gelu", geluForward, geluBackward, gelu],
    ["silu", siluForward, siluBackward, silu],
  ] as const
) {
  Deno.test({
    name:
      `${name}Forward() and ${name}Backward() match tfjs and tf.grad on strided rows, large |x| included`,
    ...blas,
    fn: () =>
      withKernels(20000, async (k) => {
        await tfCpu();
        const rows = 13, cols = 23, xLd = 25, yLd = 27;
        const x = fill(k.floats(rows * xLd), 1, 6);
        x[0] = 40; // beyond the tanh clamp
        x[1] = -40;
        const y = k.floats(rows * yLd);
        fwd(k, { rows, cols, x, xLd, y, yLd });
        const pick = (v: Float32Array, ld: number) =>
          Float32Array.from({ length: rows * cols }, (_, i) =>
            v[Math.floor(i / cols) * ld + (i % cols)]);
        const xs = pick(x, xLd);
        tf.tidy(() => {
          assertClose(pick(y, yLd), ref(tf.tensor1d(xs)), 2e-6, `${name}(x)`);
          const g = fill(new Float32Array(rows * cols), 2);
          for (let i = 0; i < rows * cols; i++) {
            y[Math.floor(i / cols) * yLd + (i % cols)] = g[i];
          }
          bwd(k, { rows, cols, x, xLd, y, yLd });
          const expected = values(
            tf.grad(ref)(tf.tensor1d(xs), tf.tensor1d(g)),
          );
          assertClose(pick(y, yLd), expected, 2e-6, `${name}'(x)·g`);
        });
      }),
  });
}

// GELU (tanh form) in float64, with Math.tanh, and its derivative.
const C = Math.sqrt(2 / Math.PI), A = 0.044715;
const gelu64 = (x: number) => 0.5 * x * (1 + Math.tanh(C * (x + A * x ** 3)));
const geluGrad64 = (x: number) => {
  const t = Math.tanh(C * (x + A * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * A * x * x);
};

Deno.test({
  name:
    "geluForward() and geluBackward() stay within 5e-7·max(|f|, 1) of float64 gelu_new (Math.tanh) on a dense grid of [−10, 10] and at ±40",
  ...blas,
  fn: () =>
    withKernels(300000, (k) => {
      const rows = 64, cols = 1024, n = rows * cols;
      const x = k.floats(n), y = k.floats(n);
      for (let i = 0; i < n; i++) x[i] = -10 + (20 * i) / (n - 3);
      x[n - 2] = 40;
      x[n - 1] = -40;
      const worst = (ref: (x: number) => number) => {
        let q = 0, at = 0;
        for (let i = 0; i < n; i++) {
          const r = ref(x[i]),
            e = Math.abs(y[i] - r) / Math.max(Math.abs(r), 1);
          if (!(e <= q)) [q, at] = [e, x[i]];
        }
        return { q, at };
      };
      geluForward(k, { rows, cols, x, y });
      const f = worst(gelu64);
      y.fill(1);
      geluBackward(k, { rows, cols, x, y });
      const g = worst(geluGrad64);
      for (const [what, w] of [["gelu", f], ["gelu'", g]] as const) {
        if (!(w.q <= 5e-7)) {
          throw new Error(`${what}: error ${w.q} · max(|f|, 1) at x = ${w.at}`);
        }
      }
    }),
});
