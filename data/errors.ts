/**
 * The data package's error for bad user input.
 *
 * @module
 */
/**
 * The error thrown for bad user input (a missing directory, an absent split,
 * an impossible block length). Command-line tools print its message as one
 * line, without a stack trace.
 *
 * @example
 * ```ts
 * import { DataError } from "@d3pm/data";
 * import { assert } from "@std/assert";
 * assert(new DataError("x") instanceof Error);
 * ```
 */
export class DataError extends Error {
  /**
   * A data error.
   *
   * @param message What is wrong and what is accepted.
   */
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}
