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
 * // Names quoted from a file cannot break the line or drive the terminal.
 * const hostile = new InteropError("tensor a\nb of \u001b[2J");
 * assertEquals(hostile.message, "tensor a\\nb of \\u001b[2J");
 * ```
 */
export class InteropError extends Error {
  /**
   * An error with a one-line message.
   *
   * @param message What is wrong and what is supported.
   */
  constructor(message: string) {
    super(printable(message));
    this.name = "InteropError";
  }
}

/**
 * The message with its control characters escaped (`\n` as `\\n`, ESC as
 * `\\u001b`): it quotes names from files nobody checked — a tensor named
 * "a\nerror: …" split it into two lines, an architecture of ANSI escapes
 * cleared the terminal it was printed to.
 */
function printable(message: string): string {
  return message.replace(
    // deno-lint-ignore no-control-regex -- the control characters are the point
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => {
      const short: Record<string, string> = {
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
      };
      return short[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
    },
  );
}
