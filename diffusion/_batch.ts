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

/**
 * Clean rows hold ids of the vocabulary other than the mask, `batchSize ×
 * length` of them: an id past the vocabulary gave a loss of 0, a mask id in
 * x0 a bound of 2.5e8 nats (and a pseudo-log-likelihood of 5e8). Returns
 * true (for `&&`).
 */
export function checkClean(
  s: { vocab: number; maskId: number },
  x0: TokenBatch,
): true {
  const { tokens, batchSize, length } = x0;
  if (tokens.length !== batchSize * length) {
    throw new RangeError(
      `Clean rows: ${tokens.length} ids are not batchSize ${batchSize} × length ${length}`,
    );
  }
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i];
    if (!(id >= 0 && id < s.vocab) || id === s.maskId) {
      throw new RangeError(
        `Clean rows: id ${id} at index ${i} is not a token id: expected an integer in [0, ${s.vocab}) other than the mask id ${s.maskId}`,
      );
    }
  }
  return true;
}
