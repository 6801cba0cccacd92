// The epochs study's modes and its folder's locks: --sweep and --collect
// hold <out>/.lock as the serial study does, a cell holds its own folder's
// lock and checks <out>/.lock, and the serial study and --collect refuse a
// folder where a run is live. The "other process" is this test, holding a
// lock as a study or a cell would: each refusal is deterministic.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { RunFolder } from "@d3pm/experiment";
import {
  errorLine,
  exists,
  MICRO_EPOCHS_STUDY as STUDY,
  type Ran,
  ROOT,
  runTool,
} from "./_run.ts";

/** The micro study planned as a sweep into a new folder. */
async function planned(): Promise<{ tmp: string; out: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-modes-" });
  const out = `${tmp}/S`;
  const r = await runTool("study.ts", [...STUDY, "--out", out, "--sweep"]);
  assertEquals(r.code, 0, r.stderr);
  // The plan was written under the study's lock, let go after.
  assertEquals(await exists(`${out}/.lock`), false);
  return { tmp, out };
}

/**
 * A refusal: exit 75 (busy), one stderr line, naming this test's process;
 * `wait`: a step that cannot go elsewhere (a cell, --collect) is told to
 * wait, not to use another --out.
 */
function assertBusy(
  r: Ran,
  start: string,
  lock: string,
  wait = false,
): void {
  assertEquals(r.code, 75, r.stderr);
  assertEquals(errorLine(r).includes("--out DIR"), !wait, errorLine(r));
  assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  assertStringIncludes(
    errorLine(r),
    `error: ${start}is in use by another study or run (pid ${Deno.pid}, `,
  );
  assertStringIncludes(
    errorLine(r),
    `(if no such run is alive, delete ${lock})`,
  );
}

