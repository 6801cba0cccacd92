/**
 * AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), over a
 * named set of variables, with state that can be saved and restored exactly.
 *
 * @module
 */
import type { Tensor, Variable } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { adamwUpdate } from "@d3pm/backend/fused-ops";

/** Options of {@linkcode AdamW}. */
export interface AdamWOptions {
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.95, as nanoGPT). */
  beta2?: number;
  /** Denominator epsilon (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.1). */
  weightDecay?: number;
  /**
   * Which variables decay; default: those with two or more dimensions
   * (matrices and embeddings), not biases or LayerNorm gains (nanoGPT).
   */
  decays?: (name: string, variable: Variable) => boolean;
}

/** Saved optimiser state: the step count and both moments per variable. */
export interface AdamWState {
  /** Updates applied so far. */
  step: number;
  /** First moments by variable name. */
  m: Map<string, Float32Array>;
  /** Second moments by variable name. */
  v: Map<string, Float32Array>;
}

/**
 * AdamW over named variables. `p ← p − lr · (m̂ / (√v̂ + eps) + wd · p)`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { AdamW } from "@d3pm/train";
 * import { assert } from "@std/assert";
 * await tf.setBackend("cpu");
 * const x = tf.variable(tf.scalar(3));
 * const opt = new AdamW(new Map([["x", x]]), { weightDecay: 0 });
 * for (let i = 0; i < 200; i++) {
 *   const { grads } = tf.variableGrads(() => x.square() as tf.Scalar, [x]);
 *   opt.step(new Map([["x", grads[x.name]]]), 0.05);
 *   tf.dispose(grads);
 * }
 * assert(Math.abs(x.dataSync()[0]) < 0.1);
 * ```
 */
export class AdamW {
  #vars: ReadonlyMap<string, Variable>;
  #m = new Map<string, Variable>();
  #v = new Map<string, Variable>();
  #decays = new Set<string>();
  #step = 0;
  /** First-moment decay. */
  readonly beta1: number;
  /** Second-moment decay. */
  readonly beta2: number;
  /** Denominator epsilon. */
  readonly eps: number;
  /** Decoupled weight decay. */
  readonly weightDecay: number;

  /**
   * An optimiser with zero moments.
   *
   * @param variables The variables to update, by name.
   * @param options Hyper-parameters.
   */
  constructor(
    variables: ReadonlyMap<string, Variable>,
    options: AdamWOptions = {},
  ) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.95;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.1;
    for (
      const [k, x] of [["beta1", this.beta1], ["beta2", this.beta2]] as const
    ) {
      if (!(x >= 0 && x < 1)) {
        throw new RangeError(`AdamW: ${k} must be in [0, 1), got ${x}`);
      }
    }
    if (!(this.weightDecay >= 0 && this.weightDecay < Infinity)) {
      throw new RangeError(
        `AdamW: weightDecay must be finite and ≥ 0, got ${this.weightDecay}`,
      );
    }
    if (!(this.eps > 0 && this.eps < Infinity)) {
      throw new RangeError(
        `AdamW: eps must be finite and > 0, got ${this.eps}`,
      );
    }
    this.#vars = variables;
    const decays = options.decays ??
      ((_: string, v: Variable) => v.rank >= 2);
    for (const [name, v] of variables) {
      this.#m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(v), false)));
      this.#v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(v), false)));
      if (decays(name, v)) this.#decays.add(name);
    }
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.#step;
  }

  /**
   * Apply one update.
   *
   * A gradient whose name is not one of the optimiser's variables, or whose
   * shape is not its variable's, is refused before anything is updated.
   *
   * @param grads Gradients by variable name (missing ones leave their
   *   variable as it is this step).
   * @param lr Learning rate for this step.
   */
  step(grads: ReadonlyMap<string, Tensor>, lr: number): void {
    if (!Number.isFinite(lr) || lr < 0) {
      throw new RangeError(`AdamW: lr must be finite and ≥ 0, got ${lr}`);
    }
    this.#checkGrads(grads);
    this.#step++;
    const step = this.#step;
    tf.tidy(() => {
      for (const [name, p] of this.#vars) {
        const g = grads.get(name);
        if (!g) continue;
        const m = this.#m.get(name)!, v = this.#v.get(name)!;
        // One fused kernel per variable on blas (tfjs ops elsewhere).
        const next = adamwUpdate({ param: p, grad: g, m, v }, {
          lr,
          beta1: this.beta1,
          beta2: this.beta2,
          eps: this.eps,
          weightDecay: this.#decays.has(name) ? this.weightDecay : 0,
          step,
        });
        m.assign(next.m);
        v.assign(next.v);
        p.assign(next.param);
      }
    });
  }

  /** Every gradient names a variable of this optimiser, of its shape. */
  #checkGrads(grads: ReadonlyMap<string, Tensor>): void {
    for (const [name, g] of grads) {
      if (!g) continue; // no gradient (tf.variableGrads' undefined): left alone
      const p = this.#vars.get(name);
      if (!p) {
        const names = [...this.#vars.keys()];
        const shown = names.slice(0, 5).map((n) => JSON.stringify(n));
        if (names.length > 5) shown.push(`… ${names.length - 5} more`);
        throw new RangeError(
          `AdamW: a gradient for ${
            JSON.stringify(name)
          }, which is not one of the optimiser's ${names.length} variables (${
            shown.join(", ")
          })`,
        );
      }
      if (
        g.shape.length !== p.shape.length ||
        g.shape.some((d, i) => d !== p.shape[i])
      ) {
        throw new RangeError(
          `AdamW: the gradient for ${JSON.stringify(name)} has shape [${
            g.shape.join(", ")
          }], its variable [${p.shape.join(", ")}]`,
        );
      }
    }
  }

  /** A copy of the state, for checkpoints. */
  async state(): Promise<AdamWState> {
    const m = new Map<string, Float32Array>(),
      v = new Map<string, Float32Array>();
    for (const name of this.#vars.keys()) {
      m.set(name, (await this.#m.get(name)!.data()) as Float32Array);
      v.set(name, (await this.#v.get(name)!.data()) as Float32Array);
    }
    return { step: this.#step, m, v };
  }

  /**
   * Restore a saved state (exactly: resuming gives the same updates).
   *
   * @param state From {@linkcode AdamW.state}.
   */
  load(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new RangeError(
        `AdamW state: step must be an integer ≥ 0, got ${state.step}`,
      );
    }
    for (const [name, p] of this.#vars) {
      for (
        const [which, src, dst] of [["m", state.m, this.#m], [
          "v",
          state.v,
          this.#v,
        ]] as const
      ) {
        const data = src.get(name);
        if (!data || data.length !== p.size) {
          throw new RangeError(
            `AdamW state: ${which} of ${name} is ${
              data ? `${data.length} values` : "missing"
            }, expected ${p.size}`,
          );
        }
        tf.tidy(() => dst.get(name)!.assign(tf.tensor(data, p.shape)));
      }
    }
    this.#step = state.step;
  }

  /** Free the moment buffers. */
  dispose(): void {
    for (const x of [...this.#m.values(), ...this.#v.values()]) x.dispose();
  }
}
