// The test helper's device flag: the GPT-2-shape tests pick their shapes by
// testSoftware() (full shapes on a GPU, small ones on lavapipe), so it must
// agree with the adapter. CI has only lavapipe, where it must say software;
// on a GPU (tools/gpu_run.sh) the same test requires it to say not.

import { assertEquals } from "@std/assert";
import { requestEngineDevice } from "./device.ts";
import { forDevice, gpu, testSoftware } from "./_test_util.ts";

Deno.test({
  name:
    "testSoftware() says software exactly when the adapter's name is a software rasteriser's (lavapipe here), and forDevice() picks by it",
  ...gpu,
  fn: async () => {
    const { device, label, adapter } = await requestEngineDevice();
    try {
      const named = /llvmpipe|lavapipe|swiftshader/i.test(label) ||
        adapter.info.isFallbackAdapter;
      console.log(`adapter ${label}: software ${testSoftware()}`);
      assertEquals(testSoftware(), named, `adapter ${label}`);
      assertEquals(
        forDevice({ gpu: "gpu", software: "software" }),
        named ? "software" : "gpu",
      );
    } finally {
      device.destroy();
    }
  },
});
