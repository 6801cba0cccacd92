/**
 * A progress line for long loops: a bar, the figures that matter and an ETA
 * on a terminal; a plain line every tenth of the work (or every 30 s)
 * otherwise, so logs stay readable.
 *
 * @module
 */

/** Options of {@linkcode Progress}. */
export interface ProgressOptions {
  /** What is being done, e.g. `train ar`. */
  label: string;
  /** Total units of work. */
  total: number;
  /** Where to write (default stderr). */
  write?: (text: string) => void;
  /** Redraw in place (default: whether stderr is a terminal). */
  interactive?: boolean;
  /**
   * Write nothing for this many seconds from the start (default 0): work
   * that ends sooner prints no line; longer work shows its lines after it,
   * elapsed and ETA still counted from the start.
   */
  quietSeconds?: number;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  // Round once, then split: 119.6 s is 2m00s, not 1m60s (nor 59.6 s "60s").
  const whole = Math.round(s);
  const m = Math.floor(whole / 60);
  return m > 0 ? `${m}m${String(whole % 60).padStart(2, "0")}s` : `${whole}s`;
}

/**
 * A progress line with the figures that matter and an ETA.
 *
 * @example
 * ```ts
 * import { Progress } from "@d3pm/train";
 * import { assert } from "@std/assert";
 * const out: string[] = [];
 * const p = new Progress({ label: "train", total: 10, write: (s) => out.push(s), interactive: false });
 * for (let i = 1; i <= 10; i++) p.update(i, { loss: 1 / i });
 * p.done();
 * assert(out.some((l) => l.includes("train 10/10")));
 * // Quiet for its first minute: a loop that ends sooner prints nothing.
 * const quiet: string[] = [];
 * const q = new Progress({ label: "score", total: 2, write: (s) => quiet.push(s), interactive: false, quietSeconds: 60 });
 * q.update(1);
 * q.update(2);
 * assert(quiet.length === 0);
 * ```
 */
export class Progress {
  #opts: Required<ProgressOptions>;
  #start = performance.now();
  #lastPrint = 0;
  #nextFraction = 0.1;
  #line = "";

  /**
   * A progress display starting now.
   *
   * @param options Label, total and output.
   */
  constructor(options: ProgressOptions) {
    const encoder = new TextEncoder();
    this.#opts = {
      write: (s) => Deno.stderr.writeSync(encoder.encode(s)),
      interactive: Deno.stderr.isTerminal(),
      quietSeconds: 0,
      ...options,
    };
  }

  /**
   * Report progress.
   *
   * @param done Units done so far.
   * @param figures Named numbers to show (rounded).
   */
  update(done: number, figures: Record<string, number> = {}): void {
    const { total, label, interactive, write, quietSeconds } = this.#opts;
    const elapsed = (performance.now() - this.#start) / 1000;
    if (elapsed < quietSeconds) return;
    const eta = done > 0 ? (elapsed / done) * (total - done) : NaN;
    const shown = Object.entries(figures).map(([k, v]) =>
      `${k} ${Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(4)}`
    ).join("  ");
    const frac = total > 0 ? done / total : 1;
    if (interactive) {
      const width = 20;
      const filled = Math.round(frac * width);
      this.#line = `\r${label} [${"#".repeat(filled)}${
        ".".repeat(width - filled)
      }] ${done}/${total}  ${shown}  ETA ${duration(eta)}\x1b[K`;
      if (elapsed - this.#lastPrint > 0.1 || done === total) {
        write(this.#line);
        this.#lastPrint = elapsed;
      }
      return;
    }
    if (
      frac >= this.#nextFraction || elapsed - this.#lastPrint > 30 ||
      done === total
    ) {
      while (this.#nextFraction <= frac) this.#nextFraction += 0.1;
      write(
        `${label} ${done}/${total}  ${shown ? `${shown}  ` : ""}elapsed ${
          duration(elapsed)
        }  ETA ${duration(eta)}\n`,
      );
      this.#lastPrint = elapsed;
    }
  }

  /** Finish the line. */
  done(): void {
    if (this.#opts.interactive && this.#line) this.#opts.write("\n");
  }
}
