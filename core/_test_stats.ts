// Statistics shared by the sampling tests: goodness of fit, the power of a
// test against a stated near miss, and the exact law of the masked-diffusion
// samplers' rows for short rows (a float64 reference both the CPU sampler
// and the engine must follow). Test-only; excluded from publishing.

import { tokenProbabilities } from "./categorical.ts";

// ---- distributions -----------------------------------------------------------

export function logGamma(x: number): number {
  // Lanczos (g = 7, n = 9), |error| < 1e-13 for x > 0.5.
  const c = [
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
  ];
  if (x < 0.5) {
    return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  }
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t +
    Math.log(a);
}

/** Regularised upper incomplete gamma Q(a, x) (Numerical Recipes). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lead = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let sum = 1 / a, term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return 1 - sum * Math.exp(lead);
  }
  // Lentz's continued fraction.
  let b = x + 1 - a, c = 1 / 1e-300, d = 1 / b, h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return Math.exp(lead) * h;
}

/** The upper tail of N(0, 1) beyond z. */
export function normalTail(z: number): number {
  // erfc by its continued fraction / series, through Q(1/2, z²/2).
  return z >= 0 ? 0.5 * gammaQ(0.5, (z * z) / 2) : 1 - normalTail(-z);
}

/** The χ² value with upper tail `alpha` at `df` degrees of freedom. */
export function chiSquareCritical(df: number, alpha: number): number {
  let lo = 0, hi = df + 100 * Math.sqrt(2 * df) + 100;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (gammaQ(df / 2, mid / 2) > alpha) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * P(χ²(df, λ) > critical): the noncentral χ² tail as a Poisson(λ/2)
 * mixture of central ones.
 */
export function noncentralTail(
  df: number,
  lambda: number,
  critical: number,
): number {
  const m = lambda / 2;
  const lo = Math.max(0, Math.floor(m - 12 * Math.sqrt(m) - 12));
  const hi = Math.ceil(m + 12 * Math.sqrt(m) + 12);
  let p = 0;
  for (let j = lo; j <= hi; j++) {
    const w = Math.exp(
      -m + j * Math.log(Math.max(m, 1e-300)) - logGamma(j + 1),
    );
    p += w * gammaQ(df / 2 + j, critical / 2);
  }
  return Math.min(1, p);
}

// ---- Pearson's χ² ---------------------------------------------------------------

/** Pearson's χ² of counts against probabilities. */
export interface Fit {
  chi2: number;
  df: number;
  p: number;
  /** Draws of ids with probability 0. */
  impossible: number;
  /** The bins: ids merged until each expects ≥ 5 draws. */
  groups: number[][];
}

/**
 * The bins of {@linkcode chiSquare}: ids of probability > 0, smallest
 * first, merged until each group expects ≥ 5 of `n` draws.
 */
export function chiSquareGroups(
  probs: ArrayLike<number>,
  n: number,
): number[][] {
  const ids: number[] = [];
  for (let i = 0; i < probs.length; i++) if (probs[i] > 0) ids.push(i);
  ids.sort((a, b) => probs[a] - probs[b]);
  const groups: number[][] = [];
  let e = 0, cur: number[] = [];
  for (const i of ids) {
    e += n * probs[i];
    cur.push(i);
    if (e >= 5) {
      groups.push(cur);
      e = 0;
      cur = [];
    }
  }
  if (cur.length > 0) {
    if (groups.length > 0) groups[groups.length - 1].push(...cur);
    else groups.push(cur);
  }
  return groups;
}

/**
 * Pearson's χ² of counts against probabilities, bins with an expected count
 * under 5 merged (smallest first) until each group expects ≥ 5.
 */
export function chiSquare(
  counts: ArrayLike<number>,
  probs: ArrayLike<number>,
): Fit {
  let n = 0, impossible = 0;
  for (let i = 0; i < counts.length; i++) {
    n += counts[i];
    if (!(probs[i] > 0)) impossible += counts[i];
  }
  const groups = chiSquareGroups(probs, n);
  let chi2 = 0;
  for (const g of groups) {
    let e = 0, o = 0;
    for (const i of g) {
      e += n * probs[i];
      o += counts[i];
    }
    chi2 += (o - e) ** 2 / e;
  }
  const df = groups.length - 1;
  return { chi2, df, p: gammaQ(df / 2, chi2 / 2), impossible, groups };
}

/**
 * The power of {@linkcode chiSquare} at level `alpha` with `n` draws when
 * they really come from `q` instead of `p`: a draw of an id of probability
 * 0 under `p` rejects outright (the tests allow none), else the noncentral
 * χ² with λ = n·Σ_g (q_g − p_g)²/p_g over the test's bins.
 */
export function chiSquarePower(
  p: ArrayLike<number>,
  q: ArrayLike<number>,
  n: number,
  alpha: number,
): number {
  let outside = 0;
  for (let i = 0; i < p.length; i++) if (!(p[i] > 0)) outside += q[i];
  const groups = chiSquareGroups(p, n);
  let lambda = 0;
  for (const g of groups) {
    let pg = 0, qg = 0;
    for (const i of g) {
      pg += p[i];
      qg += q[i];
    }
    lambda += (n * (qg - pg) ** 2) / pg;
  }
  const df = groups.length - 1;
  const fit = noncentralTail(df, lambda, chiSquareCritical(df, alpha));
  return 1 - (1 - fit) * (1 - outside) ** n;
}

/** Counts of ids in [0, vocab). */
export function histogram(
  tokens: ArrayLike<number>,
  vocab: number,
): Float64Array {
  const c = new Float64Array(vocab);
  for (let i = 0; i < tokens.length; i++) c[tokens[i]]++;
  return c;
}

/** `n` float64 draws from probabilities (a reference or near-miss sampler). */
export function drawFrom(
  probs: ArrayLike<number>,
  n: number,
  next: () => number,
): Int32Array {
  const cdf = new Float64Array(probs.length);
  let acc = 0;
  for (let i = 0; i < probs.length; i++) cdf[i] = acc += probs[i];
  const out = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const u = next() * acc;
    let lo = 0, hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    out[r] = lo;
  }
  return out;
}

