// profileDispatches times every dispatch of engine work from outside the
// engine: on lavapipe, an AR generation of more dispatches than one query
// set holds is timed whole (every stamp written, the count the engine's
// own counter gives), draws the same tokens as unprofiled, and leaves the
// device as it was; summarise's sums and bad-stamp rule on fixed stamps.

import {
  assert,
  assertEquals,
  assertGreater,
  assertRejects,
} from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import { preset } from "@d3pm/transformer";
import {
  requestEngineDevice,
  WebGpuTransformer,
  WebGpuUnavailableError,
} from "@d3pm/webgpu";
import { byFamily, profileDispatches, summarise } from "./_gpu_profile.ts";

let device: GPUDevice | null = null;
let skip: string | null = null;
try {
  device = (await requestEngineDevice()).device;
} catch (e) {
  if (!(e instanceof WebGpuUnavailableError)) throw e;
  skip = e.message;
}

Deno.test("summarise() sums each kernel's dispatches and counts unwritten or reversed stamps as 0 ms", () => {
  const ms = 1_000_000n; // ns
  const stamps = BigUint64Array.from([
    10n * ms,
    12n * ms, // a: 2 ms
    20n * ms,
    23n * ms, // b: 3 ms
    30n * ms,
    30n * ms + ms / 2n, // a: 0.5 ms
    0n,
    0n, // a: never written
    50n * ms,
    40n * ms, // b: reversed
  ]);
  const p = summarise(["a", "b", "a", "a", "b"], stamps);
  assertEquals(p.kernels, [
    { kernel: "b", count: 2, ms: 3 },
    { kernel: "a", count: 3, ms: 2.5 },
  ]);
  assertEquals([p.totalMs, p.dispatches, p.badStamps], [5.5, 5, 2]);
  assertEquals(
    byFamily([
      { kernel: "mm64:false:true", count: 1, ms: 1 },
      { kernel: "ln_fwd", count: 1, ms: 1.5 },
      { kernel: "mm64:true:false", count: 2, ms: 1 },
    ]),
    { mm64: 2, ln_fwd: 1.5 },
  );
});

Deno.test({
  name:
    "profileDispatches() times every dispatch of a generation past one query set, and changes neither its tokens nor the device, nor leaks its query sets when the work throws",
  ignore: ignoreUnless("webgpu", skip),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const d = device!;
    assert(d.features.has("timestamp-query"), "the device has timestamps");
    // 2 layers: 20 dispatches per position, 127 positions → 2,540 > 2,048.
    const config = preset("micro", {
      vocabSize: 64,
      contextLength: 128,
      nLayer: 2,
    });
    const engine = await WebGpuTransformer.create(config, {
      batchSize: 1,
      length: 2,
      seed: 0,
      device: d,
    });
    try {
      const run = () =>
        engine.generateCausal({
          batchSize: 2,
          length: 128,
          start: 0,
          temperature: 1,
          seed: 5,
        });
      const plain = await run();
      const before = engine.counters.dispatches;
      const { result, profile } = await profileDispatches(d, run);
      const dispatches = engine.counters.dispatches - before;
      assertGreater(dispatches, 2048);
      assertEquals(profile.dispatches, dispatches);
      assertEquals(profile.badStamps, 0);
      assertEquals(
        profile.kernels.reduce((s, k) => s + k.count, 0),
        dispatches,
      );
      const attention = profile.kernels.filter((k) =>
        k.kernel.startsWith("dec_attn")
      );
      assertEquals(
        attention.reduce((s, k) => s + k.count, 0),
        config.nLayer * 127,
      );
      assert(profile.kernels.every((k) => k.ms > 0), "every kernel took time");
      assertEquals(result.tokens, plain.tokens);
      assert(!Object.hasOwn(d, "createCommandEncoder"), "the device restored");
      assertEquals((await run()).tokens, plain.tokens);
      // Work that throws: the device restored, its query sets destroyed.
      const made: GPUQuerySet[] = [];
      let destroyed = 0;
      const createQuerySet = d.createQuerySet;
      d.createQuerySet = (descriptor: GPUQuerySetDescriptor) => {
        const q = createQuerySet.call(d, descriptor);
        const destroy = q.destroy.bind(q);
        q.destroy = () => (destroyed++, destroy());
        made.push(q);
        return q;
      };
      try {
        await assertRejects(
          () =>
            profileDispatches(d, async () => {
              await engine.generateCausal({
                batchSize: 1,
                length: 4,
                start: 0,
                temperature: 0,
                seed: 0,
              });
              throw new Error("planted");
            }),
          Error,
          "planted",
        );
      } finally {
        delete (d as { createQuerySet?: unknown }).createQuerySet;
      }
      assertGreater(made.length, 0);
      assertEquals(destroyed, made.length, "every query set destroyed");
      assert(!Object.hasOwn(d, "createCommandEncoder"), "the device restored");
    } finally {
      engine.dispose();
    }
  },
});
