import * as tf from "@tensorflow/tfjs";
import {
  type LanguageModel,
  prng,
  type Tensor2D,
  type Tensor3D,
  type TermScorer,
  type WeightedTokens,
} from "@d3pm/core";
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { orderBounds, orderNlls } from "./orders.ts";
import { continuousElbo } from "./elbo.ts";
import { cosineAlpha, logLinear } from "./schedule.ts";

await tf.setBackend("cpu");

// A denoiser in closed form whose prediction depends on what is visible, so
// that orders differ: logit_i(v) = A[i][v] + Σ_{j visible} W[j][x_j][v]
// (ids 0..V−1 text, V the mask, whose logit SUBS leaves out).
const V = 4, L = 4, MASK = V;
const rng = prng(7);
const A = Array.from({ length: L * V }, () => 2 * rng.next() - 1);
const W = Array.from({ length: L * V * V }, () => 3 * rng.next() - 1.5);

function logits64(x: ArrayLike<number>, i: number): number[] {
  const out = Array.from({ length: V }, (_, v) => A[i * V + v]);
  for (let j = 0; j < L; j++) {
    if (x[j] === MASK) continue;
    for (let v = 0; v < V; v++) out[v] += W[(j * V + x[j]) * V + v];
  }
  return out;
}

function logSoftmax(z: number[], v: number): number {
  const m = Math.max(...z);
  return z[v] - m - Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
}

const closedForm: LanguageModel = {
  config: { kind: "bidirectional", vocabSize: V + 1, contextLength: L },
  timeConditioned: false,
  forward: (x: Tensor2D) =>
    tf.tidy(() => {
      const [b] = x.shape;
      const visible = tf.oneHot(x, V + 1).slice([0, 0, 0], [b, L, V])
        .reshape([b, L * V]);
      const context = visible.matMul(tf.tensor2d(W, [L * V, V]));
      const text = context.expandDims(1).add(tf.tensor2d(A, [L, V]));
      return text.concat(tf.zeros([b, L, 1]), 2) as Tensor3D;
    }),
  dispose() {},
};

// The same model as an engine would present it: row sums of weighted CE.
const scorer: TermScorer = {
  config: closedForm.config,
  timeConditioned: false,
  rowLosses: (list: readonly WeightedTokens[]) =>
    Promise.resolve(list.map((b) => {
      const sums = new Float64Array(b.rows);
      for (let r = 0; r < b.rows; r++) {
        const x = b.inputs.subarray(r * L, (r + 1) * L);
        for (let i = 0; i < L; i++) {
          const y = b.targets[r * L + i], w = b.weights[r * L + i];
          if (y >= 0 && w !== 0) {
            sums[r] -= w * logSoftmax(logits64(x, i), y);
          }
        }
      }
      return sums;
    })),
};

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) =>
    Array.from(
      { length: n },
      (_, k) => [...p.slice(0, k), n - 1, ...p.slice(k)],
    )
  );
}

// Brute force: −log p(x | σ) for every one of the L! orders.
function allOrderNlls(x: number[]): number[] {
  return permutations(L).map((sigma) => {
    const seen = Array(L).fill(MASK);
    let nll = 0;
    for (const i of sigma) {
      nll -= logSoftmax(logits64(seen, i), x[i]);
      seen[i] = x[i];
    }
    return nll;
  });
}

const ROWS = [[0, 1, 2, 3], [3, 3, 0, 1]];
const x0 = { tokens: Int32Array.from(ROWS.flat()), batchSize: 2, length: L };

for (
  const [name, model] of [["tfjs", closedForm], [
    "term scorer",
    scorer,
  ]] as const
) {
  Deno.test(`orderNlls (${name}): every drawn order's NLL is one of the brute-force orders', and all 24 are drawn`, async () => {
    const m = await orderNlls(model, x0, {
      maskId: MASK,
      orders: 300,
      prng: prng(1),
    });
    assertEquals(m.nll.length, 600);
    assertEquals([...m.counts], [L, L]);
    for (let r = 0; r < ROWS.length; r++) {
      const exact = allOrderNlls(ROWS[r]);
      // Distinct enough to tell the orders apart (the model reads its context).
      assert(new Set(exact.map((e) => e.toFixed(3))).size >= 20);
      const hit = new Set<number>();
      for (const nll of m.nll.subarray(r * 300, (r + 1) * 300)) {
        const k = exact.findIndex((e) => Math.abs(e - nll) < 2e-4);
        assert(k >= 0, `row ${r}: ${nll} is no order's NLL`);
        hit.add(k);
      }
      assertEquals(hit.size, 24, `row ${r}: orders drawn ${hit.size} of 24`);
    }
  });
}

