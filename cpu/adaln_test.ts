import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import { gateBackward, modulateBackward } from "./adaln.ts";
import { layernormForward } from "./layernorm.ts";
import {
  assertClose,
  blas,
  fill,
  keepRef,
  tfCpu,
  withKernels,
} from "./_test_util.ts";

const B = 3, T = 5, D = 14, N = B * T * D;

// [B, d] rows at off within [B, stride] → [B·T, d] per token.
function perToken(v: Float32Array, stride: number, off: number): tf.Tensor2D {
  return tf.tensor2d(
    Float32Array.from(
      { length: B * T * D },
      (_, i) => v[Math.floor(i / (T * D)) * stride + off + (i % D)],
    ),
    [B * T, D],
  );
}

Deno.test({
  name:
    "gateBackward() matches tf.grad of out = res + br·keep·(1 + g) (with and without dropout)",
  ...blas,
  fn: () =>
    withKernels(20000, async (k) => {
      await tfCpu();
      for (const rate of [0, 0.3]) {
        const stride = 6 * D, off = 2 * D;
        const raw = fill(k.floats(N), 1),
          mods = fill(k.floats(B * stride), 2, 0.5);
        const dout = fill(k.floats(N), 3);
        const keep = Float32Array.from({ length: N }, (_, i) =>
          rate ? keepRef(9, 321, rate, i) : 1);
        // The forward kept br already dropped.
        const br = k.floats(N);
        br.set(raw.map((x, i) =>
          x * keep[i]
        ));
        const dbr = k.floats(N), dmods = k.floats(B * stride).fill(3);
        gateBackward(k, {
          batch: B,
          length: T,
          d: D,
          dout,
          br,
          g: mods.subarray(off),
          stride,
          dbr,
          dg: dmods.subarray(off),
          dropout: { seed: 9, site: 321, rate },
        });
        tf.tidy(() => {
          const f = (x: tf.Tensor, g: tf.Tensor) =>
            tf.sum(
              tf.mul(
                tf.mul(tf.mul(x, tf.tensor2d(keep, [B * T, D])), tf.add(1, g)),
                tf.tensor2d(dout, [B * T, D]),
              ),
            );
          const [dx, dg] = tf.grads(f)([
            tf.tensor2d(raw, [B * T, D]),
            perToken(mods, stride, off),
          ]);
          assertClose(dbr, dx, 1e-6, `dbr, rate ${rate}`);
          const dgRows = tf.sum(tf.reshape(dg, [B, T, D]), 1).dataSync();
          const got = Float32Array.from({ length: B * D }, (_, i) =>
            dmods[Math.floor(i / D) * stride + off + (i % D)]);
          assertClose(got, dgRows, 1e-6, `dg, rate ${rate}`);
        });
      }
      assertEquals(tf.memory().numTensors, 0);
    }),
});

Deno.test({
  name:
    "modulateBackward() matches tf.grad of h = LN(x)·(1 + scale) + shift for shift, scale and the LN output",
  ...blas,
  fn: () =>
    withKernels(20000, async (k) => {
      await tfCpu();
      const stride = 6 * D, off = 3 * D; // the MLP's shift and scale
      const x = fill(k.floats(N), 1, 2), weight = fill(k.floats(D), 2);
      const bias = fill(k.floats(D), 3),
        mods = fill(k.floats(B * stride), 4, 0.5);
      const y = k.floats(N), mean = k.floats(B * T), rstd = k.floats(B * T);
      layernormForward(k, {
        rows: B * T,
        d: D,
        x,
        y,
        weight,
        bias,
        mean,
        rstd,
      });
      const lnOut = y.slice();
      const dh = fill(k.floats(N), 5), g = dh.slice();
      const dmods = k.floats(B * stride);
      modulateBackward(k, {
        batch: B,
        length: T,
        d: D,
        dh,
        x,
        mean,
        rstd,
        weight,
        bias,
        mods: mods.subarray(off),
        stride,
        dmods: dmods.subarray(off),
      });
      tf.tidy(() => {
        const f = (ln: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor) =>
          tf.sum(
            tf.mul(
              tf.add(tf.mul(ln, tf.add(1, scale)), shift),
              tf.tensor2d(g, [B * T, D]),
            ),
          );
        const [dln, dshift, dscale] = tf.grads(f)([
          tf.tensor2d(lnOut, [B * T, D]),
          perToken(mods, stride, off),
          perToken(mods, stride, off + D),
        ]);
        assertClose(dh, dln, 1e-6, "dĥ");
        const rows = (t: tf.Tensor) =>
          tf.sum(tf.reshape(t, [B, T, D]), 1).dataSync();
        const got = (o: number) =>
          Float32Array.from(
            { length: B * D },
            (_, i) => dmods[Math.floor(i / D) * stride + o + (i % D)],
          );
        assertClose(got(off), rows(dshift), 1e-6, "dshift");
        assertClose(got(off + D), rows(dscale), 2e-6, "dscale");
      });
      assertEquals(tf.memory().numTensors, 0);
    }),
});
