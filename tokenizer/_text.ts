/**
 * The one check of `encode`'s argument, shared by the tokenizers: a number or
 * `null` was stringified ("42", "null") or crashed deep inside.
 * @module
 */

/** Throws unless `text` is a string. */
export function checkText(text: unknown): asserts text is string {
  if (typeof text !== "string") {
    throw new TypeError(
      `Cannot encode: text must be a string, got ${
        text === null ? "null" : typeof text
      }`,
    );
  }
}
