// The serial epochs study's folder (review of --force/--resume, findings
// 1–3): one study at a time holds it, a resume replays only the lines a run
// would write, and continues only on the engine and settings it began with.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  copyFolder,
  errorLine,
  MICRO_EPOCHS_STUDY as STUDY,
  ROOT,
  runTool,
} from "./_run.ts";

/** The whole study's folder, run once for the tests of this file. */
let whole: Promise<string> | undefined;
function wholeStudy(): Promise<string> {
  return whole ??= (async () => {
    const out = await Deno.makeTempDir({ prefix: "epochs-whole-" });
    const r = await runTool("study.ts", [...STUDY, "--out", out]);
    assertEquals(r.code, 0, r.stderr);
    return out;
  })();
}

function names(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

Deno.test("study epochs: a second study, or a --force, in a folder a live study holds is refused (exit 75, naming it) and the first ends as an uninterrupted one", async () => {
  const ref = await wholeStudy();
  const tmp = await Deno.makeTempDir({ prefix: "epochs-lock-" });
  const out = `${tmp}/R`;
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}examples/study.ts`, ...STUDY, "--out", out],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const output = child.output().finally(() => exited = true);
    // The first holds the lock before it judges the folder.
    while (
      !exited && !await Deno.lstat(`${out}/.lock`).then(() => true, () => false)
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert(
      !exited,
      "the first study ended before it was seen holding the lock",
    );
    const lock = await Deno.readTextFile(`${out}/.lock`);
    for (const extra of [[], ["--force"], ["--resume"]]) {
      const second = await runTool("study.ts", [
        ...STUDY,
        "--out",
        out,
        ...extra,
      ]);
      assertEquals(second.code, 75, second.stderr);
      const line = errorLine(second);
      assertStringIncludes(
        line,
        `Cannot run the study in ${out}: ${out} is in use by another study or run (pid ${child.pid}`,
      );
      assertStringIncludes(
        line,
        "--force and --resume do not override a live one",
      );
    }
    assert(
      !exited,
      "the first study ended before the others were refused: nothing was raced",
    );
    assertEquals(await Deno.readTextFile(`${out}/.lock`), lock);
    const first = await output;
    assertEquals(first.code, 0, new TextDecoder().decode(first.stderr));
    assertEquals(
      await Deno.readTextFile(`${out}/epochs.jsonl`),
      await Deno.readTextFile(`${ref}/epochs.jsonl`),
    );
    // Nothing moved aside, no lock left.
    assertEquals(names(out), names(ref));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/**
 * A copy of the whole study with `edit` applied to its epochs.jsonl's
 * lines, resumed: its stderr, and whether it ends with the whole study's
 * epochs.jsonl.
 */
async function resumeEdited(
  edit: (lines: string[]) => string[],
): Promise<{ stderr: string; same: boolean; cut: string }> {
  const ref = await wholeStudy();
  const cut = await copyFolder(ref);
  const path = `${cut}/epochs.jsonl`;
  const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
  await Deno.writeTextFile(path, edit(lines).join("\n") + "\n");
  const r = await runTool("study.ts", [...STUDY, "--out", cut, "--resume"]);
  assertEquals(r.code, 0, r.stderr);
  const same = await Deno.readTextFile(path) ===
    await Deno.readTextFile(`${ref}/epochs.jsonl`);
  return { stderr: r.stderr, same, cut };
}

/** The indices of the last run's (U = 4K's D3PM) lines. */
function lastRun(lines: string[]): number[] {
  return lines.flatMap((l, i) =>
    l.includes('"phase":"main","u":4000,"model":"d3pm"') ? [i] : []
  );
}

const LAST = "study: main-u4000-d3pm: finished before";

Deno.test("study epochs --resume trains again a run whose lines skip an epoch, though they reach its last", async () => {
  const { stderr, same, cut } = await resumeEdited((lines) => {
    const second = lastRun(lines)[1];
    return lines.filter((_, i) => i !== second);
  });
  try {
    assert(!stderr.includes(LAST), stderr);
    assertStringIncludes(stderr, "study: main-u2000-d3pm: finished before");
    assert(same, "epochs.jsonl differs from the uninterrupted study's");
  } finally {
    await Deno.remove(cut, { recursive: true });
  }
});

Deno.test("study epochs --resume trains again a run whose line has another step, or is not the study's, or not a bound", async () => {
  const edits: [string, string][] = [
    ['"step":', '"step":1'],
    ['"study":"epochs"', '"study":"other"'],
    ['"bound":true', '"bound":false'],
  ];
  for (const [from, to] of edits) {
    const { stderr, same, cut } = await resumeEdited((lines) => {
      const at = lastRun(lines)[2];
      lines[at] = lines[at].replace(from, to);
      return lines;
    });
    try {
      assert(!stderr.includes(LAST), `${to}: ${stderr}`);
      assert(
        same,
        `${to}: epochs.jsonl differs from the uninterrupted study's`,
      );
    } finally {
      await Deno.remove(cut, { recursive: true });
    }
  }
});

