import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import {
  attentionBackward,
  type AttentionBias,
  attentionForward,
  rope,
} from "./attention.ts";
import {
  assertClose,
  blas,
  fill,
  keepRef,
  tfCpu,
  withKernels,
} from "./_test_util.ts";

const B = 2, T = 11, H = 3, HD = 6, D = H * HD;

// ALiBi [H, T, T] from its definition in ModelConfig's documentation.
function alibi(bias: AttentionBias): Float32Array {
  const out = new Float32Array(H * T * T);
  for (let h = 0; h < H; h++) {
    const nb = bias.neighbours && h < 2;
    const m = nb ? bias.slope : bias.slope * 2 ** (-8 * h / H);
    const centre = nb ? (h === 0 ? -1 : 1) : 0;
    for (let i = 0; i < T; i++) {
      for (let j = 0; j < T; j++) {
        out[(h * T + i) * T + j] = -m * Math.abs(j - i - centre);
      }
    }
  }
  return out;
}

// The dropout factors [B, H, T, T] of the probabilities.
function keepMask(seed: number, site: number, rate: number): Float32Array {
  return Float32Array.from(
    { length: B * H * T * T },
    (_, i) => keepRef(seed, site, rate, i),
  );
}

// tfjs attention from qkv [B, T, 3d] as the Transformer computes it:
// softmax(q·kᵀ/√hd + mask) (dropped) · v → y [B, T, d], and the lse.
function reference(
  qkv: tf.Tensor,
  causal: boolean,
  bias: AttentionBias | null,
  keep: Float32Array | null,
): { y: tf.Tensor; lse: tf.Tensor } {
  const heads = (z: tf.Tensor) =>
    tf.transpose(tf.reshape(z, [B, T, H, HD]), [0, 2, 1, 3]);
  const [q, k, v] = tf.split(qkv, 3, 2);
  let scores = tf.matMul(
    heads(tf.mul(q, 1 / Math.sqrt(HD))) as tf.Tensor4D,
    heads(k) as tf.Tensor4D,
    false,
    true,
  ); // [B, H, T, T]
  if (causal) {
    const mask = new Float32Array(T * T);
    for (let i = 0; i < T; i++) mask.fill(-1e9, i * T + i + 1, (i + 1) * T);
    scores = tf.add(scores, tf.tensor2d(mask, [T, T]));
  }
  if (bias) scores = tf.add(scores, tf.tensor3d(alibi(bias), [H, T, T]));
  let p = tf.softmax(scores, -1);
  if (keep) p = tf.mul(p, tf.tensor4d(keep, [B, H, T, T]));
  const y = tf.reshape(
    tf.transpose(tf.matMul(p as tf.Tensor4D, heads(v) as tf.Tensor4D), [
      0,
      2,
      1,
      3,
    ]),
    [B, T, D],
  );
  return { y, lse: tf.logSumExp(scores, -1) };
}

const cases: { causal: boolean; alibi: AttentionBias | null; rate: number }[] =
  [
    { causal: true, alibi: null, rate: 0 },
    { causal: false, alibi: null, rate: 0 },
    { causal: false, alibi: { slope: 0.7, neighbours: false }, rate: 0 },
    { causal: false, alibi: { slope: 2, neighbours: true }, rate: 0 },
    { causal: true, alibi: null, rate: 0.2 },
    { causal: false, alibi: { slope: 1, neighbours: true }, rate: 0.2 },
  ];

