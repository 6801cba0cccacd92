// Engines opening at once on a shared device each pop their own error
// scopes (_setup.ts's openEngine): a build error is blamed on the engine
// whose build made it, never on the other.
import { assertEquals, assertStringIncludes } from "@std/assert";
import { WebGpuTransformer } from "./engine.ts";
import { gpu, parityConfig, testDevice } from "./_test_util.ts";

Deno.test({
  name:
    "two engines opened concurrently on one device: the one whose build made a validation error fails, the other opens",
  ...gpu,
  fn: async () => {
    const device = testDevice();
    const config = parityConfig("causal", "rotary");
    // The first buffer made after this (the first engine's build, which
    // runs before it awaits) comes with a validation error beside it.
    const own = device as unknown as Record<string, unknown>;
    const original = device.createBuffer.bind(device);
    own.createBuffer = (d: GPUBufferDescriptor) => {
      delete own.createBuffer;
      original({
        size: 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE, // invalid
      }).destroy();
      return original(d);
    };
    const open = (seed: number) =>
      WebGpuTransformer.create(config, {
        batchSize: 1,
        length: 4,
        seed,
        device,
        evaluationOnly: true,
      });
    const [bad, good] = await Promise.allSettled([open(1), open(2)]);
    assertEquals(Object.hasOwn(own, "createBuffer"), false); // used by the first
    assertEquals(bad.status, "rejected");
    assertStringIncludes(
      String((bad as PromiseRejectedResult).reason),
      "building the engine failed",
    );
    assertEquals(good.status, "fulfilled");
    (good as PromiseFulfilledResult<WebGpuTransformer>).value.dispose();
  },
});
