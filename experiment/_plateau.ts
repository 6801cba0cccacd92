/**
 * Where each training curve leaves the unigram plateau, found while
 * `metrics.jsonl` streams by, in memory bounded by the window: the first
 * logged step t ≥ `window` at which the mean loss of the records logged in
 * the last `window` steps (t − window, t] is below the threshold. A curve
 * logged every step (tfjs) gives what `plateauExit` gives over its array of
 * losses; one logged every L steps (the fused engines' `--log-every`) is
 * read in steps too, not in records. A resumed run redoes steps: a record
 * at step t drops every earlier record at step ≥ t. Without such a cut one
 * pass is exact; a curve that was cut needs to know which records survive
 * later cuts, so its cuts are noted in the first pass and a second pass
 * over the log keeps only the survivors ({@linkcode PlateauScan.replay}).
 *
 * @module
 */

/** One curve's scan. */
interface Scan {
  /** The last step logged (first pass: what a record at or below it redoes). */
  length: number;
  /** Loss records seen (this pass). */
  seen: number;
  /** `[record, step − 1]`: record number `record` dropped every step ≥ step. */
  cuts: [number, number][];
  /** The least cut from each cut on (filled for the second pass). */
  least: number[];
  /** The first cut after the current record (second pass). */
  next: number;
  /** Steps and losses of the records fed within the last `window` steps. */
  steps: number[];
  losses: number[];
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
        steps: [],
        losses: [],
        sum: 0,
        exit: 0,
      });
    }
  }

  /**
   * Take one record of the log (others than a loss are ignored).
   *
   * @param rec The record.
   */
  add(rec: Record<string, unknown>): void {
    // A non-finite loss (1e999 in a foreign log) would poison the sum.
    if (typeof rec.loss !== "number" || !Number.isFinite(rec.loss)) return;
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
        steps: [],
        losses: [],
        sum: 0,
        exit: 0,
      };
      this.#scans.set(key, s);
    }
    const at = step - 1, record = s.seen++;
    if (!this.#replaying && at < s.length) s.cuts.push([record, at]);
    s.length = at + 1;
    if (this.#replaying) {
      if (s.cuts.length === 0) return; // exact from the first pass
      // Survives unless a later record cuts the array at or below it.
      while (s.next < s.cuts.length && s.cuts[s.next][0] <= record) s.next++;
      if (s.next < s.cuts.length && s.least[s.next] <= at) return;
    } else if (s.cuts.length > 0) return; // settled by the second pass
    this.#feed(s, step, rec.loss);
  }

  /** The next surviving record: the window's mean over its last `window` steps. */
  #feed(s: Scan, step: number, loss: number): void {
    const w = this.window;
    s.steps.push(step);
    s.losses.push(loss);
    let dropped = 0; // summed as plateauExit sums: + loss − the one leaving
    while (s.steps[0] <= step - w) {
      s.steps.shift();
      dropped += s.losses.shift()!;
    }
    s.sum += loss - dropped;
    const mean = s.sum / s.losses.length;
    if (s.exit === 0 && step >= w && mean < this.#threshold) s.exit = step;
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
