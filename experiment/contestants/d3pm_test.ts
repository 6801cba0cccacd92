import { assertEquals, assertThrows } from "@std/assert";
import { ADDED_KEYS } from "../options.ts";
import { resolveConfig } from "../config.ts";
import { D3PM } from "./d3pm.ts";

const data = {
  tokenizer: { vocabSize: 260 } as never,
  specials: { bos: 256, eos: 257, pad: 258, mask: 259 },
};

Deno.test("--full-mask-share reaches the D3PM's process; 0 (older runs) leaves its spec as it was", () => {
  const tiny = D3PM.process(resolveConfig({ preset: "tiny" }), data).spec;
  assertEquals(tiny.times, { min: 0.3, max: 0.8, perToken: false });
  const full = D3PM.process(
    resolveConfig({ preset: "tiny", fullMaskShare: 0.25 }),
    data,
  ).spec;
  assertEquals(full.times, {
    min: 0.3,
    max: 0.8,
    perToken: false,
    fullMaskShare: 0.25,
  });
  // Over the full range with a share: the process still records it.
  const mdlm = D3PM.process(
    resolveConfig({ preset: "micro", fullMaskShare: 0.1 }),
    data,
  ).spec;
  assertEquals(mdlm.times?.fullMaskShare, 0.1);
  assertEquals(ADDED_KEYS.fullMaskShare, 0);
  assertThrows(
    () => resolveConfig({ fullMaskShare: 2 }),
    Error,
    "Option --full-mask-share must be a number in [0, 1], got 2",
  );
  // --init-from runs on the fused engines; annealing and the shift do not.
  assertEquals(
    resolveConfig({ engine: "webgpu", initFrom: "runs/ar" }).initFrom,
    "runs/ar",
  );
  assertThrows(
    () =>
      resolveConfig({
        engine: "webgpu",
        initFrom: "runs/ar",
        annealSteps: 5,
        shift: true,
      }),
    Error,
    "Options --anneal-steps and --shift are implemented on the tfjs engine only, not --engine webgpu; use --engine tfjs",
  );
  assertThrows(
    () => resolveConfig({ engine: "cpu", shift: true }),
    Error,
    "Option --shift is implemented on the tfjs engine only, not --engine cpu",
  );
  assertThrows(
    () => resolveConfig({ annealSteps: 2000 }),
    Error,
    "Option --anneal-steps (2000) must not exceed --steps (1000)",
  );
});
