import { assertEquals } from "@std/assert";
import { genPplCell, plateauExit, plateauWindow } from "./report.ts";

Deno.test("plateauExit: the first step whose window mean is 0.25 nat below the entropy", () => {
  const losses = [7, 7, 7, 6.5, 6.3, 6.2, 6.1, 6.0];
  // Windows of 2: (6.5 + 6.3) / 2 = 6.4 < 6.74 − 0.25 at step 5, not before.
  assertEquals(plateauExit(losses, 6.74, 2), 5);
  // A window of 1 sees step 4's 6.5 (not < 6.49) and exits at step 5 too.
  assertEquals(plateauExit(losses, 6.74, 1), 5);
  // Windows of 4: steps 3–6 average 6.5 (not below 6.49), steps 4–7 6.275.
  assertEquals(plateauExit(losses, 6.74, 4), 7);
  assertEquals(plateauExit(losses, 5, 2), 0); // never
  assertEquals(plateauExit([], 6.74, 2), 0);
});

Deno.test("plateauWindow: 25 steps' worth of 8-row batches", () => {
  assertEquals(plateauWindow(8), 25);
  assertEquals(plateauWindow(4), 50);
  assertEquals(plateauWindow(1000), 1);
});

Deno.test("the loss chart names only the contestants that have curves, and one colour per contestant", async () => {
  const { curvesOf, lossChart } = await import("./charts.ts");
  const records = [
    { model: "ar", seed: 0, step: 1, loss: 5 },
    { model: "ar", seed: 0, step: 1, valid: 5.1 },
    { model: "d3pm", seed: 0, step: 1, loss: 6 },
    { model: "d3pm", seed: 1, step: 1, loss: 6.2 },
  ];
  const spec = lossChart(curvesOf(records), {
    label: (k: string) => k.toUpperCase(),
    validation: (k: string) => (k === "ar" ? "NLL" : "bound"),
  });
  const text = JSON.stringify(spec);
  assertEquals(text.includes("MLM"), false);
  assertEquals(
    spec.options.note,
    "Validation: AR NLL, D3PM bound. Training curves smoothed. Mean ± sd over 2 seeds; each seed faint.",
  );
  const colours = new Map(
    spec.series.map((s) => [s.name.split(" ")[0], s.color]),
  );
  assertEquals(colours.size, 2);
});

Deno.test("genPplCell: gen PPL with its 95% interval and sample count when measured", () => {
  assertEquals(genPplCell({ genPpl: 367.94 }), "367.9");
  assertEquals(
    genPplCell({
      genPpl: 219.3,
      genPplInterval: { low: 202.04, high: 238.06, samples: 128 },
    }),
    "219.3 (95%: 202.0–238.1, n = 128)",
  );
});
