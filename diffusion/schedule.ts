/**
 * Noise schedules.
 *
 * A **continuous** schedule gives `alpha(t)`, the probability that a token is
 * still clean at time `t ∈ [0, 1]` (`alpha(0) = 1`, decreasing), and its
 * derivative. A **discrete** schedule over `T` steps gives `beta(t)` for
 * `t = 1..T` (the probability that step `t` corrupts a still-clean token) and
 * `alphaBar(t) = ∏_{s ≤ t} (1 − beta(s))`, with `alphaBar(0) = 1`.
 *
 * @module
 */

/** A continuous-time schedule on `t ∈ [0, 1]`. */
export interface ContinuousSchedule {
  /** Name and parameters, for reports. */
  readonly name: string;
  /** Probability that a token is still clean at `t`. */
  alpha(t: number): number;
  /** d alpha / dt at `t` (≤ 0). */
  alphaPrime(t: number): number;
}

/** A discrete-time schedule over steps `1..steps`. */
export interface DiscreteSchedule {
  /** Name and parameters, for reports. */
  readonly name: string;
  /** Number of steps `T`. */
  readonly steps: number;
  /** Corruption probability of step `t ∈ [1, T]`. */
  beta(t: number): number;
  /** Probability that a token is still clean after `t ∈ [0, T]` steps. */
  alphaBar(t: number): number;
}

function checkT(t: number): void {
  if (!(t >= 0 && t <= 1)) {
    throw new RangeError(`Schedule time must be in [0, 1], got ${t}`);
  }
}

function checkSteps(steps: number): void {
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(
      `Cannot build schedule: steps must be a positive integer, got ${steps}`,
    );
  }
}

/**
 * MDLM's log-linear schedule: total noise `σ(t) = −log(1 − (1 − ε) t)`, so
 * `alpha(t) = 1 − (1 − ε) t` and the ELBO weight `−alpha′/(1 − alpha)` is
 * exactly `1/t`.
 *
 * @param options `eps` in (0, 1), default 1e-3: `alpha(1) = eps`.
 * @returns The schedule.
 *
 * @example
 * ```ts
 * import { logLinear } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * const s = logLinear();
 * const t = 0.3;
 * assertAlmostEquals(-s.alphaPrime(t) / (1 - s.alpha(t)), 1 / t, 1e-12);
 * ```
 */
export function logLinear(options: { eps?: number } = {}): ContinuousSchedule {
  const eps = options.eps ?? 1e-3;
  if (!(eps > 0 && eps < 1)) {
    throw new RangeError(
      `Cannot build schedule: eps must be in (0, 1), got ${eps}`,
    );
  }
  return {
    name: `logLinear(eps=${eps})`,
    alpha: (t) => (checkT(t), 1 - (1 - eps) * t),
    alphaPrime: (t) => (checkT(t), -(1 - eps)),
  };
}

/**
 * The linear schedule `alpha(t) = 1 − t`.
 *
 * @returns The schedule.
 *
 * @example
 * ```ts
 * import { linearAlpha } from "@d3pm/diffusion";
 * import { assertEquals } from "@std/assert";
 * assertEquals(linearAlpha().alpha(0.25), 0.75);
 * ```
 */
export function linearAlpha(): ContinuousSchedule {
  return {
    name: "linear",
    alpha: (t) => (checkT(t), 1 - t),
    alphaPrime: (t) => (checkT(t), -1),
  };
}

/**
 * The cosine schedule `alpha(t) = cos(π t / 2)`.
 *
 * @returns The schedule.
 *
 * @example
 * ```ts
 * import { cosineAlpha } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * assertAlmostEquals(cosineAlpha().alpha(1), 0, 1e-12);
 * ```
 */
export function cosineAlpha(): ContinuousSchedule {
  return {
    name: "cosine",
    alpha: (t) => (checkT(t), t === 1 ? 0 : Math.cos((Math.PI * t) / 2)),
    alphaPrime: (
      t,
    ) => (checkT(t), -(Math.PI / 2) * Math.sin((Math.PI * t) / 2)),
  };
}

/** Build a discrete schedule from its `alphaBar` table (index 0..T). */
function fromAlphaBar(name: string, alphaBar: Float64Array): DiscreteSchedule {
  const steps = alphaBar.length - 1;
  const checkStep = (t: number, lo: number) => {
    if (!Number.isInteger(t) || t < lo || t > steps) {
      throw new RangeError(
        `Step must be an integer in [${lo}, ${steps}], got ${t}`,
      );
    }
  };
  return {
    name,
    steps,
    alphaBar: (t) => (checkStep(t, 0), alphaBar[t]),
    beta: (t) => {
      checkStep(t, 1);
      return alphaBar[t - 1] === 0 ? 1 : 1 - alphaBar[t] / alphaBar[t - 1];
    },
  };
}

/**
 * D3PM's schedule for absorbing diffusion, `beta(t) = 1/(T − t + 1)`: each
 * step corrupts an equal share of what is left, so `alphaBar(t) = 1 − t/T`
 * and `alphaBar(T) = 0` (everything masked).
 *
 * @param options `steps` T (default 1000).
 * @returns The schedule.
 *
 * @example
 * ```ts
 * import { absorbingBeta } from "@d3pm/diffusion";
 * import { assertAlmostEquals, assertEquals } from "@std/assert";
 * const s = absorbingBeta({ steps: 1000 });
 * assertEquals(s.beta(1000), 1);
 * assertAlmostEquals(s.alphaBar(250), 0.75, 1e-12);
 * ```
 */
