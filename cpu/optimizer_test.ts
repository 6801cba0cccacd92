import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import { AdamW, clipByGlobalNorm } from "@d3pm/train";
import { adamw, clipFactor, ema, gradNorm } from "./optimizer.ts";
import { assertClose, blas, fill, tfCpu, withKernels } from "./_test_util.ts";

Deno.test({
  name:
    "adamw() over one table (decayed matrix first, then a vector) follows @d3pm/train's AdamW with clipping for 3 steps",
  ...blas,
  fn: () =>
    withKernels(1 << 16, async (k) => {
      await tfCpu();
      // A [37, 41] matrix (decays) then a [53] vector (does not).
      const rows = 37, cols = 41, vec = 53, n = rows * cols + vec;
      const params = fill(k.floats(n), 1), grads = k.floats(n);
      const m = k.floats(n), v = k.floats(n);
      const w = tf.tidy(() =>
        tf.variable(tf.tensor2d(params.slice(0, rows * cols), [rows, cols]))
      );
      const b = tf.tidy(() =>
        tf.variable(tf.tensor1d(params.slice(rows * cols)))
      );
      const vars = new Map<string, tf.Variable>([["w", w], ["b", b]]);
      const opt = new AdamW(vars, {
        beta1: 0.8,
        beta2: 0.9,
        eps: 1e-6,
        weightDecay: 0.3,
      });
      for (let step = 1; step <= 3; step++) {
        fill(grads, 10 + step, step); // large enough to clip at 20
        const norm = gradNorm(k, grads);
        adamw(k, {
          params,
          grads,
          m,
          v,
          decayEnd: rows * cols,
          lr: 0.01 * step,
          step,
          beta1: 0.8,
          beta2: 0.9,
          eps: 1e-6,
          weightDecay: 0.3,
          gradScale: clipFactor(norm, 20),
        });
        const raw = new Map<string, tf.Tensor>([
          ["w", tf.tensor2d(grads.slice(0, rows * cols), [rows, cols])],
          ["b", tf.tensor1d(grads.slice(rows * cols))],
        ]);
        const { grads: clipped, norm: refNorm } = await clipByGlobalNorm(
          raw,
          20,
        );
        assertClose([norm], [refNorm], 1e-6, `norm, step ${step}`);
        opt.step(clipped, 0.01 * step);
        tf.dispose([...raw.values(), ...clipped.values()]);
        assertClose(
          params.subarray(0, rows * cols),
          w,
          2e-6,
          `w, step ${step}`,
        );
        assertClose(params.subarray(rows * cols), b, 2e-6, `b, step ${step}`);
      }
      opt.dispose();
      tf.dispose([w, b]);
      assertEquals(tf.memory().numTensors, 0);
    }),
});

Deno.test({
  name:
    "gradNorm() sums squares like float64 within float32 rounding, and ema() is decay·e + (1 − decay)·p",
  ...blas,
  fn: () =>
    withKernels(1 << 18, (k) => {
      const g = fill(k.floats(100003), 2);
      let s = 0;
      for (const x of g) s += x * x;
      assertClose([gradNorm(k, g)], [Math.sqrt(s)], 1e-6, "norm");
      assertEquals(clipFactor(Infinity, 1), 1);
      assertEquals(clipFactor(NaN, 1), 1);
      const p = fill(k.floats(1001), 3), e = fill(k.floats(1001), 4);
      const expected = e.map((x, i) => 0.9 * x + 0.1 * p[i]);
      ema(k, { params: p, ema: e, decay: 0.9 });
      assertClose(e, expected, 2e-7, "ema");
    }),
});
