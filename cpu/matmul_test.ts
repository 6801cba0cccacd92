import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertThrows } from "@std/assert";
import { columnSum, type Epilogue, matmul } from "./matmul.ts";
import {
  assertClose,
  blas,
  fill,
  keepRef,
  tfCpu,
  values,
  withKernels,
} from "./_test_util.ts";

// Odd shapes and padded row strides, so that no loop may assume a multiple
// of four or a contiguous matrix.
// M spans three blocks of rows (64, 64, 22), split over two threads.
const M = 150, N = 29, K = 19, PAD = 3, SENTINEL = 12345;

// The dense [rows, cols] matrix stored in view with row stride ld.
function dense(view: Float32Array, rows: number, cols: number, ld: number) {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    out.set(view.subarray(r * ld, r * ld + cols), r * cols);
  }
  return out;
}

// Every element of a strided view outside its [rows, cols] block is intact.
function assertPaddingIntact(
  view: Float32Array,
  rows: number,
  cols: number,
  ld: number,
) {
  for (let i = 0; i < view.length; i++) {
    const inside = Math.floor(i / ld) < rows && i % ld < cols;
    if (!inside && view[i] !== SENTINEL) {
      throw new Error(`padding element ${i} was written: ${view[i]}`);
    }
  }
}

const geluRef = (x: tf.Tensor) =>
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
const siluRef = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x));

for (
  const [ta, tb, products] of [
    [false, false, "split"],
    [true, false, "split"],
    [false, true, "split"],
    [true, true, "split"],
    [false, true, "blas"],
    [true, false, "blas"],
  ] as const
) {
  Deno.test({
    name: `matmul() matches tfjs for A${ta ? "ᵀ" : ""}·B${
      tb ? "ᵀ" : ""
    } on padded strides (store, accumulate; ${products} products)`,
    ...blas,
    fn: () =>
      withKernels(
        20000,
        async (k) => {
          await tfCpu();
          const [ar, ac] = ta ? [K, M] : [M, K],
            [br, bc] = tb ? [N, K] : [K, N];
          const a = fill(k.floats(ar * (ac + PAD)), 1),
            b = fill(k.floats(br * (bc + PAD)), 2);
          const c = k.floats(M * (N + PAD)).fill(SENTINEL);
          const op = {
            m: M,
            n: N,
            k: K,
            a: { view: a, ld: ac + PAD, trans: ta },
            b: { view: b, ld: bc + PAD, trans: tb },
            c: { view: c, ld: N + PAD },
          };
          matmul(k, op);
          const ref = tf.tidy(() =>
            values(tf.matMul(
              tf.tensor2d(dense(a, ar, ac, ac + PAD), [ar, ac]),
              tf.tensor2d(dense(b, br, bc, bc + PAD), [br, bc]),
              ta,
              tb,
            ))
          );
          assertClose(dense(c, M, N, N + PAD), ref, 1e-6, "store");
          assertPaddingIntact(c, M, N, N + PAD);
          matmul(k, { ...op, epilogue: "accumulate" });
          assertClose(
            dense(c, M, N, N + PAD),
            ref.map((x) => 2 * x),
            1e-6,
            "accumulate",
          );
          assertPaddingIntact(c, M, N, N + PAD);
        },
        2,
        products,
      ),
  });
}

Deno.test({
  name:
    "matmul() on a wide C (blocks of columns, the epilogue after) matches tfjs, with residual dropout",
  ...blas,
  fn: () =>
    withKernels(20000, async (k) => {
      await tfCpu();
      const m = 7, n = 301, kk = 19;
      const a = fill(k.floats(m * kk), 11), b = fill(k.floats(n * kk), 12);
      const bias = fill(k.floats(n), 13), e = fill(k.floats(m * n), 14);
      const c = k.floats(m * n);
      const dropout = { seed: 4, site: 50, rate: 0.4 };
      matmul(k, {
        m,
        n,
        k: kk,
        a: { view: a, ld: kk },
        b: { view: b, ld: kk, trans: true },
        c: { view: c, ld: n },
        epilogue: "bias_residual",
        bias,
        e: { view: e, ld: n },
        dropout,
      });
      const P = tf.tidy(() =>
        values(
          tf.matMul(
            tf.tensor2d(a, [m, kk]),
            tf.tensor2d(b, [n, kk]),
            false,
            true,
          ),
        )
      );
      const expected = P.map((x, i) =>
        (x + bias[i % n]) * keepRef(4, 50, 0.4, i) + e[i]
      );
      assertClose(c, expected, 1e-6, "wide bias_residual");
    }),
});