Deno.test("study epochs --cell of a cell that runs is refused in one line naming its holder, while another cell runs beside it", async () => {
  const { tmp, out } = await planned();
  try {
    const held = new RunFolder(`${out}/main-u2000-d3pm`);
    await Deno.mkdir(held.dir);
    const release = await held.lock(); // as that cell's run holds it
    try {
      const again = await runTool("study.ts", [
        "epochs",
        "--out",
        out,
        "--cell",
        "main-u2000-d3pm",
      ]);
      assertBusy(
        again,
        `Cannot run cell main-u2000-d3pm in ${out}: ${held.dir} `,
        held.lockPath,
        true,
      );
      assertEquals(await exists(`${held.dir}/config.json`), false);
      // Two other cells at once beside it: none waits for, or refuses, another.
      const cells = ["sweep-u2000-ar-do0-wd0", "sweep-u2000-ar-do0.1-wd0"];
      const ran = await Promise.all(
        cells.map((cell) =>
          runTool("study.ts", ["epochs", "--out", out, "--cell", cell])
        ),
      );
      for (const [i, r] of ran.entries()) {
        assertEquals(r.code, 0, `${cells[i]}: ${r.stderr}`);
        assert(await exists(`${out}/${cells[i]}/results.json`), cells[i]);
        assertEquals(await exists(`${out}/${cells[i]}/.lock`), false);
      }
    } finally {
      release();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs --cell waits while the study's folder is held and runs once it is let go; held past its wait, it fails (exit 1, not busy 75) naming the holder", async () => {
  const { tmp, out } = await planned();
  try {
    const study = new RunFolder(out);
    // Held past the wait (a serial study's hours): failed, not "busy", so
    // a sweep runner reports it with its log instead of leaving it to a
    // run that will never do it; its own folder not made.
    let release = await study.lock();
    try {
      const r = await runTool("study.ts", [
        "epochs",
        "--out",
        out,
        "--cell",
        "main-u4000-d3pm",
      ], { D3PM_STUDY_WAIT_S: "0.3" });
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(
        errorLine(r),
        `error: Cannot run cell main-u4000-d3pm in ${out}: the study's folder stayed held for 0.3 s `,
      );
      assertStringIncludes(errorLine(r), `(pid ${Deno.pid}, `);
      assertEquals(await exists(`${out}/main-u4000-d3pm`), false);
    } finally {
      release();
    }
    // Held for a moment (a --collect, a re-planned --sweep): the cell waits
    // (it says so), then runs once the lock is let go.
    release = await study.lock();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}examples/study.ts`,
        "epochs",
        "--out",
        out,
        "--cell",
        "main-u4000-d3pm",
      ],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let stderr = "";
    const dec = new TextDecoder();
    const reader = child.stderr.getReader();
    try {
      while (!stderr.includes("main-u4000-d3pm: waiting up to 120 s")) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += dec.decode(value, { stream: true });
      }
    } finally {
      release();
    }
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += dec.decode(value, { stream: true });
    }
    const { code } = await child.status;
    assertEquals(code, 0, stderr);
    assert(await exists(`${out}/main-u4000-d3pm/results.json`), stderr);
    assertEquals(await exists(`${out}/main-u4000-d3pm/.lock`), false);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs --sweep and --collect are refused while the study's folder is held, and the serial study and --collect while a cell runs there, writing nothing", async () => {
  const { tmp, out } = await planned();
  try {
    const plan = await Deno.readTextFile(`${out}/sweep.json`);
    const study = new RunFolder(out);
    const release = await study.lock(); // as a serial study holds it
    try {
      const sweep = await runTool("study.ts", [
        ...STUDY,
        "--out",
        out,
        "--sweep",
      ]);
      assertBusy(
        sweep,
        `Cannot plan the study's sweep in ${out}: ${out} `,
        study.lockPath,
      );
      const collect = await runTool("study.ts", [
        "epochs",
        "--out",
        out,
        "--collect",
      ]);
      assertBusy(
        collect,
        `Cannot collect ${out}: ${out} `,
        study.lockPath,
        true,
      );
    } finally {
      release();
    }
    assertEquals(await Deno.readTextFile(`${out}/sweep.json`), plan);
    // A cell runs (this test holds its folder): a serial study there is
    // refused before it writes anything, and so is a --collect.
    const cell = new RunFolder(`${out}/sweep-u2000-ar-do0-wd0`);
    await Deno.mkdir(cell.dir);
    const releaseCell = await cell.lock();
    try {
      const serial = await runTool("study.ts", [
        ...STUDY,
        "--out",
        out,
        "--force",
      ]);
      assertBusy(
        serial,
        `Cannot run the study in ${out}: ${cell.dir} `,
        cell.lockPath,
      );
      const collect = await runTool("study.ts", [
        "epochs",
        "--out",
        out,
        "--collect",
      ]);
      assertBusy(
        collect,
        `Cannot collect ${out}: ${cell.dir} `,
        cell.lockPath,
        true,
      );
    } finally {
      releaseCell();
    }
    const names = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assertEquals(names, ["logs", "sweep-u2000-ar-do0-wd0", "sweep.json"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the serial study whose next run's folder is held for an instant (a cell refused by the study's lock) tries it again a second later and finishes", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "epochs-modes-" });
  const out = `${tmp}/S`;
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}examples/study.ts`, ...STUDY, "--out", out],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let stderr = "";
    const dec = new TextDecoder();
    const reader = child.stderr.getReader();
    const until = async (text: string) => {
      while (!stderr.includes(text)) {
        const { value, done } = await reader.read();
        if (done) return;
        stderr += dec.decode(value, { stream: true });
      }
    };
    // The first run trains: its successor's folder taken by this test.
    await until("study: sweep-u2000-ar-do0-wd0: ");
    const next = new RunFolder(`${out}/sweep-u2000-ar-do0.1-wd0`);
    await Deno.mkdir(next.dir, { recursive: true });
    const release = await next.lock();
    try {
      await until("trying again in 1 s");
    } finally {
      release();
    }
    await until("\u0000"); // to its end
    const { code } = await child.status;
    assertEquals(code, 0, stderr);
    assertStringIncludes(
      stderr,
      `study: ${next.dir} is in use by another run (pid ${Deno.pid}, `,
    );
    assert(await exists(`${out}/report.md`), stderr);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