Deno.test("orderBounds: the mean is the ELBO (the mean over all orders), the importance bound the mixture's NLL", async () => {
  const m = await orderNlls(scorer, x0, {
    maskId: MASK,
    orders: 2000,
    prng: prng(2),
  });
  const b = orderBounds(m);
  let elbo = 0, mixture = 0;
  for (const x of ROWS) {
    const e = allOrderNlls(x);
    elbo += e.reduce((a, v) => a + v, 0) / e.length;
    mixture -= Math.log(e.reduce((a, v) => a + Math.exp(-v), 0) / e.length);
  }
  const tokens = ROWS.length * L;
  // Monte-Carlo over 2,000 orders per row: the spread of a row's NLL across
  // orders is ~1 nat, so the mean is within ~0.01 nats per token.
  assertAlmostEquals(b.elbo.nats, elbo / tokens, 0.02);
  assertAlmostEquals(b.importance.nats, mixture / tokens, 0.02);
  // The mixture is strictly tighter here, by more than the tolerance.
  assert(elbo / tokens - mixture / tokens > 0.05, `${elbo} ${mixture}`);
  assert(b.importance.nats < b.elbo.nats);
  assertAlmostEquals(b.gain.nats, b.elbo.nats - b.importance.nats, 1e-12);
  assert(b.gain.stderr > 0 && b.gain.stderr < b.elbo.stderr);
  assert(b.orderSpread > 0.3);
  // Half the mean variance across orders per token: here the rows' true
  // variances over all 24 orders, within Monte-Carlo error.
  let half = 0;
  for (const x of ROWS) {
    const e = allOrderNlls(x), mu = e.reduce((a, v) => a + v, 0) / e.length;
    half += e.reduce((a, v) => a + (v - mu) ** 2, 0) / e.length / 2;
  }
  assertAlmostEquals(b.normalLimitGain, half / tokens, 0.1 * half / tokens);
});

Deno.test("orderNlls: padding is context, never masked or scored; a bad order count is refused", async () => {
  const PAD = 9; // outside the model's ids: must never reach a softmax target
  const padded = {
    tokens: Int32Array.of(0, 1, PAD, PAD),
    batchSize: 1,
    length: L,
  };
  const seen: Int32Array[] = [];
  const spy: TermScorer = {
    ...scorer,
    rowLosses: (list) => {
      for (const b of list) seen.push(b.inputs.slice());
      return Promise.resolve(list.map((b) => new Float64Array(b.rows).fill(1)));
    },
  };
  const m = await orderNlls(spy, padded, {
    maskId: MASK,
    orders: 2,
    prng: prng(3),
    padId: PAD,
  });
  assertEquals([...m.counts], [2]);
  assertEquals([...m.nll], [2, 2]); // two passes per order, one per token
  for (const inputs of seen) {
    for (let r = 0; r < inputs.length / L; r++) {
      assertEquals([...inputs.subarray(r * L + 2, r * L + 4)], [PAD, PAD]);
    }
  }
  await orderNlls(scorer, x0, { maskId: MASK, orders: 0, prng: prng(0) }).then(
    () => assert(false, "orders 0 accepted"),
    (e) => assert(/orders must be a positive integer, got 0/.test(e.message)),
  );
});

Deno.test("the mean over all orders is the continuous-time ELBO that continuousElbo estimates, for two schedules", async () => {
  let exact = 0;
  for (const x of ROWS) {
    const e = allOrderNlls(x);
    exact += e.reduce((a, v) => a + v, 0) / e.length;
  }
  exact /= ROWS.length * L;
  for (const schedule of [logLinear(), cosineAlpha()]) {
    const est = await continuousElbo(closedForm, x0, {
      schedule,
      maskId: MASK,
      prng: prng(5),
      samples: 4000,
      draws: "count",
    });
    // An independent estimator (masks by count, weighted by the schedule):
    // within 4 of its standard errors of the exact order average.
    assert(
      Math.abs(est.nats - exact) < 4 * est.stderr,
      `${est.nats} ± ${est.stderr} vs ${exact}`,
    );
    assert(est.stderr < 0.02, `${est.stderr}`);
  }
});

Deno.test("orderNlls refuses a denoiser that reads t, and orderBounds a table of the wrong size", async () => {
  const timed = { ...scorer, timeConditioned: true };
  await orderNlls(timed, x0, { maskId: MASK, orders: 1, prng: prng(0) }).then(
    () => assert(false, "a time-conditioned denoiser accepted"),
    (e) => assert(/reads t/.test(e.message), e.message),
  );
  let message = "";
  try {
    orderBounds({
      nll: Float64Array.of(1, 2, 3),
      orders: 2,
      counts: Float64Array.of(4, 4),
    });
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(
    message,
    "orderBounds: nll holds 3 values for 2 rows × 2 orders",
  );
});

Deno.test("orderBounds: on a given table, each bound and its standard error in closed form (equal rows: the textbook se of a mean)", () => {
  // 4 rows of 5 tokens, 3 orders each. Per row: the ELBO is the mean of the
  // orders' NLLs, the importance bound −log mean exp(−NLL); per token, the
  // estimate is their mean over rows and the standard error their sample sd
  // (n − 1) over √4. Tolerance 1e-12. Catches the variance over n instead
  // of n − 1, unseen by the Monte-Carlo tests (they compare means only).
  const nll = Float64Array.of(
    ...[10, 12, 11],
    ...[7, 9.5, 8],
    ...[13, 12.5, 15],
    ...[9, 9, 10.5],
  );
  const b = orderBounds({
    nll,
    orders: 3,
    counts: new Float64Array(4).fill(5),
  });
  const rows = [0, 1, 2, 3].map((r) =>
    Array.from(nll.subarray(3 * r, 3 * r + 3))
  );
  const check = (est: { nats: number; stderr: number }, perRow: number[]) => {
    const x = perRow.map((v) => v / 5);
    const mu = x.reduce((a, v) => a + v, 0) / 4;
    const sd = Math.sqrt(x.reduce((a, v) => a + (v - mu) ** 2, 0) / 3);
    assertAlmostEquals(est.nats, mu, 1e-12);
    assertAlmostEquals(est.stderr, sd / 2, 1e-12);
  };
  check(b.elbo, rows.map((v) => (v[0] + v[1] + v[2]) / 3));
  check(
    b.importance,
    rows.map((v) => -Math.log(v.reduce((a, x) => a + Math.exp(-x), 0) / 3)),
  );
});