// ---- the exact law of masked-diffusion rows -------------------------------

/** What {@linkcode samplerLaw} needs to know of a sampler's call. */
export interface LawOptions {
  /** Vocabulary size V (a row is indexed Σ x_i·V^(L−1−i)). */
  vocab: number;
  /** Positions per row L (V^L must stay small). */
  length: number;
  maskId: number;
  /**
   * Per step, the probability that a masked position of the current block
   * is revealed (ancestral), or the fraction of them revealed (confidence);
   * the last step reveals everything left in the block.
   */
  reveal: number[];
  /** Per step, the model's time t ∈ [0, 1] (time-conditioned models only). */
  times?: number[];
  strategy: "ancestral" | "confidence";
  temperature?: number;
  topP?: number;
  /** Ids never drawn (the mask among them). */
  suppress: number[];
  /** Semi-autoregressive blocks (default: the whole row). */
  blockLength?: number;
  /** One row: its positions holding maskId are generated (default: all). */
  prompt?: Int32Array;
}

/** Logits of rows at time t: `rows` is [n, L] ids, the result [n, L, V]. */
export type RowLogits = (
  rows: Int32Array,
  n: number,
  t: number,
) => Promise<Float32Array>;

/** Every partially generated row, and the model's logits at each. */
export interface LawStates {
  rows: Int32Array[];
  /** Per time slot (one, or one per step), [rows, L, V] logits. */
  logits: Float32Array[];
}

/**
 * The rows a generation can pass through with a mask left (the prompt's
 * masked positions each masked or holding an allowed id), and the logits
 * there: computed once, shared by the laws of several settings.
 */
