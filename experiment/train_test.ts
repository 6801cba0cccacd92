import { assertEquals, assertNotEquals } from "@std/assert";
import { MetricsLog } from "@d3pm/train";
import {
  AR,
  type Engine,
  enter,
  evaluationModel,
  prepareData,
  releaseEvaluationModel,
  resolveConfig,
  RunFolder,
} from "./mod.ts";
import { trainContestant } from "./train.ts";

Deno.test({
  name:
    "on the CPU engine's runs, validation during training scores on the engine: its figure is the engine's score of the weights, not tfjs's",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await Deno.makeTempDir();
    try {
      const config = resolveConfig({
        preset: "micro",
        out,
        models: "ar",
        steps: 2,
        warmup: 1,
        batchSize: 2,
        validEvery: 2,
        logEvery: 1,
        validBlocks: 4,
        checkpointEvery: 2,
        emaDecay: 0,
      });
      const folder = new RunFolder(out);
      const data = await prepareData(config, folder, () => {});
      const entrant = enter(AR, { config, data });
      const engine: Engine = { kind: "cpu", reason: "cpu" };
      const { model } = await trainContestant(entrant, 0, {
        config,
        data,
        folder,
        metrics: new MetricsLog(folder.metricsPath),
        progress: false,
        engine,
      });
      const valid = (await MetricsLog.read(folder.metricsPath))
        .filter((r) => typeof r.valid === "number")
        .map((r) => [r.step, r.valid]);
      assertEquals(valid.map(([step]) => step), [2]);
      // The model holds step 2's weights (keep: last): scored again on the
      // engine, the same bits; on tfjs, float32 rounding apart.
      const placed = await evaluationModel(model, engine);
      const onEngine = await AR.validate(entrant.process, placed, data);
      const onTfjs = await AR.validate(entrant.process, model, data);
      releaseEvaluationModel(placed);
      model.dispose();
      assertEquals(valid[0][1], onEngine.nats);
      assertNotEquals(onEngine.nats, onTfjs.nats);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
