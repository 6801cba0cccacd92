import { assert, assertEquals } from "@std/assert";
import { ABLATION_BASELINE, grid } from "./ablation.ts";
import { resolveConfig } from "../config.ts";
import { PRESETS } from "../presets.ts";

Deno.test("ablate: the baseline is pinned, whatever the tiny preset says now", () => {
  const base = resolveConfig({ preset: "tiny", ...ABLATION_BASELINE });
  for (const [k, v] of Object.entries(ABLATION_BASELINE)) {
    assertEquals(base[k as keyof typeof base], v, k);
  }
  // The preset has moved on from the baseline (the ablation chose it).
  assert(
    Object.entries(ABLATION_BASELINE).some(([k, v]) =>
      PRESETS.tiny[k as keyof typeof PRESETS.tiny] !== v
    ),
  );
});

Deno.test("ablate: every variant has its own name and resolves at matched tokens", () => {
  const steps = 250;
  const variants = grid(steps);
  assertEquals(new Set(variants.map((v) => v.name)).size, variants.length);
  for (const v of variants) {
    const c = resolveConfig({
      preset: "tiny",
      ...ABLATION_BASELINE,
      steps,
      ...v.overrides,
    });
    // Matched tokens, to within one step of the variant's batch.
    assert(Math.abs(c.steps * c.batchSize - steps * 8) < c.batchSize, v.name);
    if (v.model === "ar") assertEquals(c.alibi, 0, v.name); // causal: none
  }
});