for (const c of cases) {
  const label = `${c.causal ? "causal" : "bidirectional"}${
    c.alibi ? `, ALiBi ${c.alibi.neighbours ? "neighbours" : "symmetric"}` : ""
  }${c.rate ? `, dropout ${c.rate}` : ""}`;
  Deno.test({
    name:
      `attentionForward() and attentionBackward() match tfjs and its gradient (${label})`,
    ...blas,
    fn: () =>
      withKernels(50000, async (k) => {
        await tfCpu();
        const qkv = fill(k.floats(B * T * 3 * D), 1, 2);
        const y = k.floats(B * T * D), lse = k.floats(B * H * T);
        const probs = k.floats(B * H * T * T);
        const dropout = c.rate
          ? {
            seed: 5,
            site: 777,
            rate: c.rate,
            dropped: k.floats(B * H * T * T),
          }
          : undefined;
        const shape = {
          batch: B,
          length: T,
          heads: H,
          headDim: HD,
          causal: c.causal,
          alibi: c.alibi,
        };
        attentionForward(k, { ...shape, qkv, y, lse, probs, dropout });
        const keep = c.rate ? keepMask(5, 777, c.rate) : null;
        const g = fill(k.floats(B * T * D), 2);
        const dqkv = k.floats(B * T * 3 * D), scratch = k.floats(B * H * T * T);
        const Dv = k.floats(B * H * T);
        attentionBackward(k, {
          ...shape,
          qkv,
          y,
          dy: g,
          probs,
          dqkv,
          scratch,
          D: Dv,
          dropout,
        });
        tf.tidy(() => {
          const x = tf.tensor3d(qkv, [B, T, 3 * D]);
          const ref = reference(x, c.causal, c.alibi, keep);
          assertClose(y, ref.y, 2e-6, "y");
          assertClose(lse, ref.lse, 2e-6, "lse");
          const grad = tf.grad((z: tf.Tensor) =>
            tf.sum(
              tf.mul(
                reference(z, c.causal, c.alibi, keep).y,
                tf.tensor3d(g, [B, T, D]),
              ),
            )
          )(x);
          assertClose(dqkv, grad, 2e-5, "dqkv");
          // D = dy·y per query.
          const dRef = tf.sum(
            tf.transpose(
              tf.reshape(tf.mul(ref.y, tf.tensor3d(g, [B, T, D])), [
                B,
                T,
                H,
                HD,
              ]),
              [0, 2, 1, 3],
            ),
            -1,
          );
          assertClose(Dv, dRef, 2e-6, "D");
        });
        // Masked probabilities are exactly 0.
        if (c.causal) {
          for (let r = 0; r < B * H * T; r++) {
            const i = r % T;
            for (let j = i + 1; j < T; j++) assertEquals(probs[r * T + j], 0);
          }
        }
        assertEquals(tf.memory().numTensors, 0);
      }),
  });
}

Deno.test({
  name:
    "rope() rotates q and k (not v) as tfjs's rotate-half, and backward is its transpose",
  ...blas,
  fn: () =>
    withKernels(20000, async (k) => {
      await tfCpu();
      const half = HD / 2;
      const cos = k.floats(T * half), sin = k.floats(T * half);
      for (let p = 0; p < T; p++) {
        for (let j = 0; j < half; j++) {
          const angle = p * Math.pow(10000, (-2 * j) / HD);
          cos[p * half + j] = Math.cos(angle);
          sin[p * half + j] = Math.sin(angle);
        }
      }
      const qkv = fill(k.floats(B * T * 3 * D), 3);
      const original = qkv.slice();
      rope(k, { rows: B * T, length: T, heads: H, headDim: HD, qkv, cos, sin });
      tf.tidy(() => {
        // [T, hd] tables with each half repeated, as the Transformer's.
        const full = (t: Float32Array) =>
          tf.tensor2d(
            Float32Array.from(
              { length: T * HD },
              (_, i) => t[Math.floor(i / HD) * half + (i % HD) % half],
            ),
            [T, HD],
          );
        const rot = (x: tf.Tensor) => {
          const [x1, x2] = tf.split(x, 2, 3);
          return tf.add(
            tf.mul(x, full(cos)),
            tf.mul(tf.concat([tf.neg(x2), x1], 3), full(sin)),
          );
        };
        const heads = (z: tf.Tensor) =>
          tf.transpose(tf.reshape(z, [B, T, H, HD]), [0, 2, 1, 3]);
        const back = (z: tf.Tensor) =>
          tf.reshape(tf.transpose(z, [0, 2, 1, 3]), [B, T, D]);
        const [q, kk, v] = tf.split(tf.tensor3d(original, [B, T, 3 * D]), 3, 2);
        const expected = tf.concat([
          back(rot(heads(q))),
          back(rot(heads(kk))),
          v,
        ], 2);
        assertClose(qkv, expected, 1e-6, "rotated qkv");
        // The backward of Σ rope(x)·g is rope's transpose applied to g.
        const g = fill(new Float32Array(B * T * 3 * D), 4);
        const grad = tf.grad((z: tf.Tensor) => {
          const [a, b2, c2] = tf.split(z, 3, 2);
          return tf.sum(
            tf.mul(
              tf.concat([back(rot(heads(a))), back(rot(heads(b2))), c2], 2),
              tf.tensor3d(g, [B, T, 3 * D]),
            ),
          );
        })(tf.tensor3d(original, [B, T, 3 * D]));
        qkv.set(g);
        rope(k, {
          rows: B * T,
          length: T,
          heads: H,
          headDim: HD,
          qkv,
          cos,
          sin,
          backward: true,
        });
        assertClose(qkv, grad, 1e-6, "rope backward");
      });
      assertEquals(tf.memory().numTensors, 0);
    }),
});
