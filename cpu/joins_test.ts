// The joins left out between row-local jobs (Runtime.run, pipelined): with
// a kernel thread made late on purpose (it sleeps before every part), a
// missing join makes the host read rows the thread has not written yet, so
// the step's bits move. Two threads splitting every call (grain 1) train a
// few steps with and without the late thread, joins left out, against an
// engine joining after every job: losses, gradient norms and the final
// weights must be the same bits. Also: a kernel that throws in the thread
// inside a run of row-local jobs still fails the step, naming the job, and
// dispose in the middle of such a run returns (in a child process, killed
// if it hangs).

import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import type { ModelConfig } from "@d3pm/transformer";
import { CpuTransformer, createCpuKernels } from "./mod.ts";
import { setJoinElision } from "./profile.ts";
import { runtimeOf, testHooks } from "./_runtime.ts";
import { parityConfig, randomIds } from "../webgpu/_test_models.ts";
import { blas, runChild } from "./_test_util.ts";
import { withTestHooks } from "./_test_hooks.ts";
import { layernormArgs } from "./_joins_child.ts";

const B = 4, T = 16;

async function train(
  config: ModelConfig,
  o: { elide: boolean; delayMs: number },
): Promise<{ losses: number[]; norms: number[]; weights: Uint32Array[] }> {
  const e = await withTestHooks(
    { grain: 1, delayMs: o.delayMs },
    () =>
      CpuTransformer.create(config, {
        batchSize: B,
        length: T,
        seed: 5,
        threads: 2,
      }),
  );
  try {
    setJoinElision(e.kernels, o.elide);
    const n = B * T, V = config.vocabSize;
    const losses: number[] = [], norms: number[] = [];
    for (let s = 0; s < 3; s++) {
      const batch = {
        inputs: randomIds(n, V, 10 + s),
        targets: randomIds(n, V, 20 + s),
        weights: new Float32Array(n).fill(1 / n),
        ...(config.timeConditioning
          ? { t: Array.from({ length: B }, (_, r) => (r + 1) / (B + 1)) }
          : {}),
      };
      e.step(batch, 1e-2, { dropoutSeed: 7 + s });
      const r = await e.readLoss();
      losses.push(r.loss);
      norms.push(r.gradNorm);
    }
    const weights = [...(await e.getWeights()).values()].map((w) =>
      new Uint32Array(Float32Array.from(w.data as Float32Array).buffer)
    );
    return { losses, norms, weights };
  } finally {
    e.dispose();
  }
}

const configs: [string, ModelConfig][] = [
  ["causal, learned positions", {
    ...parityConfig("causal", "learned"),
    contextLength: T,
  }],
  ["bidirectional, rotary, ALiBi neighbours, time conditioning, dropout", {
    ...parityConfig("bidirectional", "rotary", {
      timeConditioning: true,
      alibi: 1,
      alibiMode: "neighbours",
      dropout: 0.1,
    }),
    contextLength: T,
  }],
];

for (const [what, config] of configs) {
  Deno.test({
    name:
      `a late kernel thread, joins left out, gives the bits of joining after every job (${what})`,
    ...blas,
    fn: async () => {
      const every = await train(config, { elide: false, delayMs: 0 });
      const late = await train(config, { elide: true, delayMs: 2 });
      assertEquals(late.losses, every.losses, "losses");
      assertEquals(late.norms, every.norms, "gradient norms");
      assertEquals(late.weights, every.weights, "weights");
      assert(every.losses.every(Number.isFinite));
    },
  });
}

Deno.test({
  name:
    "a kernel that throws in the thread inside a run of row-local jobs fails at the next join, naming it, and the next run succeeds",
  ...blas,
  fn: async () => {
    const k = await withTestHooks(
      { grain: 1 },
      () => createCpuKernels({ words: 1 << 16, threads: 2 }),
    );
    try {
      const rt = runtimeOf(k);
      const rows = 64, d = 16;
      const ok = rt.floats(rows * d), y = rt.floats(rows * d);
      const w = rt.floats(d).fill(1), stats = rt.floats(2 * rows);
      // The host's rows [0, 32) of x in memory, the thread's past its end.
      const x = rt.buffer.byteLength - (rows / 2) * d * 4;
      const args = (from: Float32Array | number) =>
        layernormArgs(d, rows, from, y, w, stats);
      const local = [1, 1, rows] as const;
      assertThrows(
        () =>
          rt.pipelined(() => {
            rt.run("layernorm_forward", rows, args(x), 1e9, 1, local);
            rt.run("layernorm_forward", rows, args(ok), 1e9, 1, local);
          }),
        Error,
        "cpu job layernorm_forward failed in a kernel thread",
      );
      // The failure is cleared: the next run succeeds.
      rt.pipelined(() =>
        rt.run("layernorm_forward", rows, args(ok), 1e9, 1, local)
      );
    } finally {
      k.dispose();
    }
  },
});

// In a child process, so that a final join that waits for threads that
// left fails the test after CHILD_MS instead of hanging it.
const CHILD_MS = 60_000;

Deno.test({
  name:
    "dispose in the middle of a run of row-local jobs, a late thread still on them, returns: the run's final join does not wait for threads that left",
  ...blas,
  fn: async () => {
    const out = await runChild("./_joins_child.ts", CHILD_MS);
    assertEquals(
      [out.code, out.signal, out.stdout.trim()],
      [0, null, "done"],
      `${
        out.signal === null
          ? ""
          : `killed after ${CHILD_MS} ms (a join waiting for threads that left?)\n`
      }${out.stderr}`,
    );
  },
});

Deno.test({
  name:
    "a row-local job split elsewhere (another align) joins first: its host part reads rows the late thread wrote",
  ...blas,
  fn: async () => {
    const rows = 64, d = 16;
    const run = async (delayMs: number, elide: boolean) => {
      const k = await withTestHooks(
        { grain: 1, delayMs },
        () => createCpuKernels({ words: 1 << 16, threads: 2 }),
      );
      try {
        const rt = runtimeOf(k);
        rt.elide = elide;
        const x = rt.floats(rows * d), y = rt.floats(rows * d);
        const z = rt.floats(rows * d), w = rt.floats(d).fill(1);
        const stats = rt.floats(2 * rows);
        for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) * (i % 7);
        const args = (from: Float32Array, to: Float32Array) =>
          layernormArgs(d, rows, from, to, w, stats);
        const local = [1, 1, rows] as const;
        rt.pipelined(() => {
          // Split at row 32, then at row 48: rows 32–47 of y, the thread's
          // in the first job, are the host's in the second.
          rt.run("layernorm_forward", rows, args(x, y), 1e9, 1, local);
          rt.run("layernorm_forward", rows, args(y, z), 1e9, 48, local);
        });
        return Uint32Array.from(
          new Uint32Array(z.buffer, z.byteOffset, z.length),
        );
      } finally {
        k.dispose();
      }
    };
    // Against joins after every job.
    assertEquals(await run(30, true), await run(0, false));
  },
});

Deno.test("withTestHooks resets the runtime's test hooks after a creation that throws", async () => {
  await assertRejects(
    () =>
      withTestHooks({ grain: 1, delayMs: 5, firstJob: 7 }, () => {
        assertEquals([testHooks.grain, testHooks.delayMs], [1, 5]);
        return Promise.reject(new Error("creation failed"));
      }),
    Error,
    "creation failed",
  );
  assertEquals(testHooks, { grain: null, delayMs: 0, firstJob: 0 });
});
