// The shape check every loss and evaluation of a token batch starts with.
// Private.
import type { TokenBatch } from "@d3pm/core";

/** Throw a one-line error unless `tokens` holds batchSize × length ids. */
export function checkBatch(x0: TokenBatch): void {
  const { tokens, batchSize, length } = x0;
  if (
    !Number.isInteger(batchSize) || !Number.isInteger(length) ||
    batchSize < 1 || length < 1 || tokens.length !== batchSize * length
  ) {
    throw new RangeError(
      `Bad token batch: expected batchSize × length = ${batchSize} × ${length} ids, got ${tokens.length}`,
    );
  }
}