export async function lawStates(
  logits: RowLogits,
  o: Pick<LawOptions, "vocab" | "length" | "maskId" | "suppress" | "prompt"> & {
    times?: number[];
  },
): Promise<LawStates> {
  const { vocab: V, length: L, maskId: M } = o;
  const prompt = o.prompt ?? new Int32Array(L).fill(M);
  const banned = new Set(o.suppress);
  const choices = [M];
  for (let x = 0; x < V; x++) if (!banned.has(x)) choices.push(x);
  const open: number[] = [];
  for (let i = 0; i < L; i++) if (prompt[i] === M) open.push(i);
  const rows: Int32Array[] = [];
  const walk = (j: number, row: Int32Array, masked: boolean) => {
    if (j === open.length) {
      if (masked) rows.push(row.slice());
      return;
    }
    for (const x of choices) {
      row[open[j]] = x;
      walk(j + 1, row, masked || x === M);
    }
  };
  walk(0, prompt.slice(), false);
  const flat = new Int32Array(rows.length * L);
  rows.forEach((s, r) => flat.set(s, r * L));
  const out: Float32Array[] = [];
  for (const t of o.times ?? [1]) out.push(await logits(flat, rows.length, t));
  return { rows, logits: out };
}

/**
 * The probability of every final row, indexed Σ x_i·V^(L−1−i): dynamic
 * programming over the partially revealed rows, with the model's logits at
 * each (float64 draw probabilities, core's `tokenProbabilities`).
 *
 * @param states From {@linkcode lawStates} with the same prompt (and times).
 * @param o The sampler's settings.
 * @returns The law, summing to 1.
 */
export function samplerLaw(states: LawStates, o: LawOptions): Float64Array {
  const V = o.vocab, L = o.length, M = o.maskId;
  if (V ** L > 2 ** 22) throw new RangeError(`V^L = ${V ** L} is too large`);
  const K = o.reveal.length;
  if (states.logits.length !== 1 && states.logits.length !== K) {
    throw new RangeError("one set of logits, or one per step");
  }
  const key = (row: ArrayLike<number>) => {
    let k = 0;
    for (let i = 0; i < L; i++) k = k * V + row[i];
    return k;
  };
  const index = new Map<number, number>();
  states.rows.forEach((r, i) => index.set(key(r), i));
  // Draw probabilities of (state, position) in time slot `slot`: ids and
  // their probabilities, zeros left out.
  const cache = new Map<number, { x: Int32Array; p: Float64Array }>();
  const draws = (slot: number, state: number, pos: number) => {
    const k = (slot * states.rows.length + state) * L + pos;
    let d = cache.get(k);
    if (!d) {
      const at = (state * L + pos) * V;
      const p = tokenProbabilities(
        states.logits[slot].subarray(at, at + V),
        { temperature: o.temperature, topP: o.topP, suppress: o.suppress },
      );
      const xs: number[] = [];
      for (let x = 0; x < V; x++) if (p[x] > 0) xs.push(x);
      d = { x: Int32Array.from(xs), p: Float64Array.from(xs, (x) => p[x]) };
      cache.set(k, d);
    }
    return d;
  };
  const prompt = o.prompt ?? new Int32Array(L).fill(M);
  let dist = new Map<number, number>([[key(prompt), 1]]);
  const block = o.blockLength ?? L;
  const row = new Int32Array(L);
  for (let s0 = 0; s0 < L; s0 += block) {
    const s1 = Math.min(L, s0 + block);
    for (let k = 0; k < K; k++) {
      const slot = states.logits.length === 1 ? 0 : k;
      const last = k === K - 1;
      const r = last ? 1 : o.reveal[k];
      const next = new Map<number, number>();
      const add = (p: number) => {
        const kk = key(row);
        next.set(kk, (next.get(kk) ?? 0) + p);
      };
      for (const [sk, pi] of dist) {
        let rest = sk;
        for (let i = L - 1; i >= 0; i--) {
          row[i] = rest % V;
          rest = Math.floor(rest / V);
        }
        const masked: number[] = [];
        for (let i = s0; i < s1; i++) if (row[i] === M) masked.push(i);
        if (masked.length === 0) {
          add(pi);
          continue;
        }
        const state = index.get(sk)!;
        const ds = masked.map((i) => draws(slot, state, i));
        if (o.strategy === "ancestral") {
          // Each subset of the masked positions revealed together.
          for (let set = 0; set < 1 << masked.length; set++) {
            let w = pi;
            const chosen: number[] = [];
            for (let j = 0; j < masked.length; j++) {
              if (set & (1 << j)) {
                w *= r;
                chosen.push(j);
              } else w *= 1 - r;
            }
            if (w === 0) continue;
            const go = (c: number, p: number) => {
              if (c === chosen.length) return add(p);
              const j = chosen[c], d = ds[j];
              for (let a = 0; a < d.x.length; a++) {
                row[masked[j]] = d.x[a];
                go(c + 1, p * d.p[a]);
              }
              row[masked[j]] = M;
            };
            go(0, w);
          }
        } else {
          // Every masked position draws; the n most probable draws are
          // kept, ties to the lower position; n = round(m·reveal), halves
          // up, in float32 (the samplers' rule: exact halves stay halves).
          const n = last ? masked.length : Math.floor(
            Math.fround(Math.fround(masked.length * Math.fround(r)) + 0.5),
          );
          const pick = new Int32Array(masked.length);
          const go = (j: number, p: number) => {
            if (j === masked.length) {
              const order = masked.map((_, a) => a).sort((a, b) =>
                ds[b].p[pick[b]] - ds[a].p[pick[a]] || a - b
              );
              const kept = order.slice(0, n);
              for (const a of kept) row[masked[a]] = ds[a].x[pick[a]];
              add(p);
              for (const a of kept) row[masked[a]] = M;
              return;
            }
            for (let a = 0; a < ds[j].x.length; a++) {
              pick[j] = a;
              go(j + 1, p * ds[j].p[a]);
            }
          };
          go(0, pi);
        }
      }
      dist = next;
    }
  }
  const law = new Float64Array(V ** L);
  for (const [k, p] of dist) law[k] += p;
  return law;
}

