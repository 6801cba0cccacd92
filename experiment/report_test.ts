import { assertEquals } from "@std/assert";
import { plateauExit, plateauWindow } from "./report.ts";

Deno.test("plateauExit: the first step whose window mean is 0.25 nat below the entropy", () => {
  const losses = [7, 7, 7, 6.5, 6.3, 6.2, 6.1, 6.0];
  // Windows of 2: (6.5 + 6.3) / 2 = 6.4 < 6.74 − 0.25 at step 5, not before.
  assertEquals(plateauExit(losses, 6.74, 2), 5);
  // A window of 1 sees step 4's 6.5 (not < 6.49) and exits at step 5 too.
  assertEquals(plateauExit(losses, 6.74, 1), 5);
  // Windows of 4: steps 3–6 average 6.5 (not below 6.49), steps 4–7 6.275.
  assertEquals(plateauExit(losses, 6.74, 4), 7);
  assertEquals(plateauExit(losses, 5, 2), 0); // never
  assertEquals(plateauExit([], 6.74, 2), 0);
});

Deno.test("plateauWindow: 25 steps' worth of 8-row batches", () => {
  assertEquals(plateauWindow(8), 25);
  assertEquals(plateauWindow(4), 50);
  assertEquals(plateauWindow(1000), 1);
});
