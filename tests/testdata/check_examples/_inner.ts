/**
 * Twice `x`: a value re-exported by `complete.ts`.
 *
 * @example
 * ```ts
 * import { double } from "./complete.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(double(2), 4);
 * ```
 */
export function double(x: number): number {
  return 2 * x;
}
