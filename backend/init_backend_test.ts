import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { initBackend } from "./init_backend.ts";

const quiet = { log: () => {} };

Deno.test("initBackend() picks blas on a machine with a CBLAS and no GPU, and says why", async () => {
  const lines: string[] = [];
  const info = await initBackend({ log: (l) => lines.push(l) });
  assertEquals(tf.getBackend(), info.name);
  if (info.name === "blas") {
    assert(/^blas: \S+/.test(info.reason), info.reason);
    assertEquals(info.skipped.map((s) => s.name).slice(0, 1), ["tensorflow"]);
  }
  assert(lines.at(-1)!.includes(info.reason));
  assertEquals(lines.length, info.skipped.length + 1);
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

const tensorflow = await initBackend({
  prefer: "tensorflow",
  fallback: false,
  ...quiet,
}).then(() => undefined, (e: Error) => e.message);

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
  if (tensorflow === undefined) return; // tfjs-node is installed here
  const info = await initBackend({ prefer: "tensorflow", ...quiet });
  assertEquals(info.skipped[0].name, "tensorflow");
  assert(info.skipped[0].reason.length > 0);
  assertEquals(tf.getBackend(), info.name);
  await assertRejects(
    () => initBackend({ prefer: "tensorflow", fallback: false, ...quiet }),
    Error,
    "tensorflow",
  );
});
