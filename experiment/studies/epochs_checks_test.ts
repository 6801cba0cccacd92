// The epochs study refuses what it cannot run before it writes anything,
// and collects only the cells of one plan (review findings 1, 2, 8, 9, 10).
// No model trains here: each refusal comes before the first step.
import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { ConfigError } from "../options.ts";
import { collectEpochs, epochsCells, runEpochsStudy } from "./epochs_runner.ts";
import { type RunCurve, SCALES, type StudyScale } from "./epochs_scale.ts";

/** The reviewer's micro study: U 4K and 8K, 16K tokens, a two-run sweep. */
const MICRO: StudyScale = {
  ...SCALES.cpu,
  preset: "micro",
  u: [4000, 8000],
  tokens: 16000,
  dropouts: [0, 0.1],
  decays: [0.1],
  validBlocks: 8,
};

/** A folder's entries with their text, to see that nothing changed. */
async function contents(dir: string): Promise<Record<string, string>> {
  const seen: Record<string, string> = {};
  for await (const e of Deno.readDir(dir)) {
    seen[e.name] = e.isFile ? await Deno.readTextFile(`${dir}/${e.name}`) : "";
  }
  return seen;
}

Deno.test("runEpochsStudy() refuses a folder holding a study without force, a U outside [one batch, the train split] and --tokens below one epoch, before it writes anything", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-checks-" });
  try {
    const out = `${tmp}/done`;
    await Deno.mkdir(out);
    // Interrupted after U = 4K: named unfinished, with what --force does.
    const verdict = (u: number) =>
      JSON.stringify({ study: "epochs", phase: "main", u, verdict: {} }) +
      "\n";
    // Begun with --resume's record: the refusal offers it.
    await Deno.writeTextFile(
      `${out}/study.json`,
      JSON.stringify({ scale: MICRO, seed: 0 }) + "\n",
    );
    await Deno.writeTextFile(
      `${out}/epochs.jsonl`,
      '{"study":"epochs"}\n' + verdict(4000),
    );
    await assertRejects(
      () => runEpochsStudy({ scale: MICRO, seed: 0, out }),
      ConfigError,
      `--out ${out} holds an unfinished study (epochs.jsonl: U = 4000 finished, U = 8000 not): pass --resume to continue it (with the options it was begun with: the runs finished are kept), or --force to run it again from the start (every run is retrained; epochs.jsonl, the report and charts are moved aside to study.replaced-<time>, its run folders beside themselves), or choose another --out`,
    );
    await Deno.writeTextFile(`${out}/epochs.jsonl`, verdict(8000), {
      append: true,
    });
    await Deno.writeTextFile(`${out}/report.md`, "# the finished study\n");
    const before = await contents(out);
    await assertRejects(
      () => runEpochsStudy({ scale: MICRO, seed: 0, out }),
      ConfigError,
      `--out ${out} already holds a study (epochs.jsonl): pass --force to run the study again there`,
    );
    const refused: [Partial<StudyScale>, string][] = [
      [
        { u: [100] },
        "Option --u 100 is outside what the study can train on: --u takes values in [256, ",
      ],
      [
        { u: [4000, 999_999_999_999] },
        "Option --u 999999999999 is outside what the study can train on: --u takes values in [256, ",
      ],
      [
        { u: [4000], tokens: 1 },
        "Option --tokens 1 is less than one epoch at U = 4000 (15 steps of 8 blocks of 32): --tokens takes at least 3840 here",
      ],
      // The minimum is the largest U's: 31 steps of 8 blocks of 32.
      [
        { tokens: 3000 },
        "Option --tokens 3000 is less than one epoch at U = 8000 (31 steps of 8 blocks of 32): --tokens takes at least 7936 here",
      ],
    ];
    for (const [sizes, message] of refused) {
      const scale = { ...MICRO, ...sizes };
      await assertRejects(
        () => runEpochsStudy({ scale, seed: 0, out, force: true }),
        ConfigError,
        message,
      );
      assertEquals(await contents(out), before, message);
    }
    // Into a new folder: not even the folder is made.
    const fresh = `${tmp}/fresh`;
    await assertRejects(
      () =>
        runEpochsStudy({ scale: { ...MICRO, u: [1e12] }, seed: 0, out: fresh }),
      ConfigError,
      "Option --u 1000000000000 is outside",
    );
    await assertRejects(() => Deno.lstat(fresh), Deno.errors.NotFound);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** A run whose validations are `valid`, one an epoch. */
function curve(
  cell: ReturnType<typeof epochsCells>[number],
  valid: number[],
): RunCurve {
  return {
    phase: cell.phase,
    u: cell.u,
    model: cell.model,
    dropout: cell.dropout ?? 0,
    weightDecay: cell.weightDecay ?? 0.1,
    epochs: valid.length,
    stopped: "budget",
    curve: valid.map((v, i) => ({
      epoch: i + 1,
      flops: 1e9 * (i + 1),
      valid: v,
    })),
  };
}

/**
 * Every cell of the micro study finished, as if run with `ran` (one cell:
 * `odd`); `legacy`: a results.json as written before the sizes were
 * recorded, its first line's step and tokens those of U (and `odd` a cell
 * planned for one epoch: --tokens 4000).
 */
async function finishCells(
  out: string,
  ran: StudyScale,
  odd?: { cell: string; scale: StudyScale },
  legacy = false,
): Promise<void> {
  for (const c of epochsCells(MICRO)) {
    // U = 4K: 125 blocks of 32, 15 steps of 8 (3840 tokens), 4 epochs of
    // 16K tokens; U = 8K: 31 steps (7936 tokens), 2 epochs.
    const steps = c.u === 4000 ? 15 : 31;
    const epochs = odd?.cell === c.name ? 1 : c.u === 4000 ? 4 : 2;
    const run = curve(
      c,
      c.model === "ar" ? [3.3, 3.2, 3.25, 3.3] : [3.4, 3.1, 3.0, 2.9],
    );
    await Deno.mkdir(`${out}/${c.name}`, { recursive: true });
    await Deno.writeTextFile(
      `${out}/${c.name}/results.json`,
      JSON.stringify({
        cell: c.name,
        params: 50240,
        seconds: 5,
        ...(legacy
          ? {
            run: { ...run, epochs, curve: run.curve.slice(0, epochs) },
            lines: [{ epoch: 1, step: steps, tokens: steps * 8 * 32 }],
          }
          : {
            run,
            lines: [],
            scale: odd?.cell === c.name ? odd.scale : ran,
            seed: 0,
            engine: "cpu",
          }),
      }),
    );
  }
}

Deno.test("collectEpochs()'s way out quotes a folder with a space for bash, so that the command runs as printed", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-collect-" });
  const out = `${tmp}/my study`;
  try {
    await finishCells(out, MICRO, {
      cell: "main-u4000-d3pm",
      scale: { ...MICRO, tokens: 4000 },
    });
    await assertRejects(
      () => collectEpochs({ scale: MICRO, seed: 0, out }),
      ConfigError,
      `: run it again (deno task study epochs --out '${out}' --cell main-u4000-d3pm)`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("collectEpochs() refuses a cell that ran with other sizes, writing nothing; of one plan, its report gives the AR's lr as trained (the micro preset's arLr 0: the D3PM's) and the engine used", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-collect-" });
  try {
    await finishCells(out, MICRO, {
      cell: "main-u4000-d3pm",
      scale: { ...MICRO, tokens: 4000 },
    });
    await assertRejects(
      () => collectEpochs({ scale: MICRO, seed: 0, out }),
      ConfigError,
      `Cannot collect ${out}: cell main-u4000-d3pm ran with --tokens 4000, the study's is --tokens 16000: run it again (deno task study epochs --out ${out} --cell main-u4000-d3pm)`,
    );
    await assertRejects(
      () => collectEpochs({ scale: MICRO, seed: 1, out }),
      ConfigError,
      "ran with --seed 0, the study's is --seed 1",
    );
    await assertRejects(() => Deno.lstat(`${out}/epochs.jsonl`));
    await assertRejects(() => Deno.lstat(`${out}/report.md`));
    await finishCells(out, MICRO);
    await collectEpochs({ scale: MICRO, seed: 0, out });
    const report = await Deno.readTextFile(`${out}/report.md`);
    assertStringIncludes(
      report,
      "Training settings pinned (the micro preset's): AR lr 0.005, D3PM lr 0.005 ",
    );
    assertStringIncludes(report, "; engine cpu.");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectEpochs() judges a cell without a record of its sizes by its lines: refused when planned for other epochs; the report says the engine is not recorded", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-legacy-" });
  try {
    const odd = { cell: "main-u4000-d3pm", scale: MICRO };
    await finishCells(out, MICRO, odd, true);
    await assertRejects(
      () => collectEpochs({ scale: MICRO, seed: 0, out }),
      ConfigError,
      `Cannot collect ${out}: cell main-u4000-d3pm was planned for 1 epochs of 3840 tokens, the study's --tokens 16000 makes 4: run it again`,
    );
    await assertRejects(
      () => collectEpochs({ scale: { ...MICRO, batchSize: 4 }, seed: 0, out }),
      ConfigError,
      "trained on 256 tokens a step, the study's --batch-size 4 and --preset micro make 128",
    );
    await assertRejects(() => Deno.lstat(`${out}/report.md`));
    await finishCells(out, MICRO, undefined, true);
    await collectEpochs({ scale: MICRO, seed: 0, out });
    assertStringIncludes(
      await Deno.readTextFile(`${out}/report.md`),
      "; engine auto (which one it chose is not recorded).",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("collectEpochs() replaces an earlier epochs.jsonl whole: a reader that opened it keeps reading the earlier file, never a torn one", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-atomic-" });
  try {
    await finishCells(out, MICRO);
    const earlier = '{"study":"epochs","earlier":true}\n';
    await Deno.writeTextFile(`${out}/epochs.jsonl`, earlier);
    using reader = await Deno.open(`${out}/epochs.jsonl`);
    await collectEpochs({ scale: MICRO, seed: 0, out });
    const read = new Uint8Array(earlier.length + 10);
    const n = await reader.read(read);
    assertEquals(new TextDecoder().decode(read.subarray(0, n ?? 0)), earlier);
    const lines = (await Deno.readTextFile(`${out}/epochs.jsonl`)).trim()
      .split("\n");
    assertEquals(
      lines.at(-1),
      JSON.stringify({
        study: "epochs",
        phase: "main",
        u: 8000,
        verdict: JSON.parse(lines.at(-1)!).verdict,
      }),
    );
    assertEquals(
      [...Deno.readDirSync(out)].filter((e) => e.name.endsWith(".tmp")),
      [],
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
