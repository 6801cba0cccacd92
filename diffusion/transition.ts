/**
 * D3PM transition matrices behind one interface.
 *
 * **Orientation (used everywhere in this package):** `Q_t[i][j] =
 * q(x_t = j | x_{t−1} = i)` — rows are the earlier state and sum to 1; a
 * distribution is a row vector `p` and one step maps it to `p Q_t`. The
 * cumulative matrix is `Q̄_t = Q_1 Q_2 … Q_t`, with `Q̄_0 = I`, so row `x_0`
 * of `Q̄_t` is `q(x_t | x_0)`. Dense matrices are stored row-major in a
 * `Float64Array` of `V × V`.
 *
 * `absorbing` and `uniform` never build `V × V` matrices on their hot paths
 * (`cumulativeRow`, `stepColumn`, `cumulativeApply`, `posterior`, `noise`):
 * only `step` and `cumulative` do, for tests and small `V`. `matrix` is the
 * slow, generic reference (any list of `Q_t`) the closed forms are tested
 * against.
 *
 * @module
 */
import { type Prng, sampleCategorical } from "@d3pm/core";
import type { DiscreteSchedule } from "./schedule.ts";

/** What kind of transition it is. */
export type TransitionKind = "absorbing" | "uniform" | "matrix";

/** A D3PM forward process over `numStates` categories. */
export interface Transition {
  /** Which transition. */
  readonly kind: TransitionKind;
  /** Number of categories `V`. */
  readonly numStates: number;
  /** Number of steps `T`. */
  readonly steps: number;
  /** The absorbing state (absorbing only). */
  readonly maskId?: number;
  /** The schedule (absorbing and uniform; a `matrix` transition has none). */
  readonly schedule?: DiscreteSchedule;
  /** Dense `Q_t`, `t ∈ [1, T]` (V × V, row-major; slow for large V). */
  step(t: number): Float64Array;
  /** Dense `Q̄_t`, `t ∈ [0, T]` (V × V; slow for large V). */
  cumulative(t: number): Float64Array;
  /** The distribution that `q(x_T | x_0)` tends to. */
  stationary(): Float64Array;
  /** Row `x0` of `Q̄_t`: `q(x_t = · | x_0)`. */
  cumulativeRow(x0: number, t: number): Float64Array;
  /** Column `xt` of `Q_t`: `q(x_t | x_{t−1} = ·)`, a likelihood over `x_{t−1}`. */
  stepColumn(xt: number, t: number): Float64Array;
  /** The row vector `p Q̄_t`. */
  cumulativeApply(p: ArrayLike<number>, t: number): Float64Array;
  /**
   * `q(x_{t−1} | x_t, x_0)` averaged over `x_0 ~ p0`, i.e. proportional to
   * `Q_t[·, x_t] ⊙ (p0 Q̄_{t−1})`, for `t ∈ [1, T]`. With `p0` one-hot it is the
   * true posterior; with a model's `p̃(x_0 | x_t)` it is D3PM's
   * x0-parameterised `p_θ(x_{t−1} | x_t)`.
   */
  posterior(xt: number, p0: ArrayLike<number>, t: number): Float64Array;
  /** Draw `x_t ~ q(x_t | x_0)` for every token. */
  noise(x0: ArrayLike<number>, t: number, prng: Prng): Int32Array;
}

function checkStates(v: number): void {
  if (!Number.isInteger(v) || v < 2) {
    throw new RangeError(
      `Cannot build transition: numStates must be an integer ≥ 2, got ${v}`,
    );
  }
}

/** Shared pieces: posterior from column ⊙ apply, dense cumulative from rows. */
abstract class Base implements Transition {
  abstract readonly kind: TransitionKind;
  abstract readonly numStates: number;
  abstract readonly steps: number;
  abstract step(t: number): Float64Array;
  abstract stationary(): Float64Array;
  abstract cumulativeRow(x0: number, t: number): Float64Array;
  abstract stepColumn(xt: number, t: number): Float64Array;
  abstract cumulativeApply(p: ArrayLike<number>, t: number): Float64Array;
  abstract noise(x0: ArrayLike<number>, t: number, prng: Prng): Int32Array;