/** Rows ([n, L] ids) of law indices. */
export function rowsOf(
  keys: Int32Array,
  length: number,
  vocab: number,
): Int32Array {
  const rows = new Int32Array(keys.length * length);
  keys.forEach((k, r) => {
    for (let i = length - 1; i >= 0; i--) {
      rows[r * length + i] = k % vocab;
      k = Math.floor(k / vocab);
    }
  });
  return rows;
}

/** The index of each row of `rows` ([n, L]) in a law. */
export function rowKeys(
  rows: Int32Array,
  length: number,
  vocab: number,
): Int32Array {
  const n = rows.length / length;
  const keys = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    let k = 0;
    for (let i = 0; i < length; i++) k = k * vocab + rows[r * length + i];
    keys[r] = k;
  }
  return keys;
}

// ---- testing rows against an exact law --------------------------------------

/** Rows whose law probability is 0 that a test tolerates (f32 nucleus edges). */
export const IMPOSSIBLE_MAX = 2;
/** One-sided z beyond which a likelihood-ratio statistic rejects (p ≈ 3.4e-6). */
export const Z_REJECT = 4.5;
/** Level of the marginal χ² (per test). */
export const CHI2_ALPHA = 1e-5;

const CLIP = -20; // log q/p below this counts as this (q = 0 where p > 0)

/** log q/p, clipped below at -20 (q = 0 where p > 0 counts as -20). */
export function llr(p: number, q: number): number {
  return q > 0 ? Math.max(CLIP, Math.log(q / p)) : CLIP;
}

/** Mean and variance of ℓ = log q/p under `under` (over rows with p > 0). */
export function llrMoments(
  p: Float64Array,
  q: Float64Array,
  under: Float64Array,
): { mean: number; variance: number; mass: number } {
  let mass = 0, m1 = 0, m2 = 0;
  for (let i = 0; i < p.length; i++) {
    if (!(p[i] > 0) || !(under[i] > 0)) continue;
    const l = llr(p[i], q[i]);
    mass += under[i];
    m1 += under[i] * l;
    m2 += under[i] * l * l;
  }
  const mean = mass > 0 ? m1 / mass : 0;
  return { mean, variance: Math.max(0, m2 / mass - mean * mean), mass };
}

/** A wrong sampler a test must tell apart: its exact law. */
export interface NearMiss {
  label: string;
  law: Float64Array;
}

/** The statistics of rows against an exact law. */
export interface LawVerdict {
  /** Rows of probability 0. */
  impossible: number;
  /** Pearson's χ² of every position's histogram against its marginal. */
  marginals: Fit;
  /** Per near miss, the z-score of Σ log q/p (large: the rows look like q). */
  towards: { label: string; z: number }[];
  /** Why the rows are rejected, or null when they pass. */
  rejected: string | null;
}

