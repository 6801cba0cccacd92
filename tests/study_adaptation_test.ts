// `deno task study adaptation` as a user runs it, at the micro preset cut
// to 40 steps (20 + 20): the six cells of one seed run as local jobs in two
// waves, the adapted D3PMs start from the source's weights, and the table
// holds each cell's own figures, read back from its results.json.
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { runTool } from "./_run.ts";

type Json = Record<string, unknown> & {
  results: {
    model: string;
    seed: number;
    test: { bpt: number };
    generation: {
      genPpl: number;
      entropy: number;
      genPplInterval?: unknown;
    };
    exact?: unknown;
    infill?: { accuracy: number };
    training: {
      tokens: number;
      initFrom?: { tokens: number; dir: string; model: string };
    };
  }[];
};

Deno.test("deno task study adaptation runs its cells in two waves and makes the table from their results.json", async () => {
  const dir = await Deno.makeTempDir({ prefix: "study-adaptation-" });
  try {
    const ran = await runTool("study.ts", [
      "adaptation",
      "--preset",
      "micro",
      "--seeds",
      "0..0",
      "--steps",
      "40",
      "--source-steps",
      "20",
      "--dir",
      dir,
      "--on",
      "local",
      "--jobs",
      "2",
      // The test reads gen PPL but not its interval nor the exact bound:
      // the last timed batch judged, no exact bound (the defaults, 64 rows
      // judged and 2 exact blocks, cost each cell seconds unread).
      "--gen-samples",
      "0",
      "--exact-blocks",
      "0",
    ]);
    assertEquals(ran.code, 0, ran.stderr.slice(-2000));
    const read = async (cell: string) =>
      JSON.parse(
        await Deno.readTextFile(`${dir}/cells/${cell}_seed-0/results.json`),
      ) as Json;
    const table = JSON.parse(
      await Deno.readTextFile(`${dir}/adaptation.json`),
    );
    assertEquals(table.missing, []);
    // Every cell's results are of the plan (its config's steps, seed and
    // source): none left out as another plan's.
    assertEquals(table.mismatched, undefined);
    const row = (key: string) =>
      table.rows.find((r: { key: string }) => r.key === key);
    const pairs: [string, string, string][] = [
      ["ar", "ar", "ar"],
      ["d3pm", "d3pm", "d3pm"],
      ["from-ar", "from-ar", "d3pm"],
      ["from-ar-anneal-shift", "from-ar-anneal-shift", "d3pm"],
      ["from-mlm", "from-mlm", "d3pm"],
      ["source-ar", "source", "ar"],
      ["source-mlm", "source", "mlm"],
    ];
    for (const [key, cell, model] of pairs) {
      const m = (await read(cell)).results.find((x) => x.model === model)!;
      assertAlmostEquals(row(key).testBpt.mean, m.test.bpt, 1e-12, key);
      assertAlmostEquals(row(key).genPpl.mean, m.generation.genPpl, 1e-9, key);
      assertEquals(row(key).testBpt.n, 1, key);
      // --gen-samples 0 reached the cell: no interval was measured.
      assertEquals(m.generation.genPplInterval, undefined, key);
      // --exact-blocks 0 did: no D3PM has the exact bound.
      assertEquals(m.exact, undefined, key);
    }
    // The adapted D3PMs started from the source: its 20 steps × 16 × 32
    // tokens counted, the AR's or the MLM's of the same seed.
    for (const cell of ["from-ar", "from-ar-anneal-shift", "from-mlm"]) {
      const from = (await read(cell)).results[0].training.initFrom!;
      assertEquals(from.tokens, 20 * 16 * 32, cell);
      assertEquals(from.model, cell === "from-mlm" ? "mlm" : "ar", cell);
      assertEquals(from.dir, `${dir}/cells/source_seed-0`, cell);
      const report = await Deno.readTextFile(
        `${dir}/cells/${cell}_seed-0/report.md`,
      );
      assert(
        report.replaceAll("\n", " ").includes(
          `trained on ${20 * 16 * 32} tokens`,
        ),
        cell,
      );
    }
    // The rows differ: the annealed row is not the plain one's copy.
    assert(
      row("from-ar").testBpt.mean !== row("from-ar-anneal-shift").testBpt.mean,
    );
    const md = await Deno.readTextFile(`${dir}/adaptation.md`);
    assert(md.includes("| D3PM from the MLM | 1 | 10240 + 10240 |"), md);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
