/**
 * One parity suite over every backend that runs here: each replaced kernel,
 * forward and through autograd, against tfjs's `cpu` reference. Tolerances:
 * relative 1e-4 and absolute 1e-5 unless a case states its own (float32
 * sums in another order, polynomial exp/tanh within 5e-7 relative); webgpu
 * gets 10× (GPU transcendental functions are approximate).
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "./init_backend.ts";
import { compare, parityCases, runCase } from "./_parity_cases.ts";
import { ignoreUnless } from "@d3pm/core/testing";

const quiet = { log: () => {} };

async function probe(
  name: "blas" | "wasm" | "webgpu",
): Promise<string | undefined> {
  try {
    await initBackend({ prefer: name, fallback: false, ...quiet });
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

const unavailable: Record<string, string | undefined> = {
  blas: await probe("blas"),
  wasm: await probe("wasm"),
  webgpu: await probe("webgpu"),
};
await tf.setBackend("cpu");

const cases = parityCases();
const reference = new Map<string, Float32Array[]>();

async function expected(index: number): Promise<Float32Array[]> {
  const c = cases[index];
  let r = reference.get(c.name);
  if (r === undefined) {
    await tf.setBackend("cpu");
    r = await runCase(c, 1000 + index * 7);
    reference.set(c.name, r);
  }
  return r;
}

for (const backend of ["blas", "wasm", "webgpu"] as const) {
  const reason = unavailable[backend];
  Deno.test({
    name: `${backend} kernels match the cpu reference forward and backward${
      reason ? ` (skipped: ${reason})` : ""
    }`,
    ignore: ignoreUnless(backend, reason),
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async (t) => {
      const scale = backend === "webgpu" ? 10 : 1;
      for (let i = 0; i < cases.length; i++) {
        const c = cases[i];
        const skip = c.skip?.[backend];
        await t.step({
          name: c.name + (skip ? ` (skipped: ${skip})` : ""),
          ignore: skip !== undefined,
          fn: async () => {
            const want = await expected(i);
            await tf.setBackend(backend);
            const got = await runCase(c, 1000 + i * 7);
            const problem = compare(
              got,
              want,
              (c.rtol ?? 1e-4) * scale,
              (c.atol ?? 1e-5) * scale,
            );
            if (problem !== undefined) {
              throw new Error(`${c.name} on ${backend}: ${problem}`);
            }
          },
        });
      }
      await tf.setBackend("cpu");
    },
  });
}
