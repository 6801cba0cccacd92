/**
 * A fixture for tools/check_examples.ts: every exported value has an
 * example; the types have none and need none.
 *
 * @module
 */
export * from "./_inner.ts";

/** A shape (a type: no example needed). */
export interface Shape {
  /** Its side. */
  side: number;
}

/** A side length (a type: no example needed). */
export type Side = number;

/**
 * The area of a square.
 *
 * @example
 * ```ts
 * import { area } from "./complete.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(area({ side: 3 }), 9);
 * ```
 */
export function area(shape: Shape): number {
  return shape.side * shape.side;
}

/**
 * A unit square.
 *
 * @example
 * ```ts
 * import { UNIT } from "./complete.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(UNIT.side, 1);
 * ```
 */
export const UNIT: Shape = { side: 1 };

/**
 * A square, documented on the class itself.
 *
 * @example
 * ```ts
 * import { Square } from "./complete.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(new Square(2).area(), 4);
 * ```
 */
export class Square {
  /** A square of side `side`. */
  constructor(readonly side: number) {}
  /** Its area. */
  area(): number {
    return this.side * this.side;
  }
}
