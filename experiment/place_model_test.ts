// placeModel's WebGPU models share one device per process: a reload costs no
// device (and, with the device's kernel cache, no compile), disposing one
// model leaves the others working, and a lost device is replaced.
import * as tf from "@tensorflow/tfjs";
import {
  assertEquals,
  assertNotStrictEquals,
  assertStrictEquals,
} from "@std/assert";
import type { WeightedTokens } from "@d3pm/core";
import { ignoreUnless } from "@d3pm/core/testing";
import { preset, Transformer } from "@d3pm/transformer";
import {
  requestEngineDevice,
  WebGpuTransformer,
  WebGpuUnavailableError,
} from "@d3pm/webgpu";
import { placeModel } from "./engine.ts";
import { placementDevices } from "./_placement_device.ts";

let missing: string | null = null;
try {
  (await requestEngineDevice()).device.destroy();
} catch (e) {
  if (!(e instanceof WebGpuUnavailableError)) throw e;
  missing = e.message;
}
const gpu = {
  ignore: ignoreUnless("webgpu", missing),
  sanitizeResources: false,
  sanitizeOps: false,
};

const config = preset("micro", {
  vocabSize: 16,
  contextLength: 8,
  dModel: 8,
  dMlp: 16,
});
const rows: WeightedTokens[] = [{
  rows: 2,
  length: 8,
  inputs: Int32Array.from({ length: 16 }, (_, i) => (i * 5) % 16),
  targets: Int32Array.from({ length: 16 }, (_, i) => (i * 3 + 1) % 16),
  weights: new Float32Array(16).fill(1 / 8),
}];

async function placed(
  seed: number,
): Promise<{ engine: WebGpuTransformer; dispose(): void }> {
  const p = await placeModel(new Transformer(config, { seed }), "webgpu");
  const engine = p.model;
  if (!(engine instanceof WebGpuTransformer)) throw new Error(p.engine);
  return { engine, dispose: () => p.dispose() };
}

Deno.test({
  name:
    "placeModel() puts every WebGPU model on one device, and disposing one leaves the others working",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const a = await placed(0), b = await placed(1);
    assertStrictEquals(a.engine.device, b.engine.device);
    const before = await b.engine.rowLosses(rows);
    a.dispose();
    assertEquals(await b.engine.rowLosses(rows), before);
    const c = await placed(1); // a reload: the same device again
    assertStrictEquals(c.engine.device, b.engine.device);
    assertEquals(await c.engine.rowLosses(rows), before);
    b.dispose();
    c.dispose();
  },
});

Deno.test({
  name: "placeModel() requests a new device once the shared one is lost",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const a = await placed(2);
    const lost = a.engine.device;
    const want = await a.engine.rowLosses(rows);
    a.dispose();
    lost.destroy(); // as a lost device: `lost` resolves
    await lost.lost;
    const b = await placed(2);
    assertNotStrictEquals(b.engine.device, lost);
    assertEquals(await b.engine.rowLosses(rows), want);
    b.dispose();
  },
});

// The shared device's holds: destroyed once idle, reused within the delay.
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function destroyedWithin(device: GPUDevice, ms: number) {
  return await Promise.race([
    device.lost.then((info) => info.reason === "destroyed"),
    sleep(ms).then(() => false),
  ]);
}

Deno.test({
  name:
    "placeModel() destroys the shared device once its last model has been disposed for the idle delay, and a placement within the delay reuses it",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    placementDevices.idleMs = 100;
    try {
      const a = await placed(3);
      const device = a.engine.device;
      a.dispose();
      assertEquals(placementDevices.holds, 0);
      const b = await placed(3); // within the delay: the same device
      assertStrictEquals(b.engine.device, device);
      assertEquals(await destroyedWithin(device, 400), false); // held by b
      b.dispose();
      assertEquals(await destroyedWithin(device, 2_000), true);
      const c = await placed(3); // a fresh one after it
      assertNotStrictEquals(c.engine.device, device);
      c.dispose();
    } finally {
      placementDevices.idleMs = 5_000;
    }
  },
});

Deno.test({
  name:
    "placeModel()'s dispose() gives its hold back once, however often it is called",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    placementDevices.idleMs = 50;
    try {
      const a = await placed(4), b = await placed(5);
      const want = await b.engine.rowLosses(rows);
      a.dispose();
      a.dispose(); // not b's hold too
      assertEquals(placementDevices.holds, 1);
      assertEquals(await destroyedWithin(b.engine.device, 300), false);
      assertEquals(await b.engine.rowLosses(rows), want);
      b.dispose();
    } finally {
      placementDevices.idleMs = 5_000;
    }
  },
});

Deno.test({
  name:
    "placeModel() off the device (auto on a software adapter) holds no reference to it",
  ...gpu,
  fn: async () => {
    await tf.setBackend("cpu");
    const before = placementDevices.holds;
    const p = await placeModel(new Transformer(config, { seed: 6 }), "auto");
    // lavapipe is software: auto takes the CPU engine (or tfjs).
    assertEquals(p.model instanceof WebGpuTransformer, false, p.engine);
    assertEquals(placementDevices.holds, before);
    p.dispose();
    assertEquals(placementDevices.holds, before);
  },
});