  protected checkStep(t: number, lo: number): void {
    if (!Number.isInteger(t) || t < lo || t > this.steps) {
      throw new RangeError(
        `Step must be an integer in [${lo}, ${this.steps}], got ${t}`,
      );
    }
  }

  protected checkState(x: number): void {
    if (!Number.isInteger(x) || x < 0 || x >= this.numStates) {
      throw new RangeError(
        `State must be an integer in [0, ${this.numStates}), got ${x}`,
      );
    }
  }

  cumulative(t: number): Float64Array {
    const v = this.numStates;
    const out = new Float64Array(v * v);
    for (let i = 0; i < v; i++) out.set(this.cumulativeRow(i, t), i * v);
    return out;
  }

  posterior(xt: number, p0: ArrayLike<number>, t: number): Float64Array {
    this.checkStep(t, 1);
    const col = this.stepColumn(xt, t);
    const prior = this.cumulativeApply(p0, t - 1);
    let z = 0;
    for (let i = 0; i < col.length; i++) {
      col[i] *= prior[i];
      z += col[i];
    }
    if (!(z > 0)) {
      throw new RangeError(
        `Posterior is undefined: x_t = ${xt} is impossible at step ${t} under p0`,
      );
    }
    for (let i = 0; i < col.length; i++) col[i] /= z;
    return col;
  }
}

/**
 * Absorbing-state ("mask") diffusion: at step `t` a token that is not the mask
 * becomes the mask with probability `beta(t)` and otherwise stays; the mask
 * stays forever. `q(x_t | x_0)` keeps `x_0` with probability `alphaBar(t)`.
 *
 * @param schedule The discrete schedule.
 * @param options `numStates` V (the mask is one of them) and `maskId`.
 * @returns The transition.
 *
 * @example
 * ```ts
 * import { absorbing, absorbingBeta } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * const q = absorbing(absorbingBeta({ steps: 10 }), { numStates: 5, maskId: 4 });
 * const row = q.cumulativeRow(2, 3); // q(x_3 | x_0 = 2)
 * assertAlmostEquals(row[2], 0.7, 1e-12);
 * assertAlmostEquals(row[4], 0.3, 1e-12);
 * ```
 */
export function absorbing(
  schedule: DiscreteSchedule,
  options: { numStates: number; maskId: number },
): Transition {
  return new Absorbing(schedule, options.numStates, options.maskId);
}

class Absorbing extends Base {
  readonly kind = "absorbing" as const;
  readonly steps: number;
  constructor(
    readonly schedule: DiscreteSchedule,
    readonly numStates: number,
    readonly maskId: number,
  ) {
    super();
    checkStates(numStates);
    if (!Number.isInteger(maskId) || maskId < 0 || maskId >= numStates) {
      throw new RangeError(
        `Cannot build absorbing transition: maskId must be in [0, ${numStates}), got ${maskId}`,
      );
    }
    this.steps = schedule.steps;
  }

  step(t: number): Float64Array {
    this.checkStep(t, 1);
    const v = this.numStates, m = this.maskId, b = this.schedule.beta(t);
    const q = new Float64Array(v * v);
    for (let i = 0; i < v; i++) {
      if (i === m) q[i * v + m] = 1;
      else {
        q[i * v + i] = 1 - b;
        q[i * v + m] += b;
      }
    }
    return q;
  }

  stationary(): Float64Array {
    const p = new Float64Array(this.numStates);
    p[this.maskId] = 1;
    return p;
  }

  cumulativeRow(x0: number, t: number): Float64Array {
    this.checkState(x0);
    this.checkStep(t, 0);
    const row = new Float64Array(this.numStates);
    if (x0 === this.maskId) {
      row[x0] = 1;
      return row;
    }
    const a = this.schedule.alphaBar(t);
    row[x0] = a;
    row[this.maskId] += 1 - a;
    return row;
  }

