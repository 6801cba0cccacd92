/**
 * Exponential moving average of weights, used for evaluation.
 *
 * @module
 */
import type { Tensor, Variable } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";

/**
 * Keeps `ema ← decay · ema + (1 − decay) · p` for every variable, and can
 * swap its values into the model for evaluation.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Ema } from "@d3pm/train";
 * import { assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const p = tf.variable(tf.scalar(0));
 * const ema = new Ema(new Map([["p", p]]), { decay: 0.5 });
 * p.assign(tf.scalar(1));
 * ema.update();
 * assertAlmostEquals(ema.values.get("p")!.dataSync()[0], 0.5, 1e-7);
 * ```
 */
export class Ema {
  #vars: ReadonlyMap<string, Variable>;
  #ema = new Map<string, Variable>();
  /** The decay per update. */
  readonly decay: number;

  /**
   * An average that starts at the variables' current values.
   *
   * @param variables The model's variables (their current values start the average).
   * @param options `decay` in [0, 1) (default 0.999).
   */
  constructor(
    variables: ReadonlyMap<string, Variable>,
    options: { decay?: number } = {},
  ) {
    this.decay = options.decay ?? 0.999;
    if (!(this.decay >= 0 && this.decay < 1)) {
      throw new RangeError(`Ema: decay must be in [0, 1), got ${this.decay}`);
    }
    this.#vars = variables;
    for (const [name, v] of variables) {
      this.#ema.set(name, tf.tidy(() => tf.variable(v.clone(), false)));
    }
  }

  /** The averaged values by name. */
  get values(): ReadonlyMap<string, Variable> {
    return this.#ema;
  }

  /** Fold the current weights into the average. */
  update(): void {
    tf.tidy(() => {
      for (const [name, v] of this.#vars) {
        const e = this.#ema.get(name)!;
        e.assign(e.mul(this.decay).add(v.mul(1 - this.decay)));
      }
    });
  }

  /**
   * Run `f` with the averaged weights in the model, then put the trained
   * weights back (also when `f` throws).
   *
   * @param f What to run, e.g. an evaluation.
   * @returns What `f` returns.
   */
  async withAveraged<T>(f: () => Promise<T> | T): Promise<T> {
    const saved = new Map<string, Tensor>();
    for (const [name, v] of this.#vars) {
      saved.set(name, v.clone());
      v.assign(this.#ema.get(name)!);
    }
    try {
      return await f();
    } finally {
      for (const [name, v] of this.#vars) v.assign(saved.get(name)!);
      tf.dispose([...saved.values()]);
    }
  }

  /**
   * Replace the average (from a checkpoint).
   *
   * @param values Arrays by name, each the size of its variable.
   */
  load(values: ReadonlyMap<string, Float32Array>): void {
    for (const [name, v] of this.#vars) {
      const data = values.get(name);
      if (!data || data.length !== v.size) {
        throw new RangeError(
          `Ema: ${name} is ${
            data ? `${data.length} values` : "missing"
          }, expected ${v.size}`,
        );
      }
      tf.tidy(() => this.#ema.get(name)!.assign(tf.tensor(data, v.shape)));
    }
  }

  /** Free the averages. */
  dispose(): void {
    for (const e of this.#ema.values()) e.dispose();
  }
}
