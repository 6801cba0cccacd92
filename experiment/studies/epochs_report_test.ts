import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { studyBase } from "./epochs_runner.ts";
import { PLATEAU_MARGIN, writeStudyReport } from "./epochs_report.ts";
import { type RunCurve, SCALES, type StudyScale } from "./epochs_scale.ts";

/** A run whose validations are `valid`, one an epoch. */
function run(
  phase: "sweep" | "main",
  u: number,
  model: "ar" | "d3pm",
  valid: number[],
  dropout = 0,
): RunCurve {
  return {
    phase,
    u,
    model,
    dropout,
    weightDecay: 0.1,
    epochs: valid.length,
    stopped: "budget",
    curve: valid.map((v, i) => ({
      epoch: i + 1,
      flops: 1e9 * (i + 1),
      valid: v,
    })),
  };
}

async function report(
  scale: StudyScale,
  runs: RunCurve[],
  unigramEntropy?: number,
): Promise<string> {
  const out = await Deno.makeTempDir({ prefix: "epochs-report-" });
  try {
    await writeStudyReport(
      {
        out,
        scale,
        base: studyBase(scale),
        params: 1000,
        seed: 0,
        unigramEntropy,
      },
      runs,
      { dropout: 0, weightDecay: 0.1 },
      60,
    );
    return await Deno.readTextFile(`${out}/report.md`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

const ONE: StudyScale = {
  ...SCALES.cpu,
  u: [10_000, 20_000, 40_000],
  dropouts: [0],
  decays: [0.1],
};

Deno.test("writeStudyReport() says a D3PM sits on the unigram plateau only for the runs whose best bound is within the margin of the unigram entropy", async () => {
  const h = 6;
  const main = [
    run("main", 10_000, "ar", [5.5, 5.2, 5.4]),
    // Best 5.9: within 0.25 nat of 6.
    run("main", 10_000, "d3pm", [6.4, 6.1, h - PLATEAU_MARGIN + 0.15]),
    run("main", 20_000, "ar", [5.4, 5.1, 5.0]),
    // Best 5.0: a nat below, off the plateau (its last, 5.9, is not its best).
    run("main", 20_000, "d3pm", [6.4, 5.0, 5.9]),
    run("main", 40_000, "ar", [5.4, 5.1, 5.0]),
    // Best 6.5: half a nat above, not yet on the plateau.
    run("main", 40_000, "d3pm", [7.4, 6.9, 6.5]),
  ];
  const text = await report(ONE, main, h);
  assertStringIncludes(
    text,
    "a D3PM run goes to the end (at U = 10K its best bound is within 0.25 nat of the train split's unigram entropy, 6.000 nats: it sits on the unigram plateau",
  );
  assertStringIncludes(text, "at U = 10K its best bound");
  // Both off the plateau (the preset's D3PM): not a word of it.
  const off = [
    main[0],
    run("main", 10_000, "d3pm", [6, 5.2, 5.1]),
    ...main.slice(2),
  ];
  const quiet = await report(ONE, off, h);
  assert(!quiet.includes("plateau"), quiet);
  assertStringIncludes(quiet, "a D3PM run goes to the end. U:");
  // The entropy unknown (cells run before it was kept): no claim either.
  assert(!(await report(ONE, main)).includes("plateau"));
  // With d3pmPatience the D3PM stops early, whatever its curve.
  const patient = await report({ ...ONE, d3pmPatience: 3 }, main, h);
  assert(!patient.includes("plateau"), patient);
  assertStringIncludes(patient, "a D3PM run after 3.");
});

Deno.test("writeStudyReport() omits the AR sweep's section with one AR setting, and keeps it with several", async () => {
  const main = [
    run("main", 10_000, "ar", [5.5, 5.2]),
    run("main", 10_000, "d3pm", [6.4, 5.1]),
  ];
  const one = await report(ONE, main, 6);
  assert(!one.includes("## AR regularisation sweep"), one);
  assert(!one.includes("sweep.svg"), one);
  assertStringIncludes(one, "the one setting given (no sweep)");
  const many: StudyScale = { ...ONE, dropouts: [0, 0.1] };
  const swept = [
    run("sweep", 10_000, "ar", [5.5, 5.2]),
    run("sweep", 10_000, "ar", [5.6, 5.3], 0.1),
  ];
  const text = await report(many, [...swept, ...main], 6);
  assertStringIncludes(text, "chosen by the sweep below");
  const section = text.split("## AR regularisation sweep (U = 10K")[1];
  assert(section !== undefined, text);
  // A header, its rule and one row per setting.
  assertEquals(section.split("\n").filter((l) => l.startsWith("|")).length, 4);
  assertStringIncludes(section, "![sweep](sweep.svg)");
});

Deno.test("writeStudyReport() of an unfinished study names each planned U and sweep setting not run", async () => {
  const scale = { ...ONE, dropouts: [0, 0.1] };
  const text = await report(scale, [
    run("sweep", 10_000, "ar", [5.5, 5.2, 5.4]),
    run("main", 10_000, "ar", [5.5, 5.2, 5.4]),
    run("main", 10_000, "d3pm", [6.4, 6.1, 5.9]),
    run("main", 20_000, "ar", [5.4, 5.1, 5.0]),
  ]);
  assertStringIncludes(
    text,
    "**Unfinished:** U = 20K, 40K not run — interrupted or in progress",
  );
  for (const u of ["20K", "40K"]) {
    assertStringIncludes(
      text,
      `- U = ${u}: not run — interrupted or in progress.`,
    );
    assertStringIncludes(text, `| ${u} | not run | — |`);
  }
  assertStringIncludes(
    text,
    "| 0.1 | 0.1 | — | — | not run — interrupted or in progress |",
  );
  // Finished: none of it.
  const done = await report(ONE, [
    run("main", 10_000, "ar", [5.5]),
    run("main", 10_000, "d3pm", [6.4]),
    run("main", 20_000, "ar", [5.5]),
    run("main", 20_000, "d3pm", [6.4]),
    run("main", 40_000, "ar", [5.5]),
    run("main", 40_000, "d3pm", [6.4]),
  ]);
  assert(!done.includes("not run"), done);
});
