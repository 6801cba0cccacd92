import { assertEquals, assertRejects } from "@std/assert";
import { inspectTrained, locateWeights } from "./load.ts";
import { resolveConfig } from "./config.ts";
import { RunFolder } from "./run_folder.ts";

Deno.test("a model the run did not train is refused naming the models and seeds it did (or none yet); one its configuration does not train, naming what it does", async () => {
  const out = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(out);
    (await folder.start(
      resolveConfig({ preset: "micro", out, seeds: 2, models: "ar,d3pm" }),
    ))();
    const tail = (e: Error) => e.message.slice(e.message.indexOf("); ") + 3);
    const none = await assertRejects(
      () => locateWeights(out, { model: "ar" }),
      Error,
    );
    assertEquals(tail(none), "none trained there yet");
    for (const [seed, kind] of [[0, "ar"], [0, "d3pm"], [1, "ar"]] as const) {
      await Deno.mkdir(folder.modelDir(seed, kind), { recursive: true });
      await Deno.writeTextFile(
        `${folder.modelDir(seed, kind)}/model.safetensors`,
        "",
      );
      await Deno.writeTextFile(folder.processPath(seed, kind), "{}");
    }
    const held = "trained there: ar, d3pm of seed 0; ar of seed 1";
    const d3pm1 = await assertRejects(
      () => locateWeights(out, { model: "d3pm", seed: 1 }),
      Error,
      `No trained d3pm model for seed 1 in ${out}`,
    );
    assertEquals(tail(d3pm1), held);
    // A contestant or seed the configuration does not train is refused
    // before its folder is looked at, naming what the run trains.
    for (const [seed, kind] of [[0, "mlm"], [2, "ar"]] as const) {
      const outside = await assertRejects(
        () => inspectTrained(out, { model: kind, seed }),
        Error,
        `${out} has no ${kind} model for seed ${seed}: its config.json trains ar, d3pm for seeds 0..1`,
      );
      assertEquals(outside.message.includes("\n"), false);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
