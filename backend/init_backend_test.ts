import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import { initBackend } from "./init_backend.ts";
import { prepareVulkan } from "./vulkan_env.ts";

const quiet = { log: () => {} };

/** Why `name` cannot run here when asked for alone, or undefined when it can. */
function unavailable(name: "tensorflow" | "blas"): Promise<string | undefined> {
  return initBackend({ prefer: name, fallback: false, ...quiet }).then(
    () => undefined,
    (e: Error) => e.message,
  );
}

/** A hardware WebGPU adapter's label, or null (none, or a software one). */
async function realGpu(): Promise<string | null> {
  const gpu = (navigator as { gpu?: GPU }).gpu;
  prepareVulkan();
  const adapter = await gpu?.requestAdapter().catch(() => null);
  if (!adapter) return null;
  const label = `${adapter.info.description} ${adapter.info.vendor}`;
  return adapter.info.isFallbackAdapter ||
      /llvmpipe|lavapipe|swiftshader|softpipe|software/i.test(label)
    ? null
    : label;
}

const tensorflow = await unavailable("tensorflow");
const blas = await unavailable("blas");
const gpuLabel = await realGpu();
// The premise of the first test: a CBLAS (required under CI), no faster rung.
const notBlasMachine = tensorflow === undefined
  ? "tfjs-node is installed (the tensorflow rung comes first)"
  : gpuLabel !== null
  ? `a hardware GPU (${gpuLabel}) comes first`
  : null;
if (notBlasMachine) console.warn(`skipping the blas pick: ${notBlasMachine}`);
await tf.setBackend("cpu");

Deno.test({
  name:
    "initBackend() picks blas on a machine with a CBLAS and no GPU, and says why",
  ignore: ignoreUnless("blas", blas) || notBlasMachine !== null,
  fn: async () => {
    const lines: string[] = [];
    const info = await initBackend({ log: (l) => lines.push(l) });
    assertEquals(info.name, "blas", info.reason);
    assertEquals(tf.getBackend(), "blas");
    assert(/^blas: \S+/.test(info.reason), info.reason);
    assertEquals(info.skipped.map((s) => s.name), ["tensorflow", "webgpu"]);
    assert(lines.at(-1)!.includes(info.reason));
    assertEquals(lines.length, info.skipped.length + 1);
  },
});

Deno.test("initBackend() uses the named rung when it works", async () => {
  const info = await initBackend({ prefer: "cpu", ...quiet });
  assertEquals(info.name, "cpu");
  assertEquals(info.skipped, []);
});

Deno.test("initBackend() rejects an unknown backend name", async () => {
  await assertRejects(
    () => initBackend({ prefer: "tpu" as "cpu", ...quiet }),
    RangeError,
    "expected one of auto, tensorflow",
  );
});

Deno.test({
  name: `initBackend() runs tfjs-node when installed${
    tensorflow ? ` (skipped: ${tensorflow})` : ""
  }`,
  ignore: tensorflow !== undefined,
  fn: async () => {
    const info = await initBackend({
      prefer: "tensorflow",
      fallback: false,
      ...quiet,
    });
    assertEquals(info.name, "tensorflow");
    const c = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2]));
    assertEquals(Array.from(await c.data()), [3, 3, 3, 3]);
  },
});

Deno.test("initBackend() falls down the ladder from an unavailable rung, or rejects without fallback", async () => {
  // A tfjs-node that cannot load, on every machine (D3PM_TFJS_NODE names
  // the package the tensorflow rung imports).
  const before = Deno.env.get("D3PM_TFJS_NODE");
  Deno.env.set("D3PM_TFJS_NODE", "@d3pm/no-such-tfjs-node");
  try {
    const info = await initBackend({ prefer: "tensorflow", ...quiet });
    assertEquals(info.skipped[0].name, "tensorflow");
    assert(
      info.skipped[0].reason.includes("@d3pm/no-such-tfjs-node"),
      info.skipped[0].reason,
    );
    assert(info.name !== "tensorflow");
    assertEquals(tf.getBackend(), info.name);
    await assertRejects(
      () => initBackend({ prefer: "tensorflow", fallback: false, ...quiet }),
      Error,
      "tensorflow",
    );
  } finally {
    if (before === undefined) Deno.env.delete("D3PM_TFJS_NODE");
    else Deno.env.set("D3PM_TFJS_NODE", before);
  }
});