export function absorbingBeta(
  options: { steps?: number } = {},
): DiscreteSchedule {
  const steps = options.steps ?? 1000;
  checkSteps(steps);
  const ab = new Float64Array(steps + 1);
  for (let t = 0; t <= steps; t++) ab[t] = 1 - t / steps;
  return fromAlphaBar(`absorbingBeta(T=${steps})`, ab);
}

/**
 * Linearly increasing `beta(t)` from `start` to `end` (DDPM-style):
 * `beta(t) = start + (end − start)·(t − 1)/(T − 1)`, numpy's
 * `linspace(start, end, T)`, so `beta(1) = start` and `beta(T) = end`.
 *
 * With `steps: 1` the two cannot both hold, and the one step is the last:
 * `beta(1) = end` (numpy's `linspace(start, end, 1)` would give `start`).
 * Every length then ends on the same `beta(T) = end`, and a one-step
 * schedule noises as much as the last step of a longer one instead of
 * keeping nearly all the data (1 − start, 0.9999 by default).
 *
 * @param options `steps` (default 1000), `start` (1e-4) and `end` (0.02), in [0, 1].
 * @returns The schedule.
 *
 * @example
 * ```ts
 * import { linearBeta } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * const s = linearBeta({ steps: 3, start: 0.1, end: 0.3 });
 * assertAlmostEquals(s.beta(2), 0.2, 1e-12);
 * assertAlmostEquals(s.alphaBar(3), 0.9 * 0.8 * 0.7, 1e-12);
 * ```
 */
export function linearBeta(
  options: { steps?: number; start?: number; end?: number } = {},
): DiscreteSchedule {
  const steps = options.steps ?? 1000;
  const start = options.start ?? 1e-4;
  const end = options.end ?? 0.02;
  checkSteps(steps);
  for (const [k, v] of [["start", start], ["end", end]] as const) {
    if (!(v >= 0 && v <= 1)) {
      throw new RangeError(
        `Cannot build schedule: ${k} must be in [0, 1], got ${v}`,
      );
    }
  }
  const ab = new Float64Array(steps + 1);
  ab[0] = 1;
  for (let t = 1; t <= steps; t++) {
    const beta = steps === 1
      ? end
      : start + ((end - start) * (t - 1)) / (steps - 1);
    ab[t] = ab[t - 1] * (1 - beta);
  }
  return fromAlphaBar(`linearBeta(T=${steps},${start}..${end})`, ab);
}

/**
 * The cosine schedule of Nichol & Dhariwal: `alphaBar(t) = f(t)/f(0)` with
 * `f(t) = cos²(((t/T + s)/(1 + s)) · π/2)`, each `beta` clipped to 0.999
 * except the last, which is 1 (`alphaBar(T) = 0`).
 *
 * @param options `steps` (default 1000) and offset `s` (default 0.008).
 * @returns The schedule.
 *
 * @example
 * ```ts
 * import { cosineBeta } from "@d3pm/diffusion";
 * import { assert, assertEquals } from "@std/assert";
 * const s = cosineBeta({ steps: 100 });
 * assertEquals(s.alphaBar(100), 0);
 * assert(s.beta(1) < s.beta(50));
 * ```
 */
export function cosineBeta(
  options: { steps?: number; s?: number } = {},
): DiscreteSchedule {
  const steps = options.steps ?? 1000;
  const s = options.s ?? 0.008;
  checkSteps(steps);
  if (!(s >= 0)) {
    throw new RangeError(`Cannot build schedule: s must be ≥ 0, got ${s}`);
  }
  const f = (t: number) =>
    Math.cos(((t / steps + s) / (1 + s)) * Math.PI / 2) ** 2;
  const ab = new Float64Array(steps + 1);
  ab[0] = 1;
  for (let t = 1; t <= steps; t++) {
    const beta = t === steps ? 1 : Math.min(1 - f(t) / f(t - 1), 0.999);
    ab[t] = ab[t - 1] * (1 - beta);
  }
  return fromAlphaBar(`cosineBeta(T=${steps},s=${s})`, ab);
}

/**
 * A discrete schedule with `alphaBar(t) = alpha(t/T)` for `t < T` and
 * `alphaBar(T) = 0`, so the last step masks whatever `alpha(1)` left clean
 * and the prior term of the bound vanishes.
 *
 * @param schedule The continuous schedule.
 * @param options `steps` T (default 1000).
 * @returns The discrete schedule.
 *
 * @example
 * ```ts
 * import { discretize, linearAlpha } from "@d3pm/diffusion";
 * import { assertAlmostEquals } from "@std/assert";
 * const s = discretize(linearAlpha(), { steps: 10 });
 * assertAlmostEquals(s.beta(2), 0.1 / 0.9, 1e-12);
 * ```
 */
export function discretize(
  schedule: ContinuousSchedule,
  options: { steps?: number } = {},
): DiscreteSchedule {
  const steps = options.steps ?? 1000;
  checkSteps(steps);
  const ab = new Float64Array(steps + 1);
  for (let t = 0; t < steps; t++) ab[t] = schedule.alpha(t / steps);
  ab[steps] = 0;
  return fromAlphaBar(`${schedule.name}@T=${steps}`, ab);
}
