// An MLM on rows so short that the 15% masking often drew no token in a
// row: it trained, then exited 1 at its first validation with "Cannot
// estimate the masked loss: the batch has no tokens (all padding)" (there
// was no padding), and steps whose batch drew no mask logged a loss of 0.
// Every row now has at least one masked token.
import { assert, assertEquals } from "@std/assert";
import { runTool } from "./_run.ts";

Deno.test("an MLM on 2-token rows, one row a batch, trains with no step of loss 0, validates and writes its results", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await runTool("experiment.ts", [
      "--preset",
      "micro",
      "--models",
      "mlm",
      "--block-length",
      "2",
      "--batch-size",
      "1",
      "--steps",
      "10",
      "--warmup",
      "2",
      "--valid-every",
      "5",
      "--valid-blocks",
      "1",
      "--log-every",
      "1",
      "--judge",
      "auto",
      "--eval-blocks",
      "2",
      "--elbo-samples",
      "1",
      "--exact-blocks",
      "0",
      "--gen-tokens",
      "8",
      "--gen-samples",
      "0",
      "--gen-steps",
      "2",
      "--samples",
      "1",
      "--engine",
      "tfjs",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const records = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l));
    const losses = records.filter((m) => "loss" in m).map((m) => m.loss);
    assertEquals(losses.length, 10);
    assert(losses.every((l) => l > 0), losses.join(" "));
    assertEquals(records.filter((m) => "valid" in m).length, 2);
    const results = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
    assert(Number.isFinite(results.results[0].training.valid.final));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