  stepColumn(xt: number, t: number): Float64Array {
    this.checkState(xt);
    this.checkStep(t, 1);
    const b = this.schedule.beta(t);
    const col = new Float64Array(this.numStates);
    if (xt === this.maskId) {
      col.fill(b);
      col[xt] = 1;
    } else {
      col[xt] = 1 - b;
    }
    return col;
  }

  cumulativeApply(p: ArrayLike<number>, t: number): Float64Array {
    this.checkStep(t, 0);
    const a = this.schedule.alphaBar(t), m = this.maskId;
    const out = new Float64Array(this.numStates);
    let moved = 0;
    for (let j = 0; j < out.length; j++) {
      if (j === m) continue;
      out[j] = a * p[j];
      moved += (1 - a) * p[j];
    }
    out[m] = p[m] + moved;
    return out;
  }

  noise(x0: ArrayLike<number>, t: number, prng: Prng): Int32Array {
    this.checkStep(t, 0);
    const a = this.schedule.alphaBar(t);
    const out = new Int32Array(x0.length);
    for (let i = 0; i < x0.length; i++) {
      out[i] = prng.next() < a ? x0[i] : this.maskId;
    }
    return out;
  }
}

/**
 * Uniform diffusion: at step `t` a token is redrawn uniformly over all `V`
 * states with probability `beta(t)`, so
 * `Q̄_t = alphaBar(t) I + (1 − alphaBar(t)) 11ᵀ / V`.
 *
 * @param schedule The discrete schedule.
 * @param options `numStates` V.
 * @returns The transition.
 *
 * @example
 * ```ts
 * import { linearBeta, uniform } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * const q = uniform(linearBeta({ steps: 2, start: 0.5, end: 0.5 }), { numStates: 4 });
 * // alphaBar(2) = 0.25: stay w.p. 0.25 + 0.75/4
 * assertAlmostEquals(q.cumulativeRow(1, 2)[1], 0.4375, 1e-12);
 * ```
 */
export function uniform(
  schedule: DiscreteSchedule,
  options: { numStates: number },
): Transition {
  return new Uniform(schedule, options.numStates);
}

class Uniform extends Base {
  readonly kind = "uniform" as const;
  readonly steps: number;
  constructor(readonly schedule: DiscreteSchedule, readonly numStates: number) {
    super();
    checkStates(numStates);
    this.steps = schedule.steps;
  }

  step(t: number): Float64Array {
    this.checkStep(t, 1);
    const v = this.numStates, b = this.schedule.beta(t);
    const q = new Float64Array(v * v).fill(b / v);
    for (let i = 0; i < v; i++) q[i * v + i] += 1 - b;
    return q;
  }

  stationary(): Float64Array {
    return new Float64Array(this.numStates).fill(1 / this.numStates);
  }

  cumulativeRow(x0: number, t: number): Float64Array {
    this.checkState(x0);
    this.checkStep(t, 0);
    const a = this.schedule.alphaBar(t);
    const row = new Float64Array(this.numStates).fill((1 - a) / this.numStates);
    row[x0] += a;
    return row;
  }

  stepColumn(xt: number, t: number): Float64Array {
    this.checkState(xt);
    this.checkStep(t, 1);
    const b = this.schedule.beta(t);
    const col = new Float64Array(this.numStates).fill(b / this.numStates);
    col[xt] += 1 - b;
    return col;
  }

  cumulativeApply(p: ArrayLike<number>, t: number): Float64Array {
    this.checkStep(t, 0);
    const a = this.schedule.alphaBar(t);
    let total = 0;
    for (let j = 0; j < this.numStates; j++) total += p[j];
    const out = new Float64Array(this.numStates);
    for (let j = 0; j < out.length; j++) {
      out[j] = a * p[j] + ((1 - a) * total) / this.numStates;
    }
    return out;
  }

  noise(x0: ArrayLike<number>, t: number, prng: Prng): Int32Array {
    this.checkStep(t, 0);
    const a = this.schedule.alphaBar(t);
    const out = new Int32Array(x0.length);
    for (let i = 0; i < x0.length; i++) {
      out[i] = prng.next() < a ? x0[i] : prng.nextInt(this.numStates);
    }
    return out;
  }
}