Deno.test("study epochs --resume refuses a study begun on another engine or from other settings, naming what differs", async () => {
  const ref = await wholeStudy();
  const cut = await copyFolder(ref);
  try {
    const path = `${cut}/study.json`;
    const record = JSON.parse(await Deno.readTextFile(path));
    const cases: [Record<string, unknown>, string][] = [
      [
        { ...record, engine: "webgpu" },
        `error: Cannot resume ${cut}: it ran on the webgpu engine, and this one would train on ${record.engine}: resume it with --engine webgpu, or where auto picks webgpu, or run it again from the start with --force (every run retrained)`,
      ],
      [
        { ...record, base: { ...record.base, lr: 0.001 } },
        `error: Cannot resume ${cut}: its runs started from lr 0.001, and this process's from lr ${record.base.lr} (the preset or its settings changed since): run it again from the start with --force (every run retrained)`,
      ],
      [
        { scale: record.scale, seed: record.seed },
        `error: Cannot resume ${cut}: its study.json records no engine or settings (written before they were recorded), so whether this one would continue its runs cannot be told; run it again from the start with --force (every run retrained)`,
      ],
    ];
    const before = await Deno.readTextFile(`${cut}/epochs.jsonl`);
    for (const [edited, line] of cases) {
      await Deno.writeTextFile(path, JSON.stringify(edited) + "\n");
      const r = await runTool("study.ts", [...STUDY, "--out", cut, "--resume"]);
      assertEquals(r.code, 1, r.stderr);
      assertEquals(errorLine(r), line);
      assertEquals(await Deno.readTextFile(`${cut}/epochs.jsonl`), before);
    }
  } finally {
    await Deno.remove(cut, { recursive: true });
  }
});

Deno.test("study epochs --resume continues a study whose study.json was written before --lr-final and --adam-beta2 existed (their older runs' values)", async () => {
  const ref = await wholeStudy();
  const cut = await copyFolder(ref);
  try {
    const path = `${cut}/study.json`;
    const record = JSON.parse(await Deno.readTextFile(path));
    const { lrFinal: _, adamBeta2: __, ...older } = record.base;
    await Deno.writeTextFile(
      path,
      JSON.stringify({ ...record, base: older }) + "\n",
    );
    const r = await runTool("study.ts", [...STUDY, "--out", cut, "--resume"]);
    assertEquals(r.code, 0, r.stderr);
  } finally {
    await Deno.remove(cut, { recursive: true });
  }
});

Deno.test("study epochs --resume compares AdamW's β2 as the runs trained with it: --adam-beta2 naming the β2 a study began with (given or not) continues it, another is refused naming both", async () => {
  const ref = await wholeStudy();
  const cut = await copyFolder(ref);
  try {
    const record = JSON.parse(await Deno.readTextFile(`${cut}/study.json`));
    // Begun without --adam-beta2 (as every study before it existed).
    assertEquals(record.scale.adamBeta2, undefined);
    const beta2 = record.base.adamBeta2;
    const same = await runTool("study.ts", [
      ...STUDY,
      ...["--out", cut, "--resume", "--adam-beta2", String(beta2)],
    ]);
    assertEquals(same.code, 0, same.stderr);
    const other = await runTool("study.ts", [
      ...STUDY,
      ...["--out", cut, "--resume", "--adam-beta2", "0.9"],
    ]);
    assertEquals(other.code, 1, other.stderr);
    assertEquals(
      errorLine(other),
      `error: Cannot resume ${cut}: it was begun with --adam-beta2 ${beta2}, not --adam-beta2 0.9: give the options it was begun with, or run it again from the start with --force (every run retrained)`,
    );
  } finally {
    await Deno.remove(cut, { recursive: true });
  }
});

