// The one cache of plans by shape: the engine records a plan (its arena,
// ints, uniform blocks and bind groups) once per shape it meets, keeps the
// few most recently built and releases the buffers of the one it drops.
// Private.

/** Plans of one kind by key, at most `capacity`, the oldest built dropped first. */
export class PlanCache<P> {
  readonly capacity: number;
  #plans = new Map<string, P>();
  #release: (plan: P) => void;

  /**
   * @param capacity Plans kept (≥ 1).
   * @param release Frees a dropped plan's buffers.
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

  /** The plan under `key`, built (and the oldest dropped beyond capacity) when missing. */
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
