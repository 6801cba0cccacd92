import { assertEquals } from "@std/assert";
import { formatFlops } from "./budget.ts";

Deno.test("formatFlops moves to the next unit when the rounded figure reaches 1000, at either kind of digits", () => {
  // Three significant digits: 999.96 rounds to 1000, so the next unit.
  assertEquals(formatFlops(999.96), "1.00 kFLOP");
  assertEquals(formatFlops(999_960), "1.00 MFLOP");
  assertEquals(formatFlops(999.4), "999 FLOP");
  assertEquals(formatFlops(999_499), "999 kFLOP");
  assertEquals(formatFlops(1000), "1.00 kFLOP");
  assertEquals(formatFlops(4.054e12), "4.05 TFLOP");
  // One decimal (the budget estimate's): 999.96 → "1000.0", so the next unit.
  assertEquals(formatFlops(999.96, { decimals: 1 }), "1.0 kFLOP");
  assertEquals(formatFlops(999.94, { decimals: 1 }), "999.9 FLOP");
  assertEquals(formatFlops(2.5e9, { decimals: 1 }), "2.5 GFLOP");
  // Four significant digits: 999.94 stays in its unit, 999.96 does not.
  assertEquals(formatFlops(999_940, { significant: 4 }), "999.9 kFLOP");
  assertEquals(formatFlops(999_960, { significant: 4 }), "1.000 MFLOP");
  assertEquals(formatFlops(Infinity), "? FLOP");
});