Deno.test("study epochs --resume of a study begun with engine auto accepts --engine naming the engine it ran on, and refuses another naming it", async () => {
  const ref = await wholeStudy();
  const cut = await copyFolder(ref);
  try {
    const record = JSON.parse(await Deno.readTextFile(`${cut}/study.json`));
    assertEquals(record.scale.engine, undefined); // begun with auto
    const other = record.engine === "tfjs" ? "cpu" : "tfjs";
    const before = await Deno.readTextFile(`${cut}/epochs.jsonl`);
    const refused = await runTool("study.ts", [
      ...STUDY,
      ...["--out", cut, "--resume", "--engine", other],
    ]);
    assertEquals(refused.code, 1, refused.stderr);
    assertEquals(
      errorLine(refused),
      `error: Cannot resume ${cut}: it was begun with --engine unset and ran on the ${record.engine} engine, not --engine ${other}: resume it with --engine ${record.engine}, or where auto picks ${record.engine}, or run it again from the start with --force (every run retrained)`,
    );
    const r = await runTool("study.ts", [
      ...STUDY,
      ...["--out", cut, "--resume", "--engine", record.engine],
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(r.stderr, LAST);
    assertEquals(await Deno.readTextFile(`${cut}/epochs.jsonl`), before);
  } finally {
    await Deno.remove(cut, { recursive: true });
  }
});

Deno.test("study epochs: an unfinished study without study.json is not told to --resume; the U judged finished are the study's own", async () => {
  const ref = await wholeStudy();
  const cut = await copyFolder(ref);
  try {
    // The study's own U: a command with more U still finds it finished.
    const more = await runTool("study.ts", [
      ...STUDY.map((a) => a === "2000,4000" ? "2000,4000,8000" : a),
      "--out",
      cut,
    ]);
    assertEquals(more.code, 1, more.stderr);
    assertEquals(
      errorLine(more),
      `error: --out ${cut} already holds a study (epochs.jsonl): pass --force to run the study again there (epochs.jsonl, the report and charts are moved aside to study.replaced-<time>, its run folders beside themselves), or choose another --out`,
    );
    // Begun before --resume: no study.json, the last U unfinished.
    await Deno.remove(`${cut}/study.json`);
    const lines = (await Deno.readTextFile(`${cut}/epochs.jsonl`)).trimEnd()
      .split("\n");
    await Deno.writeTextFile(
      `${cut}/epochs.jsonl`,
      lines.slice(0, lastRun(lines)[0]).join("\n") + "\n",
    );
    const r = await runTool("study.ts", [...STUDY, "--out", cut]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(
      errorLine(r),
      `error: --out ${cut} holds an unfinished study (epochs.jsonl: U = 2000 finished, U = 4000 not): it was begun before --resume (no study.json): pass --force to run it again from the start (every run is retrained; epochs.jsonl, the report and charts are moved aside to study.replaced-<time>, its run folders beside themselves), or choose another --out`,
    );
    // A study.json that cannot be read is named so, not taken for none.
    await Deno.writeTextFile(`${cut}/study.json`, "{");
    const bad = await runTool("study.ts", [...STUDY, "--out", cut]);
    assertEquals(bad.code, 1, bad.stderr);
    assertStringIncludes(
      errorLine(bad),
      `error: --out ${cut} holds an unfinished study (epochs.jsonl: U = 2000 finished, U = 4000 not): its study.json cannot be read (${cut}/study.json is not valid JSON`,
    );
    assertStringIncludes(
      errorLine(bad),
      "), so it cannot be resumed: pass --force to run it again from the start",
    );
  } finally {
    await Deno.remove(cut, { recursive: true });
  }
});

Deno.test("study epochs refuses a folder holding the study's file names but no study, moving nothing", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-strangers-" });
  try {
    await Deno.writeTextFile(`${out}/report.md`, "mine\n");
    await Deno.writeTextFile(`${out}/study.json`, "{}\n");
    const r = await runTool("study.ts", [...STUDY, "--out", out]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(
      errorLine(r),
      `error: --out ${out} holds study.json, report.md but no study (no results in epochs.jsonl, no sweep.json, no study.json with its sizes): the study would write over them; move them away, pass --force to move them aside to study.replaced-<time>, or choose another --out`,
    );
    assertEquals(names(out), ["report.md", "study.json"]);
    assertEquals(await Deno.readTextFile(`${out}/report.md`), "mine\n");
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("study epochs --resume reports the wall time of the earlier processes and its own", async () => {
  const ref = await wholeStudy();
  const cut = await copyFolder(ref);
  try {
    const path = `${cut}/study.json`;
    const record = JSON.parse(await Deno.readTextFile(path));
    assert(record.seconds > 0 && record.seconds < 600, String(record.seconds));
    await Deno.writeTextFile(
      path,
      JSON.stringify({ ...record, seconds: 6000 }) + "\n",
    );
    const r = await runTool("study.ts", [...STUDY, "--out", cut, "--resume"]);
    assertEquals(r.code, 0, r.stderr);
    assertStringIncludes(
      await Deno.readTextFile(`${cut}/report.md`),
      "Wall time so far: 100.",
    );
    assertStringIncludes(errorLine(r), "/report.md (100.");
    assert(JSON.parse(await Deno.readTextFile(path)).seconds >= 6000);
  } finally {
    await Deno.remove(cut, { recursive: true });
  }
});

Deno.test("(cleanup) the whole study the tests above share is removed", async () => {
  if (whole) await Deno.remove(await whole, { recursive: true });
});
