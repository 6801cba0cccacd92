/**
 * The one error of exports and imports.
 *
 * @module
 */

/**
 * An export or import that cannot be done: the message is one line naming
 * what is wrong and what is supported. Nothing has been written when it is
 * thrown.
 *
 * @example
 * ```ts
 * import { InteropError } from "@d3pm/hf";
 * import { assertEquals } from "@std/assert";
 * const e = new InteropError("unknown architecture LlamaForCausalLM");
 * assertEquals(e.name, "InteropError");
 * assertEquals(e.message, "unknown architecture LlamaForCausalLM");
 * ```
 */
export class InteropError extends Error {
  /**
   * An error with a one-line message.
   *
   * @param message What is wrong and what is supported.
   */
  constructor(message: string) {
    super(message);
    this.name = "InteropError";
  }
}
