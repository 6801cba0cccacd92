import { assertEquals, assertThrows } from "@std/assert";
import { ConfigError, resolveConfig } from "./mod.ts";

Deno.test("the auto judge's steps must cover the run's warm-up; other judges train nothing", () => {
  // micro: warmup 20.
  assertThrows(
    () => resolveConfig({ preset: "micro", judgeSteps: 10 }),
    ConfigError,
    "Option --warmup (20) must not exceed --judge-steps (10): the auto judge trains with the run's warm-up",
  );
  assertEquals(
    resolveConfig({ preset: "micro", judgeSteps: 20 }).judgeSteps,
    20,
  );
  for (const judge of ["self", "runs/other"]) {
    assertEquals(
      resolveConfig({ preset: "micro", judgeSteps: 10, judge }).judge,
      judge,
    );
  }
});