function marginal(law: Float64Array, L: number, V: number, pos: number) {
  const m = new Float64Array(V);
  const stride = V ** (L - 1 - pos);
  for (let k = 0; k < law.length; k++) {
    if (law[k] > 0) m[Math.floor(k / stride) % V] += law[k];
  }
  return m;
}

/**
 * Test rows against the exact law `p`: no more than {@linkcode IMPOSSIBLE_MAX}
 * rows of probability 0, each position's histogram fits its marginal
 * (χ², level {@linkcode CHI2_ALPHA}), and for each near miss q the rows are
 * not more q-like than p's own draws (z of Σ log q/p below
 * {@linkcode Z_REJECT}) — the most powerful test against that q.
 */
export function checkRows(
  rows: Int32Array,
  length: number,
  vocab: number,
  p: Float64Array,
  misses: NearMiss[],
): LawVerdict {
  const keys = rowKeys(rows, length, vocab);
  const n = keys.length;
  let impossible = 0;
  for (const k of keys) if (!(p[k] > 0)) impossible++;
  // The positions' χ² added up (independent enough: one test of their sum).
  let chi2 = 0, df = 0, imp = 0;
  const groups: number[][] = [];
  for (let pos = 0; pos < length; pos++) {
    const h = new Float64Array(vocab);
    for (let r = 0; r < n; r++) h[rows[r * length + pos]]++;
    const fit = chiSquare(h, marginal(p, length, vocab, pos));
    chi2 += fit.chi2;
    df += fit.df;
    imp += fit.impossible;
    groups.push(...fit.groups);
  }
  const marginals: Fit = {
    chi2,
    df,
    p: gammaQ(df / 2, chi2 / 2),
    impossible: imp,
    groups,
  };
  const towards = misses.map(({ label, law: q }) => {
    const { mean, variance } = llrMoments(p, q, p);
    let s = 0, m = 0;
    for (const k of keys) {
      if (p[k] > 0) {
        s += llr(p[k], q[k]);
        m++;
      }
    }
    return { label, z: (s - m * mean) / Math.sqrt(m * variance) };
  });
  const worst = towards.reduce(
    (a, b) => (b.z > a.z ? b : a),
    { label: "", z: -Infinity },
  );
  const rejected = impossible > IMPOSSIBLE_MAX
    ? `${impossible} rows of probability 0`
    : marginals.p < CHI2_ALPHA
    ? `marginals: χ² ${chi2.toFixed(1)} on ${df} df, p ${
      marginals.p.toExponential(2)
    }`
    : worst.z > Z_REJECT
    ? `the rows look like "${worst.label}": z ${worst.z.toFixed(2)}`
    : null;
  return { impossible, marginals, towards, rejected };
}

/**
 * A lower bound on the power of {@linkcode checkRows} with `n` rows drawn
 * from the near miss q: the larger of P(more than IMPOSSIBLE_MAX rows of
 * p-probability 0) and P(z of Σ log q/p > Z_REJECT) (normal approximation,
 * exact moments under p and q).
 */
export function lawPower(p: Float64Array, q: Float64Array, n: number): number {
  let outside = 0;
  for (let i = 0; i < p.length; i++) if (!(p[i] > 0)) outside += q[i];
  // P(Binomial(n, outside) > IMPOSSIBLE_MAX).
  let below = 0;
  for (let k = 0; k <= IMPOSSIBLE_MAX; k++) {
    below += Math.exp(
      logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1) +
        k * Math.log(Math.max(outside, 1e-300)) +
        (n - k) * Math.log1p(-Math.min(outside, 1 - 1e-16)),
    );
  }
  const byZeros = 1 - Math.min(1, below);
  const h0 = llrMoments(p, q, p), h1 = llrMoments(p, q, q);
  // The rows inside p's support: about n·h1.mass of them.
  const m = n * h1.mass;
  const threshold = m * h0.mean + Z_REJECT * Math.sqrt(m * h0.variance);
  const spread = Math.sqrt(m * h1.variance);
  const byRatio = spread > 0
    ? normalTail((threshold - m * h1.mean) / spread)
    : Number(m * h1.mean > threshold);
  return Math.max(byZeros, byRatio);
}