Deno.test({
  name:
    "matmul() epilogues match their tfjs definitions (bias, activations, residual with dropout, adaLN gate)",
  ...blas,
  fn: () =>
    withKernels(100000, async (k) => {
      await tfCpu();
      const ld = N + PAD;
      const a = fill(k.floats(M * K), 3), b = fill(k.floats(K * N), 4);
      const bias = fill(k.floats(N), 5);
      const base = {
        m: M,
        n: N,
        k: K,
        a: { view: a, ld: K },
        b: { view: b, ld: N },
      };
      const P = tf.tidy(() =>
        values(tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N])))
      );
      const withBias = P.map((x, i) => x + bias[i % N]);
      const c = () => k.floats(M * ld).fill(SENTINEL);
      const run = (epilogue: Epilogue, extra: Record<string, unknown> = {}) => {
        const out = c();
        matmul(k, { ...base, c: { view: out, ld }, epilogue, bias, ...extra });
        assertPaddingIntact(out, M, N, ld);
        return dense(out, M, N, ld);
      };
      assertClose(run("bias"), withBias, 1e-6, "bias");

      for (
        const [name, ref] of [["gelu", geluRef], ["silu", siluRef]] as const
      ) {
        const e = k.floats(M * ld).fill(SENTINEL);
        const out = run(`bias_${name}`, { e: { view: e, ld } });
        assertClose(
          dense(e, M, N, ld),
          withBias,
          1e-6,
          `bias_${name} pre-activation`,
        );
        assertPaddingIntact(e, M, N, ld);
        const expected = tf.tidy(() => values(ref(tf.tensor1d(withBias))));
        assertClose(out, expected, 2e-6, `bias_${name}`);
        // The backward: P·act'(E) against tfjs's gradient of its definition.
        const pre = fill(k.floats(M * N), 6, 4);
        const out2 = k.floats(M * N);
        matmul(k, {
          ...base,
          c: { view: out2, ld: N },
          epilogue: `${name}_backward`,
          e: { view: pre, ld: N },
        });
        const grad = tf.tidy(() =>
          values(
            tf.grad((x: tf.Tensor) => ref(x))(tf.tensor1d(pre), tf.tensor1d(P)),
          )
        );
        assertClose(out2, grad, 2e-6, `${name}_backward`);
      }

      const resid = fill(k.floats(M * ld), 7);
      const dropout = { seed: 99, site: 1234, rate: 0.3 };
      for (const rate of [0, 0.3]) {
        const out = run("bias_residual", {
          e: { view: resid, ld },
          dropout: { ...dropout, rate },
        });
        const expected = withBias.map((x, i) => {
          const m = Math.floor(i / N), n = i % N;
          const keep = rate ? keepRef(99, 1234, rate, m * N + n) : 1;
          return x * keep + resid[m * ld + n];
        });
        assertClose(out, expected, 1e-6, `bias_residual, rate ${rate}`);
      }

      const rowsPerBatch = 10, stride = 2 * N + 5;
      const gate = fill(k.floats(Math.ceil(M / rowsPerBatch) * stride), 8);
      const aux = k.floats(M * ld).fill(SENTINEL);
      const out = run("bias_gate_residual", {
        e: { view: resid, ld },
        gate: { view: gate, stride, rows: rowsPerBatch, aux },
        dropout,
      });
      const br = withBias.map((x, i) =>
        x * keepRef(99, 1234, 0.3, Math.floor(i / N) * N + (i % N))
      );
      assertClose(dense(aux, M, N, ld), br, 1e-6, "gate branch");
      const expected = br.map((x, i) => {
        const m = Math.floor(i / N), n = i % N;
        const g = gate[Math.floor(m / rowsPerBatch) * stride + n];
        return resid[m * ld + n] + x * (1 + g);
      });
      assertClose(out, expected, 1e-6, "bias_gate_residual");
    }),
});

Deno.test({
  name: "columnSum() matches tf.sum over rows, on a padded stride",
  ...blas,
  fn: () =>
    withKernels(20000, async (k) => {
      await tfCpu();
      const x = fill(k.floats(M * (N + PAD)), 9), out = k.floats(N);
      columnSum(k, { rows: M, cols: N, x, ld: N + PAD, out });
      const ref = tf.tidy(() =>
        values(tf.sum(tf.tensor2d(dense(x, M, N, N + PAD), [M, N]), 0))
      );
      assertClose(out, ref, 1e-6, "column sums");
    }),
});

Deno.test({
  name:
    "matmul() refuses short views, foreign arrays, bad strides and an e overlapping c",
  ...blas,
  fn: () =>
    withKernels(1000, (k) => {
      const a = k.floats(6), b = k.floats(6), c = k.floats(8);
      const op = {
        m: 2,
        n: 2,
        k: 3,
        a: { view: a, ld: 3 },
        b: { view: b, ld: 2 },
        c: { view: c, ld: 2 },
      };
      matmul(k, op);
      assertThrows(
        () => matmul(k, { ...op, a: { view: a.subarray(1), ld: 3 } }),
        RangeError,
        "a is too short: needs 6 elements, got 5",
      );
      assertThrows(
        () => matmul(k, { ...op, a: { view: new Float32Array(6), ld: 3 } }),
        RangeError,
        "must be a view of these kernels' memory",
      );
      assertThrows(
        () => matmul(k, { ...op, b: { view: b, ld: 1 } }),
        RangeError,
        "b.ld must be an integer ≥ 2",
      );
      assertThrows(
        () =>
          matmul(k, {
            ...op,
            epilogue: "bias_residual",
            bias: k.floats(2),
            e: { view: c.subarray(2), ld: 2 },
          }),
        RangeError,
        "e must not overlap c",
      );
      assertThrows(
        () => matmul(k, { ...op, epilogue: "bias" }),
        RangeError,
        "bias needs bias",
      );
      assertEquals(c.length, 8);
    }),
});
