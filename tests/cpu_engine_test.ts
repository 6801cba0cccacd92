// The CPU engine (the fused plan on @d3pm/cpu's kernels) inside the
// experiment: it follows the tfjs loss curve, evaluation scores on it with
// the same figures, and a run killed on it resumes to the same weights.
// (tests/engine_test.ts: the same for the WebGPU engine.)
import { assert, assertEquals, assertLess, assertThrows } from "@std/assert";
import {
  chooseEngine,
  chooseRunEngine,
  ConfigError,
  evaluationModel,
  releaseEvaluationModel,
  resolveConfig,
} from "@d3pm/experiment";
import { requestEngineDevice } from "@d3pm/webgpu";
import { isCausalGenerator, isMaskedGenerator } from "@d3pm/core";
import { preset, Transformer } from "@d3pm/transformer";
import { createCpuKernels } from "@d3pm/cpu";
import { ignoreUnless } from "@d3pm/core/testing";
import {
  DEFAULT_LIMITS,
  generateFrames,
  parseGenerationInput,
  trainedModelLoader,
} from "@d3pm/dashboard";
import { runTool } from "./_run.ts";
import { AR_ARGS, followsTfjs, resumesOnEngine } from "./_engine_runs.ts";

// No CBLAS: skipped, with the reason.
const noKernels = ignoreUnless(
  "blas",
  await createCpuKernels({ words: 64, threads: 1 }).then(
    (k) => (k.dispose(), null),
    (e: Error) => e.message,
  ),
);

Deno.test({
  name:
    "training on the CPU engine follows the tfjs curve within 0.02 nats at every logged step, for all three models (ALiBi neighbour heads on the bidirectional two); evaluate scores and judges its models",
  ignore: noKernels,
  fn: () =>
    followsTfjs("cpu", "the fused plan on the CPU kernels", async (dir, eg) => {
      // `deno task evaluate --engine cpu` scores as the run's evaluation did
      // (the same engine, the same draws: equal figures); on tfjs within 1e-5.
      for (const [i, model] of ["ar", "d3pm"].entries()) {
        const nll = async (engine: string) => {
          const r = await runTool("evaluate.ts", [
            "--run",
            dir,
            "--model",
            model,
            "--engine",
            engine,
          ]);
          assertEquals(r.code, 0, r.stderr);
          assert(r.stderr.includes(`engine: ${engine}`), r.stderr);
          return JSON.parse(r.stdout).figures.nll as number;
        };
        assertEquals(await nll("cpu"), eg[i].test.nll, model);
        assertLess(Math.abs((await nll("tfjs")) - eg[i].test.nll), 1e-5);
      }
      // `evaluate --gen-samples` judged by a run's AR model (--judge): the
      // same rows under `self` and under the run named; a folder that is no
      // run, and --judge without --gen-samples, refused in one line each.
      const judged = (
        judge: string,
        extra: string[] = ["--gen-samples", "4"],
      ) =>
        runTool("evaluate.ts", [
          "--run",
          dir,
          "--model",
          "d3pm",
          "--engine",
          "cpu",
          "--judge",
          judge,
          ...extra,
        ]);
      const self = await judged("self"), named = await judged(dir);
      assertEquals(self.code, 0, self.stderr);
      const [a, b] = [JSON.parse(self.stdout), JSON.parse(named.stdout)];
      assertEquals(a.judge, `the AR model of seed 0 of the run in ${dir}`);
      assertEquals(a.samples, 4);
      assertEquals({ ...a, seconds: 0 }, { ...b, seconds: 0 });
      assertLess(Math.abs(a.genPpl - Math.exp(a.judgeNll)), 1e-9 * a.genPpl);
      const none = await judged(`${dir}/nowhere`);
      assertEquals(none.code, 1);
      assert(
        none.stderr.includes(
          `Option --judge ${dir}/nowhere: no finished run there`,
        ),
        none.stderr,
      );
      const bare = await judged("self", []);
      assertEquals(bare.code, 1);
      assert(bare.stderr.includes("it needs --gen-samples N"), bare.stderr);
    }),
});

Deno.test({
  name:
    "a run killed on the CPU engine resumes to the same weights as an uninterrupted one",
  ignore: noKernels,
  fn: () => resumesOnEngine("cpu"),
});

Deno.test({
  name:
    "--engine cpu resolves to the CPU engine, and refuses the d3pm objective in one line",
  ignore: noKernels,
  async fn() {
    const engine = await chooseEngine({ engine: "cpu", diffusionLoss: "mdlm" });
    assertEquals(engine, {
      kind: "cpu",
      reason: "cpu: the fused plan on the CPU kernels",
    });
    assertThrows(
      () => resolveConfig({ engine: "cpu", diffusionLoss: "d3pm" }),
      ConfigError,
      "Option --engine cpu trains the mdlm objective only",
    );
  },
});

// A real GPU here: auto takes the WebGPU engine, so the CPU case is skipped.
const realGpu = await requestEngineDevice().then(
  (f) => (f.device.destroy(), f.software ? null : `a real GPU: ${f.label}`),
  () => null,
);

