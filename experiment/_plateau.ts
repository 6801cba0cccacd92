/**
 * Where each training curve leaves the unigram plateau, found while
 * `metrics.jsonl` streams by, in memory bounded by the window: the figure
 * `plateauExit` gives over the array of a curve's losses, where each loss
 * record cuts the array to `step - 1` entries (a resumed run redoes steps)
 * and appends. Without a cut one pass is exact with the last `window`
 * losses; a curve that was cut needs to know which records survive later
 * cuts, so its cuts are noted in the first pass and a second pass over the
 * log keeps only the survivors ({@linkcode PlateauScan.replay}).
 *
 * @module
 */

/** One curve's scan. */
interface Scan {
  /** Length of the curve's loss array. */
  length: number;
  /** Loss records seen (this pass). */
  seen: number;
  /** `[record, length]`: record number `record` cut the array to `length`. */
  cuts: [number, number][];
  /** The least cut length from each cut on (filled for the second pass). */
  least: number[];
  /** The first cut after the current record (second pass). */
  next: number;
  /** Survivors fed to the window (second pass), or the array's length (first). */
  fed: number;
  /** The last `window` losses fed, by index modulo `window`. */
  ring: Float64Array;
  sum: number;
  /** The step found, 0 while none. */
  exit: number;
}

/**
 * Streaming `plateauExit` per model and seed (`"d3pm 0"`), as report.md's
 * "leaves plateau at step" column has it.
 *
 * @example
 * ```ts
 * import { PlateauScan } from "./_plateau.ts";
 * import { assertEquals } from "@std/assert";
 * const scan = new PlateauScan(6.74, 2);
 * for (const [step, loss] of [[1, 7], [2, 7], [3, 6.5], [4, 6.3], [5, 6.2]]) {
 *   scan.add({ model: "ar", seed: 0, step, loss });
 * }
 * assertEquals(scan.needsReplay, false);
 * assertEquals(scan.exit("ar 0"), 4);
 * ```
 */
export class PlateauScan {
  #scans = new Map<string, Scan>();
  #replaying = false;
  #threshold: number;

  /**
   * A scan for curves of the given threshold and window.
   *
   * @param entropy The train split's unigram entropy, nats.
   * @param window Losses averaged.
   * @param margin Nats below the entropy (default 0.25).
   */
  constructor(entropy: number, readonly window: number, margin = 0.25) {
    this.#threshold = entropy - margin;
  }

  /** Whether a curve was cut, so the log must be read again through {@linkcode PlateauScan.replay}. */
  get needsReplay(): boolean {
    return !this.#replaying &&
      [...this.#scans.values()].some((s) => s.cuts.length > 0);
  }

  /** Start the second pass: {@linkcode PlateauScan.add} each record of the log again, in order. */
  replay(): void {
    this.#replaying = true;
    for (const s of this.#scans.values()) {
      if (s.cuts.length === 0) continue; // exact from the first pass
      s.least = s.cuts.map(([, n]) => n);
      for (let i = s.least.length - 2; i >= 0; i--) {
        s.least[i] = Math.min(s.least[i], s.least[i + 1]);
      }
      Object.assign(s, {
        length: 0,
        seen: 0,
        next: 0,
        fed: 0,
        sum: 0,
        exit: 0,
      });
      s.ring.fill(0);
    }
  }

  /**
   * Take one record of the log (others than a loss are ignored).
   *
   * @param rec The record.
   */
  add(rec: Record<string, unknown>): void {
    if (typeof rec.loss !== "number") return;
    const step = Number(rec.step);
    if (!Number.isInteger(step) || step < 1) return;
    const key = `${rec.model} ${rec.seed}`;
    let s = this.#scans.get(key);
    if (!s) {
      if (this.#replaying) return;
      s = {
        length: 0,
        seen: 0,
        cuts: [],
        least: [],
        next: 0,
        fed: 0,
        ring: new Float64Array(this.window),
        sum: 0,
        exit: 0,
      };
      this.#scans.set(key, s);
    }
    const at = Math.min(s.length, step - 1), record = s.seen++;
    if (!this.#replaying && at < s.length) s.cuts.push([record, at]);
    s.length = at + 1;
    if (this.#replaying) {
      if (s.cuts.length === 0) return; // exact from the first pass
      // Survives unless a later record cuts the array at or below it.
      while (s.next < s.cuts.length && s.cuts[s.next][0] <= record) s.next++;
      if (s.next < s.cuts.length && s.least[s.next] <= at) return;
    } else if (s.cuts.length > 0) return; // settled by the second pass
    this.#feed(s, rec.loss);
  }

  /** The next loss of the array, as plateauExit sums it. */
  #feed(s: Scan, loss: number): void {
    const i = s.fed++, w = this.window;
    s.sum += loss - (i >= w ? s.ring[i % w] : 0);
    s.ring[i % w] = loss;
    if (s.exit === 0 && i + 1 >= w && s.sum / w < this.#threshold) {
      s.exit = i + 1;
    }
  }

  /**
   * The step a curve leaves the plateau.
   *
   * @param key `"model seed"`.
   * @returns The step, or 0 if it never does (or has no losses).
   */
  exit(key: string): number {
    return this.#scans.get(key)?.exit ?? 0;
  }
}
