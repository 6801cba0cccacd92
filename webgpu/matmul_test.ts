import { assert } from "@std/assert";
import { timeMatmul } from "./mod.ts";
import { gpu, testDevice } from "./_test_util.ts";

Deno.test({
  name: "timeMatmul() reports a positive rate at a small odd shape",
  ignore: gpu.ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const t = await timeMatmul(testDevice(), { m: 33, n: 65, k: 17 }, {
      repeats: 2,
      transB: true,
    });
    const big = await timeMatmul(testDevice(), { m: 33, n: 65, k: 17 }, {
      repeats: 1,
      tile: 128,
    });
    assert(big.seconds > 0);
    assert(t.seconds > 0 && Number.isFinite(t.gflops) && t.gflops > 0);
  },
});