Deno.test({
  name:
    "--engine auto without a real GPU resolves to the CPU engine (--init-from too), and to tfjs with the reason in one line for the d3pm objective, --anneal-steps and --shift",
  ignore: noKernels || realGpu !== null,
  async fn() {
    const cpu = await chooseEngine({ engine: "auto", diffusionLoss: "mdlm" });
    assertEquals(cpu.kind, "cpu");
    assert(
      cpu.reason.startsWith("cpu: the fused plan on the CPU kernels ("),
      cpu.reason,
    );
    const d3pm = await chooseEngine({ engine: "auto", diffusionLoss: "d3pm" });
    assertEquals(d3pm.kind, "tfjs");
    assert(
      d3pm.reason.includes(
        "the fused engines train the mdlm objective only and this run uses d3pm",
      ) && !d3pm.reason.includes("\n"),
      d3pm.reason,
    );
    // So do the options only tfjs implements (annealing and the shift);
    // --init-from, which only sets the initial weights, stays on the CPU
    // engine.
    for (const extra of [{ annealSteps: 5 }, { shift: true }]) {
      const e = await chooseEngine({
        engine: "auto",
        diffusionLoss: "mdlm",
        ...extra,
      });
      assertEquals(e.kind, "tfjs", JSON.stringify(extra));
      assert(
        e.reason.includes("implemented on the tfjs engine only") &&
          !e.reason.includes("\n"),
        e.reason,
      );
    }
    const adapted = await chooseEngine(resolveConfig({ initFrom: "runs/x" }));
    assertEquals(adapted.kind, "cpu", adapted.reason);
    // The default run's configuration resolves (auto is not refused with
    // the mdlm default).
    assertEquals(resolveConfig({}).engine, "auto");
  },
});

Deno.test({
  name:
    "the d3pm objective keeps a run off the CPU engine only when a contestant that trains it runs: an AR-only record of --diffusion-loss d3pm trains on cpu, as without it",
  ignore: noKernels || realGpu !== null,
  async fn() {
    const choice = { diffusionLoss: "d3pm" as const, models: "ar" };
    const auto = await chooseRunEngine({ ...choice, engine: "auto" });
    assertEquals(auto.kind, "cpu", auto.reason);
    const cpu = await chooseEngine({ ...choice, engine: "cpu" });
    assertEquals(cpu.kind, "cpu", cpu.reason);
    // With the D3PM in the run, its objective still decides.
    const both = await chooseRunEngine({
      ...choice,
      models: "ar,d3pm",
      engine: "auto",
    });
    assertEquals(both.kind, "tfjs");
  },
});

Deno.test({
  name:
    "evaluation on the CPU engine scores and generates there: the AR's model is a CausalGenerator (KV cache), the denoiser's a MaskedGenerator",
  ignore: noKernels,
  async fn() {
    const engine = { kind: "cpu" as const, reason: "cpu" };
    for (const kind of ["causal", "bidirectional"] as const) {
      const config = preset("micro", {
        kind,
        vocabSize: 16,
        contextLength: 8,
      });
      const model = new Transformer(config, { seed: 0 });
      const placed = await evaluationModel(model, engine);
      assert("rowLosses" in placed);
      assertEquals(isCausalGenerator(placed), kind === "causal");
      assertEquals(isMaskedGenerator(placed), kind === "bidirectional");
      const out = isCausalGenerator(placed)
        ? await placed.generateCausal({
          batchSize: 2,
          length: 8,
          start: 1,
          temperature: 0,
          seed: 0,
        })
        : isMaskedGenerator(placed)
        ? await placed.generateMasked({
          batchSize: 2,
          length: 8,
          maskId: 15,
          steps: [{ t: 1, reveal: 1 }],
          strategy: "ancestral",
          cache: false,
          seed: 0,
        })
        : null;
      assertEquals(out?.tokens.length, 16);
      releaseEvaluationModel(placed);
      model.dispose();
    }
  },
});

Deno.test({
  name:
    "deno task sample --engine cpu --model ar --prompt, and the dashboard's AR prompt, continue the prompt on the CPU engine",
  ignore: noKernels,
  async fn() {
    const out = await Deno.makeTempDir();
    const r = await runTool("experiment.ts", [
      ...AR_ARGS,
      "--models",
      "ar",
      "--steps",
      "10",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const s = await runTool("sample.ts", [
      "--run",
      out,
      "--engine",
      "cpu",
      "--model",
      "ar",
      "--prompt",
      "The city",
      "--count",
      "2",
    ]);
    assertEquals(s.code, 0, s.stderr);
    // Each sample under its "=== sample N (…) ===" line.
    const lines = s.stdout.split(
      /^=== sample \d+ \(\d+ forward passes\) ===\n/m,
    )
      .slice(1).map((t) => t.trim());
    assertEquals(lines.length, 2, s.stdout);
    for (const line of lines) {
      assert(line.startsWith("<|bos|>The city"), line);
      assert(line.length > "<|bos|>The city".length, line);
    }
    // The dashboard's generation on the CPU engine: the start row holds the
    // prompt, one frame at the end (no intermediate steps) keeps it.
    const loaded = await trainedModelLoader("cpu")(out, 0, "ar");
    try {
      const input = parseGenerationInput(
        { run: "r", model: "ar", prompt: "The city" },
        DEFAULT_LIMITS,
      );
      const events = [];
      for await (
        const e of generateFrames(loaded, input, new AbortController().signal)
      ) events.push(e);
      const first = events[0];
      if (!("start" in first)) throw new Error("no start event first");
      const start = first.start;
      assert(start.engine.startsWith("cpu"), start.engine);
      const frames = events.slice(1).flatMap((e) =>
        "frame" in e ? [e.frame] : []
      );
      assertEquals(frames.length, 1);
      const given = start.given.length;
      assertEquals(frames[0].step, start.steps);
      assertEquals(
        frames[0].tokens.slice(0, given),
        start.tokens.slice(0, given),
      );
      assertEquals(
        loaded.tokenizer.decode(Int32Array.from(frames[0].tokens)).slice(0, 15),
        "<|bos|>The city",
      );
    } finally {
      loaded.placed.dispose();
    }
    await Deno.remove(out, { recursive: true });
  },
});
