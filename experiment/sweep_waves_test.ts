import { assertEquals, assertStringIncludes } from "@std/assert";
import {
  planSweep,
  runLocal,
  saveSweep,
  sbatchScript,
  startOrder,
  studySweep,
  type Sweep,
  sweepPaths,
  waves,
} from "./sweep.ts";

/** Three cells of a study: a (slow) and b in wave 0, c in wave 1. */
function study(dir: string): Sweep {
  return studySweep(
    dir,
    "examples/none.ts",
    [["a", 0], ["b", 0], ["c", 1]].map(([name, wave]) => ({
      name: name as string,
      values: { cell: name as string },
      out: `${dir}/${name}`,
      args: [name as string],
      wave: wave as number,
    })),
  );
}

Deno.test("runLocal() starts a later wave only when every cell of the earlier one has finished, and skips it after a failure", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep-waves-" });
  const order = `${dir}/order`;
  // Each cell sleeps (a longest), then appends its name.
  const experiment =
    `sh -c 'case "$1" in a) sleep 1;; esac; echo "$1" >> ${order}' cell`;
  const lines: string[] = [];
  const failed = await runLocal(study(dir), {
    jobs: 3,
    workdir: dir,
    experiment,
    log: (l) => lines.push(l),
  });
  assertEquals(failed, []);
  // c (wave 1) after both cells of wave 0, whichever of those ends first
  // (a sleeps, but a loaded machine can start b later still).
  const ran = (await Deno.readTextFile(order)).trim().split("\n");
  assertEquals(ran.length, 3);
  assertEquals(ran[2], "c");
  assertEquals(ran.slice(0, 2).sort(), ["a", "b"]);
  const bad = await runLocal(study(`${dir}/bad`), {
    jobs: 3,
    workdir: dir,
    experiment: "false",
    log: (l) => lines.push(l),
  });
  // Wave 0's failures in the order they ended (either first), then c's.
  assertEquals(bad.map((c) => c.name).slice(0, 2).sort(), ["a", "b"]);
  assertEquals(bad[2].name, "c");
  assertStringIncludes(
    lines.join("\n"),
    "cell c: not run (an earlier wave failed)",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sbatchScript() puts a later wave after a job: --dependency=afterok", () => {
  const s = study("/x/st");
  const text = sbatchScript(s, {
    workdir: "/repo",
    experiment: "deno run -A /repo/examples/none.ts",
    cells: [2],
    after: "123",
  });
  assertStringIncludes(text, "#SBATCH --array=2\n");
  assertStringIncludes(text, "#SBATCH --dependency=afterok:123\n");
});

Deno.test("startOrder() starts an experiment sweep's costliest cells first (more steps), equal costs in the sweep's order", () => {
  const s = planSweep(
    {
      options: { preset: "micro", warmup: 1 },
      grid: { steps: [10, 40, 20] },
      seeds: 2,
    },
    { dir: "runs/s" },
  );
  assertEquals(s.cells.map((c) => c.name), [
    "steps-10_seed-0",
    "steps-10_seed-1",
    "steps-40_seed-0",
    "steps-40_seed-1",
    "steps-20_seed-0",
    "steps-20_seed-1",
  ]);
  assertEquals(startOrder(s, s.cells).map((c) => c.name), [
    "steps-40_seed-0",
    "steps-40_seed-1",
    "steps-20_seed-0",
    "steps-20_seed-1",
    "steps-10_seed-0",
    "steps-10_seed-1",
  ]);
  // Two models cost more than one of them at the same steps.
  const m = planSweep(
    {
      options: { preset: "micro", steps: 10, warmup: 1 },
      grid: { models: ["ar", "ar,d3pm"] },
    },
    { dir: "runs/m" },
  );
  assertEquals(startOrder(m, m.cells).map((c) => c.index), [1, 0]);
});

/** A study's cells by model: a (AR), b (D3PM), c (AR), d (D3PM) in wave 0, e (AR) in wave 1. */
function byModel(dir: string): Sweep {
  return studySweep(
    dir,
    "examples/none.ts",
    ([["a", "ar", 0], ["b", "d3pm", 0], ["c", "ar", 0], ["d", "d3pm", 0], [
      "e",
      "ar",
      1,
    ]] as const).map(([name, model, wave]) => ({
      name,
      values: { model },
      out: `${dir}/${name}`,
      args: [name],
      wave,
    })),
  );
}

Deno.test("startOrder() starts a study's D3PM cells before its AR cells, each kind in the sweep's order", () => {
  const s = byModel("runs/st");
  const [w0, w1] = waves(s.cells);
  assertEquals(startOrder(s, w0).map((c) => c.name), ["b", "d", "a", "c"]);
  assertEquals(startOrder(s, w1).map((c) => c.name), ["e"]);
});

Deno.test("runLocal() starts each wave's cells costliest first", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sweep-order-" });
  const order = `${dir}/order`;
  const lines: string[] = [];
  // One job: the cells run one after another, in the order they start.
  const failed = await runLocal(byModel(dir), {
    jobs: 1,
    workdir: dir,
    experiment: `sh -c 'echo "$1" >> ${order}' cell`,
    log: (l) => lines.push(l),
  });
  assertEquals(failed, []);
  assertEquals((await Deno.readTextFile(order)).trim().split("\n"), [
    "b",
    "d",
    "a",
    "c",
    "e",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("waves() orders the waves by number whatever the cells' order, each wave's cells in the sweep's order", () => {
  const c = (index: number, wave?: number) => ({
    index,
    name: `c${index}`,
    values: {},
    out: `o${index}`,
    args: [],
    wave,
  });
  // A planted order of first appearance passed every other test.
  assertEquals(
    waves([c(0, 2), c(1, 1), c(2), c(3, 1), c(4, 0)]).map((w) =>
      w.map((x) => x.index)
    ),
    [[2, 4], [1, 3], [0]],
  );
});

Deno.test("runLocal() gives each of N jobs floor(cores / N) BLAS threads, at least 1", async () => {
  const root = await Deno.makeTempDir();
  for (
    const [cores, jobs, threads] of [[3, 2, 1], [8, 3, 2], [1, 4, 1], [4, 1, 4]]
  ) {
    const sweep = await saveSweep(
      planSweep({ seeds: 1 }, { dir: `${root}/c${cores}j${jobs}` }),
    );
    await runLocal(sweep, {
      jobs,
      cores,
      workdir: root,
      experiment:
        'f() { echo "threads $OPENBLAS_NUM_THREADS $OMP_NUM_THREADS $MKL_NUM_THREADS"; }; f',
      log: () => {},
    });
    assertStringIncludes(
      await Deno.readTextFile(sweepPaths(sweep.dir).log(sweep.cells[0])),
      `threads ${threads} ${threads} ${threads}\n`,
      `${cores} cores, ${jobs} jobs`,
    );
  }
  await Deno.remove(root, { recursive: true });
});
