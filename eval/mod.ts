/**
 * Evaluation: NLL/BPT/PPL, generation speed, sample quality, seed aggregation, reports.
 *
 * Not implemented yet: {@linkcode notImplemented} names the issue that will
 * build it.
 *
 * @module
 */

/**
 * Throws: this package is not built yet.
 *
 * @returns Never.
 */
export function notImplemented(): never {
  throw new Error("@d3pm/eval is not implemented yet (see the eval issue)");
}
