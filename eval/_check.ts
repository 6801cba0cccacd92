// The number checks the figures share: a NaN, an infinity or a negative NLL
// came back as null in results.json, a perplexity below 1 or a negative
// bits per byte. Private.

/** Throw unless `x` is a finite number ≥ 0 (nats per token, a count). */
export function checkNonNegative(x: number, what: string): void {
  if (!(typeof x === "number" && Number.isFinite(x) && x >= 0)) {
    throw new RangeError(`${what} must be a finite number ≥ 0, got ${x}`);
  }
}

/** Throw unless `x` is a finite number > 0 (bytes per token, a weight). */
export function checkPositive(x: number, what: string): void {
  if (!(typeof x === "number" && Number.isFinite(x) && x > 0)) {
    throw new RangeError(`${what} must be a finite number > 0, got ${x}`);
  }
}

/** Throw unless `x` is a finite number (a figure of any sign). */
export function checkFinite(x: number, what: string): void {
  if (!(typeof x === "number" && Number.isFinite(x))) {
    throw new RangeError(`${what} must be a finite number, got ${x}`);
  }
}
