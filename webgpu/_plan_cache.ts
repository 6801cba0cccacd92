// The one cache of plans by shape: an engine records a plan (its arena,
// ints, uniform blocks and bind groups) once per shape it meets, keeps the
// few most recently built and releases the buffers of the one it drops.
// Both engines use it; exported to other executors by plan.ts.

/**
 * Plans of one kind by key, at most `capacity`, the oldest built dropped
 * first (a hit does not make a plan newer) and handed to `release`. An
 * engine that frees all its memory on dispose calls `clear` then, which
 * releases nothing.
 *
 * @example
 * ```ts
 * import { PlanCache } from "@d3pm/webgpu/plan";
 * import { assertEquals } from "@std/assert";
 * const released: string[] = [];
 * const cache = new PlanCache<string>(2, (plan) => released.push(plan));
 * cache.get("1x8", () => "plan 1x8");
 * cache.get("2x8", () => "plan 2x8");
 * assertEquals(cache.get("1x8", () => "rebuilt"), "plan 1x8"); // a hit
 * cache.get("4x8", () => "plan 4x8"); // the oldest built is dropped
 * assertEquals([cache.size, released], [2, ["plan 1x8"]]);
 * ```
 */
export class PlanCache<P> {
  /** The most plans kept. */
  readonly capacity: number;
  #plans = new Map<string, P>();
  #release: (plan: P) => void;

  /**
   * An empty cache.
   *
   * @param capacity Plans kept (≥ 1).
   * @param release Frees a dropped plan's buffers (a plan that owns none: a
   *   function that does nothing).
   * @throws {RangeError} When `capacity` is not an integer ≥ 1.
   */
  constructor(capacity: number, release: (plan: P) => void) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) {
      throw new RangeError(
        `PlanCache: capacity must be an integer ≥ 1, got ${capacity}`,
      );
    }
    this.capacity = capacity;
    this.#release = release;
  }

  /**
   * The plan under `key`, built (and the oldest dropped beyond capacity) when
   * missing.
   *
   * @param key The plan's shape, e.g. `score:4x128`.
   * @param build Records the plan; called only on a miss.
   * @returns The plan.
   */
  get(key: string, build: () => P): P {
    let plan = this.#plans.get(key);
    if (plan) return plan;
    if (this.#plans.size >= this.capacity) {
      const [oldKey, old] = this.#plans.entries().next().value!;
      this.#plans.delete(oldKey);
      this.#release(old);
    }
    plan = build();
    this.#plans.set(key, plan);
    return plan;
  }

  /** Plans held now. */
  get size(): number {
    return this.#plans.size;
  }

  /** Forget every plan without releasing it (the engine frees all its buffers at once). */
  clear(): void {
    this.#plans.clear();
  }
}
