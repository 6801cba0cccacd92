// The final train loss (results.json's training.lastLoss, report.md's "train
// loss (steps)") is one quantity on every engine: the mean training
// loss of the last logged interval. It was the last step's loss on tfjs and
// the mean since the last reading on the fused engines (the same training
// reported AR 3.131 on tfjs, 3.207 on the CPU engine).
import { assertAlmostEquals, assertEquals } from "@std/assert";
import { ignoreUnless } from "@d3pm/core/testing";
import { createCpuKernels } from "@d3pm/cpu";
import { runTool } from "./_run.ts";

// No CBLAS: skipped, with the reason.
const noKernels = ignoreUnless(
  "blas",
  await createCpuKernels({ words: 64, threads: 1 }).then(
    (k) => (k.dispose(), null),
    (e: Error) => e.message,
  ),
);

/** 12 steps logged every 5: readings at 5, 10 and 12, so the last interval is steps 11–12. */
const ARGS = [
  "--preset",
  "micro",
  "--steps",
  "12",
  "--warmup",
  "2",
  "--judge",
  "self",
  "--eval-blocks",
  "2",
  "--elbo-samples",
  "1",
  "--exact-blocks",
  "0",
  "--gen-tokens",
  "16",
  "--gen-samples",
  "0",
  "--gen-steps",
  "2",
  "--samples",
  "1",
  "--valid-every",
  "5",
  "--valid-blocks",
  "2",
  "--log-every",
  "5",
  "--models",
  "ar,d3pm,mlm",
];

interface Ran {
  results: {
    backend: string;
    results: {
      model: string;
      training: { lastLoss: number; lastLossSteps?: [number, number] };
    }[];
  };
  /** Logged training losses by model, by step. */
  losses: Map<string, Map<number, number>>;
  report: string;
}

async function experiment(engine: string): Promise<Ran> {
  const out = await Deno.makeTempDir();
  try {
    const r = await runTool("experiment.ts", [
      ...ARGS,
      "--engine",
      engine,
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const losses = new Map<string, Map<number, number>>();
    for (
      const line of (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
        .split("\n")
    ) {
      const m = JSON.parse(line);
      if (!("loss" in m)) continue;
      if (!losses.has(m.model)) losses.set(m.model, new Map());
      losses.get(m.model)!.set(m.step, m.loss);
    }
    return {
      results: JSON.parse(await Deno.readTextFile(`${out}/results.json`)),
      losses,
      report: await Deno.readTextFile(`${out}/report.md`),
    };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

Deno.test({
  name:
    "the same training on the CPU engine and on tfjs at --log-every 5 reports the same final train loss: the mean of the last interval",
  ignore: noKernels,
  async fn() {
    const cpu = await experiment("cpu"), tfjs = await experiment("tfjs");
    for (const [i, model] of ["ar", "d3pm", "mlm"].entries()) {
      const a = cpu.results.results[i], b = tfjs.results.results[i];
      assertEquals([a.model, b.model], [model, model]);
      // The CPU engine logs its readings: the last is the mean of 11–12.
      const mine = cpu.losses.get(model)!;
      assertEquals([...mine.keys()], [5, 10, 12]);
      assertEquals(a.training.lastLoss, mine.get(12));
      // tfjs logs every step; its final figure is the mean of the same steps.
      const theirs = tfjs.losses.get(model)!;
      assertEquals(theirs.size, 12);
      const mean = (theirs.get(11)! + theirs.get(12)!) / 2;
      assertAlmostEquals(b.training.lastLoss, mean, 1e-12, model);
      // The engines agree within their rounding (seen: ≤ 2.5e-7 nats).
      assertAlmostEquals(a.training.lastLoss, b.training.lastLoss, 1e-5, model);
    }
    for (const { results, report } of [cpu, tfjs]) {
      // The steps it averages, recorded beside it and named in its row.
      for (const m of results.results) {
        assertEquals(m.training.lastLossSteps, [11, 12], m.model);
      }
      assertEquals(report.split("(steps 11 to 12)").length - 1, 3, report);
    }
  },
});
