// The serial epochs study interrupted (review of interrupts, findings 1, 2
// and 5): a --force killed before its first run loses none of the earlier
// study, and a Ctrl-C says what finished, in the report and on stderr.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { readCheckpointState } from "@d3pm/train";
import {
  copyFolder,
  errorLine,
  killWhen,
  MICRO_EPOCHS_STUDY as STUDY,
  once,
  runTool,
} from "./_run.ts";

const FILES = [
  "epochs.jsonl",
  "report.md",
  "valid-vs-epochs.svg",
  "valid-vs-flops.svg",
  "sweep.svg",
];

async function size(path: string): Promise<number | undefined> {
  return await Deno.stat(path).then((i) => i.size, () => undefined);
}

// The micro study whose D3PM at U = 2K stops at epoch 9, 3 after its best
// (epoch 6): a resume must know that best to stop where the whole study did.
const PATIENT = [...STUDY, "--d3pm-patience", "3"];

// The uninterrupted study, made once: the tests below compare with it, and
// the one that replaces a study with --force takes a copy of its own.
const uninterrupted = once(async (tempDir) => {
  const whole = await tempDir({ prefix: "epochs-whole-" });
  const first = await runTool("study.ts", [...PATIENT, "--out", whole]);
  assertEquals(first.code, 0, first.stderr);
  return { whole };
});