/**
 * The generic, slow reference: any list of dense step matrices `Q_1..Q_T`
 * (each V × V, row-stochastic); `Q̄_t` is their product, computed once.
 *
 * @param steps The matrices `Q_1..Q_T`, row-major.
 * @param options `numStates` V.
 * @returns The transition.
 *
 * @example
 * ```ts
 * import { matrixTransition } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * const flip = Float64Array.of(0.9, 0.1, 0.1, 0.9);
 * const q = matrixTransition([flip, flip], { numStates: 2 });
 * assertAlmostEquals(q.cumulativeRow(0, 2)[0], 0.82, 1e-12);
 * ```
 */
export function matrixTransition(
  steps: Float64Array[],
  options: { numStates: number },
): Transition {
  return new Matrix(steps, options.numStates);
}

class Matrix extends Base {
  readonly kind = "matrix" as const;
  readonly steps: number;
  #q: Float64Array[];
  #bar: Float64Array[];
  constructor(q: Float64Array[], readonly numStates: number) {
    super();
    checkStates(numStates);
    const v = numStates;
    q.forEach((m, i) => {
      if (m.length !== v * v) {
        throw new RangeError(
          `Cannot build matrix transition: Q_${
            i + 1
          } has ${m.length} entries, expected ${v * v}`,
        );
      }
      for (let r = 0; r < v; r++) {
        let s = 0;
        for (let c = 0; c < v; c++) s += m[r * v + c];
        if (Math.abs(s - 1) > 1e-9) {
          throw new RangeError(
            `Cannot build matrix transition: row ${r} of Q_${
              i + 1
            } sums to ${s}, expected 1`,
          );
        }
      }
    });
    this.steps = q.length;
    this.#q = q;
    const eye = new Float64Array(v * v);
    for (let i = 0; i < v; i++) eye[i * v + i] = 1;
    this.#bar = [eye];
    for (const m of q) this.#bar.push(matmul(this.#bar.at(-1)!, m, v));
  }

  step(t: number): Float64Array {
    this.checkStep(t, 1);
    return this.#q[t - 1].slice();
  }

  override cumulative(t: number): Float64Array {
    this.checkStep(t, 0);
    return this.#bar[t].slice();
  }

  stationary(): Float64Array {
    // The rows of Q̄_T agree when the chain has mixed; report row 0.
    return this.#bar[this.steps].slice(0, this.numStates);
  }

  cumulativeRow(x0: number, t: number): Float64Array {
    this.checkState(x0);
    this.checkStep(t, 0);
    const v = this.numStates;
    return this.#bar[t].slice(x0 * v, (x0 + 1) * v);
  }

  stepColumn(xt: number, t: number): Float64Array {
    this.checkState(xt);
    this.checkStep(t, 1);
    const v = this.numStates, q = this.#q[t - 1];
    const col = new Float64Array(v);
    for (let i = 0; i < v; i++) col[i] = q[i * v + xt];
    return col;
  }

  cumulativeApply(p: ArrayLike<number>, t: number): Float64Array {
    this.checkStep(t, 0);
    const v = this.numStates, m = this.#bar[t];
    const out = new Float64Array(v);
    for (let i = 0; i < v; i++) {
      const pi = p[i];
      if (pi === 0) continue;
      for (let j = 0; j < v; j++) out[j] += pi * m[i * v + j];
    }
    return out;
  }

  noise(x0: ArrayLike<number>, t: number, prng: Prng): Int32Array {
    const out = new Int32Array(x0.length);
    for (let i = 0; i < x0.length; i++) {
      out[i] = sampleCategorical(this.cumulativeRow(x0[i], t), prng);
    }
    return out;
  }
}

function matmul(a: Float64Array, b: Float64Array, v: number): Float64Array {
  const out = new Float64Array(v * v);
  for (let i = 0; i < v; i++) {
    for (let k = 0; k < v; k++) {
      const aik = a[i * v + k];
      if (aik === 0) continue;
      for (let j = 0; j < v; j++) out[i * v + j] += aik * b[k * v + j];
    }
  }
  return out;
}
