// The epochs study with the preset's own training settings (issue 28):
// a run at the tiny preset, micro-sized, trains the D3PM with the preset's
// neighbour-head prior on the engine asked for, and says so in its report.
import { assertEquals, assertStringIncludes } from "@std/assert";
import { PRESETS } from "@d3pm/experiment";
import { runTool } from "./_run.ts";

Deno.test("deno task study epochs --settings preset trains the tiny preset's D3PM (neighbour heads, batch 4) on --engine cpu, micro-sized", async () => {
  const dir = await Deno.makeTempDir({ prefix: "epochs-preset-" });
  const ran = await runTool("study.ts", [
    "epochs",
    "--settings",
    "preset",
    "--engine",
    "cpu",
    "--u",
    "1500",
    "--tokens",
    "3072",
    "--dropouts",
    "0",
    "--decays",
    "0.1",
    "--valid-blocks",
    "2",
    "--out",
    dir,
  ]);
  assertEquals(ran.code, 0, ran.stderr);
  assertStringIncludes(ran.stderr, "engine: cpu: the fused plan");
  const config = (name: string) =>
    Deno.readTextFile(`${dir}/${name}/config.json`).then(JSON.parse);
  const d3pm = await config("main-u1500-d3pm");
  const tiny = PRESETS.tiny;
  assertEquals(
    [d3pm.alibi, d3pm.alibiMode, d3pm.lr, d3pm.tMin, d3pm.batchSize],
    [tiny.alibi, tiny.alibiMode, tiny.lr, tiny.tMin, tiny.batchSize],
  );
  assertEquals(d3pm.warmup, 6); // the preset's 60, cut to the run's 6 steps
  assertEquals([d3pm.alibi, d3pm.alibiMode], [16, "neighbours"]);
  assertEquals(d3pm.engine, "cpu");
  const ar = await config("sweep-u1500-ar-do0-wd0.1");
  assertEquals([ar.arLr, ar.engine, ar.batchSize], [tiny.arLr, "cpu", 4]);
  const lines = (await Deno.readTextFile(`${dir}/epochs.jsonl`)).trim()
    .split("\n").map((l) => JSON.parse(l));
  const d3pmEpochs = lines.filter((l) => l.model === "d3pm" && l.epoch);
  // 11 blocks of 128: 2 steps of 4 an epoch, 3072 tokens: 3 epochs.
  assertEquals(d3pmEpochs.map((l) => l.epoch), [1, 2, 3]);
  assertEquals(d3pmEpochs.map((l) => l.tokens), [1024, 2048, 3072]);
  const report = await Deno.readTextFile(`${dir}/report.md`);
  assertStringIncludes(report, "batch 4)");
  assertStringIncludes(
    report,
    "Training settings preset (the tiny preset's): AR lr 0.004, D3PM lr 0.0014 with t ∈ [0.3, 0.8] and ALiBi slope 16 (neighbours), warm-up 60 steps (all of a shorter run's), EMA 0; engine cpu.",
  );
  await Deno.remove(dir, { recursive: true });
});