Deno.test("study epochs --force killed before its first run finishes keeps the earlier study whole in study.replaced-<time>, the report beside its charts", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-kill-" });
  const out = `${tmp}/S`;
  try {
    // A finished study in `out`, as `deno task study` left it.
    const { whole } = await uninterrupted();
    await Deno.rename(await copyFolder(whole), out);
    const before: Record<string, string> = {};
    for (const f of FILES) before[f] = await Deno.readTextFile(`${out}/${f}`);
    assert(before["epochs.jsonl"].split("\n").length > 40);
    // Killed once the earlier epochs.jsonl is gone or emptied: the new
    // study has begun writing.
    await killWhen(
      "study.ts",
      [...PATIENT, "--out", out, "--force"],
      async () => !await size(`${out}/epochs.jsonl`),
    );
    const aside = [...Deno.readDirSync(out)].filter((e) =>
      /^study\.replaced-\d{4}-\d\d-\d\dT[\d-]+Z$/.test(e.name)
    );
    assertEquals(
      aside.length,
      1,
      [...Deno.readDirSync(out)].map((e) => e.name).join(" "),
    );
    for (const f of FILES) {
      assertEquals(
        await Deno.readTextFile(`${out}/${aside[0].name}/${f}`),
        before[f],
        f,
      );
    }
    // Nothing of the earlier study is left to be read as the new one's.
    assertEquals(await size(`${out}/report.md`), undefined);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs interrupted by Ctrl-C after U = 2K: exit 130 with one line of what finished and how to go on; the report names U = 4K not run; a rerun is refused as unfinished", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-int-" });
  const out = `${tmp}/S2`;
  try {
    const r = await killWhen(
      "study.ts",
      [...STUDY, "--out", out],
      async () => await size(`${out}/main-u4000-ar-do0-wd0`) !== undefined,
      { signal: "SIGINT" },
    );
    assertEquals(r.code, 130, r.stderr);
    // The handler let the study's lock go.
    assertEquals(await size(`${out}/.lock`), undefined);
    assertEquals(
      errorLine(r),
      `interrupted: the study in ${out} finished U = 2000 (in epochs.jsonl and report.md) (U = 4000 not run); continue with: deno task study epochs ${
        STUDY.slice(1).join(" ")
      } --out ${out} --resume (the runs finished are kept)`,
    );
    const report = await Deno.readTextFile(`${out}/report.md`);
    assertStringIncludes(
      report,
      "**Unfinished:** U = 4K not run — interrupted or in progress",
    );
    assertStringIncludes(
      report,
      "- U = 4K: not run — interrupted or in progress.",
    );
    assertStringIncludes(report, "| 4K | not run |");
    const again = await runTool("study.ts", [...STUDY, "--out", out]);
    assertEquals(again.code, 1, again.stderr);
    assertStringIncludes(
      errorLine(again),
      `--out ${out} holds an unfinished study (epochs.jsonl: U = 2000 finished, U = 4000 not): pass --resume to continue it`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs --resume after a kill in U = 4K's AR run keeps the runs finished (not trained again) and ends with the epochs.jsonl of an uninterrupted study", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-resume-" });
  const cut = `${tmp}/cut`;
  try {
    const { whole } = await uninterrupted();
    // Killed once U = 4K's AR has logged a validation: mid-run.
    await killWhen(
      "study.ts",
      [...PATIENT, "--out", cut],
      async () =>
        (await Deno.readTextFile(`${cut}/epochs.jsonl`).catch(() => ""))
          .includes('"phase":"main","u":4000,"model":"ar"'),
    );
    const finished = [
      "sweep-u2000-ar-do0-wd0",
      "sweep-u2000-ar-do0.1-wd0",
      "main-u2000-d3pm",
    ];
    const stamp = async () =>
      await Promise.all(
        finished.map((f) =>
          Deno.stat(`${cut}/${f}/metrics.jsonl`).then((i) =>
            `${i.mtime?.getTime()}:${i.size}`
          )
        ),
      );
    const before = await stamp();
    // As a kill mid-append leaves it: a torn last line.
    await Deno.writeTextFile(`${cut}/epochs.jsonl`, '{"study":"epo', {
      append: true,
    });
    // Other sizes than it was begun with: refused, nothing written.
    const other = await runTool("study.ts", [
      ...PATIENT,
      "--tokens",
      "30000",
      "--out",
      cut,
      "--resume",
    ]);
    assertEquals(other.code, 1, other.stderr);
    assertEquals(
      errorLine(other),
      `error: Cannot resume ${cut}: it was begun with --tokens 20000, not --tokens 30000: give the options it was begun with, or run it again from the start with --force (every run retrained)`,
    );
    const r = await runTool("study.ts", [...PATIENT, "--out", cut, "--resume"]);
    assertEquals(r.code, 0, r.stderr);
    for (const f of finished) {
      assertStringIncludes(
        r.stderr,
        `study: ${f}: finished before (its lines in epochs.jsonl): not trained again`,
      );
    }
    assertEquals(await stamp(), before);
    assertEquals(
      await Deno.readTextFile(`${cut}/epochs.jsonl`),
      await Deno.readTextFile(`${whole}/epochs.jsonl`),
    );
    const report = await Deno.readTextFile(`${cut}/report.md`);
    assert(!report.includes("not run"), report);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs interrupted by Ctrl-C while preparing, in a folder it created, removes the folder it left empty", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-int-" });
  const out = `${tmp}/new`;
  try {
    const r = await killWhen(
      "study.ts",
      [...STUDY, "--out", out],
      async () => await size(`${out}/.lock`) !== undefined,
      { signal: "SIGINT" },
    );
    assertEquals(r.code, 130, r.stderr);
    assertEquals(
      errorLine(r),
      `interrupted during preparation: nothing was written to ${out}; run the same command again`,
    );
    assertEquals(await size(out), undefined);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs --resume after a kill mid-run continues that run from its last epoch's checkpoint, not from epoch 0, knowing its best, and ends with the lines and weights of an uninterrupted study", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-mid-" });
  // Its D3PM at U = 2K stops at epoch 9, 3 after its best (epoch 6).
  const args = PATIENT;
  try {
    const { whole } = await uninterrupted();
    const wholeLines = await Deno.readTextFile(`${whole}/epochs.jsonl`);
    // The AR with dropout (its masks from the resumed random stream), 11
    // epochs of 7 steps, killed after its third line (its checkpoint is
    // that of epoch 2 or 3); the D3PM (its times and masks) killed after
    // its seventh (its checkpoint after its best: the resumed run must know
    // it to stop where the whole one did).
    const runs = [
      {
        name: "sweep-u2000-ar-do0.1-wd0",
        kind: "ar",
        key: '"model":"ar","dropout":0.1',
        at: 3,
        last: 11,
      },
      {
        name: "main-u2000-d3pm",
        kind: "d3pm",
        key: '"u":2000,"model":"d3pm"',
        at: 7,
        last: 9,
      },
    ];
    for (const [i, run] of runs.entries()) {
      const ofRun = (text: string) =>
        text.split("\n").filter((l) => l.includes(run.key));
      assertEquals(ofRun(wholeLines).length, run.last, run.name);
      const cut = `${tmp}/cut${i}`;
      const linesOf = async () =>
        ofRun(await Deno.readTextFile(`${cut}/epochs.jsonl`).catch(() => ""));
      await killWhen(
        "study.ts",
        [...args, "--out", cut],
        async () => (await linesOf()).length >= run.at,
      );
      // It was unfinished: fewer lines than the whole run's, no weights.
      const written = (await linesOf()).length;
      assert(
        written >= run.at && written < run.last,
        `${run.name}: ${written} lines`,
      );
      const model = `${cut}/${run.name}/seed-0/${run.kind}`;
      assertEquals(await size(`${model}/model.safetensors`), undefined);
      const { step } = await readCheckpointState(
        `${model}/checkpoint.safetensors`,
      );
      assert(
        step % 7 === 0 && step >= 7 * (run.at - 1) && step < 7 * run.last,
        `step ${step}`,
      );
      const r = await runTool("study.ts", [...args, "--out", cut, "--resume"]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(
        r.stderr,
        `study: ${run.name}: continues from epoch ${
          step / 7
        } of 11 (its checkpoint at step ${step};`,
      );
      assert(!r.stderr.includes("restarts from epoch 0"), r.stderr);
      // Not trained again from its start: nothing was moved aside.
      const aside = [...Deno.readDirSync(cut)].filter((e) =>
        e.name.includes(".replaced-")
      );
      assertEquals(aside.map((e) => e.name), []);
      assertEquals(await Deno.readTextFile(`${cut}/epochs.jsonl`), wholeLines);
      const weights = `${run.name}/seed-0/${run.kind}/model.safetensors`;
      if (await size(`${whole}/${weights}`) !== undefined) {
        assertEquals(
          await Deno.readFile(`${cut}/${weights}`),
          await Deno.readFile(`${whole}/${weights}`),
        );
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs --resume of a study stopped between writing study.json and epochs.jsonl runs it from the start, ending with an uninterrupted study's epochs.jsonl", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-resume-" });
  const cut = `${tmp}/cut`;
  try {
    const { whole } = await uninterrupted();
    // As a Ctrl-C just after study.json was written leaves the folder.
    await Deno.mkdir(cut);
    await Deno.copyFile(`${whole}/study.json`, `${cut}/study.json`);
    const r = await runTool("study.ts", [...PATIENT, "--out", cut, "--resume"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      await Deno.readTextFile(`${cut}/epochs.jsonl`),
      await Deno.readTextFile(`${whole}/epochs.jsonl`),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
