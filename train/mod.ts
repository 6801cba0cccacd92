/**
 * Training: AdamW, learning-rate schedule, clipping, EMA, the loop, checkpoints.
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
  throw new Error("@d3pm/train is not implemented yet (see the train issue)");
}
