/**
 * A fixture for tools/check_examples.ts: `Circle` has an example only on a
 * method, not on the class itself, and the re-exported `UNIT_CIRCLE` has none, so both lack
 * one; the types need none.
 *
 * @module
 */
export { UNIT_CIRCLE } from "./_missing_inner.ts";

/** A shape (a type: no example needed). */
export interface Shape {
  /** Its radius. */
  radius: number;
}

/** A radius (a type: no example needed). */
export type Radius = number;

/**
 * The circumference of a circle.
 *
 * @example
 * ```ts
 * import { circumference } from "./missing.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(circumference({ radius: 0 }), 0);
 * ```
 */
export function circumference(shape: Shape): number {
  return 2 * Math.PI * shape.radius;
}

/** A circle, whose own documentation has no example. */
export class Circle {
  /** A circle of radius `radius`. */
  constructor(readonly radius: number) {}
  /**
   * Its area.
   *
   * @example
   * ```ts
   * import { Circle } from "./missing.ts";
   * import { assertEquals } from "@std/assert";
   * assertEquals(new Circle(0).area(), 0);
   * ```
   */
  area(): number {
    return Math.PI * this.radius * this.radius;
  }
}
