// The serial epochs study resumed mid-run lets go of the run folder's lock
// whatever throws once it holds it — here the emit of a line it replays (the
// interrupted run's earlier epochs, taken as written): the folder is not left
// held by a live process (review fix 7, runOne's finally).
import { assert, assertEquals, assertRejects } from "@std/assert";
import { RunFolder } from "@d3pm/experiment";
import { runEpochsStudy } from "@d3pm/experiment/studies";
import { parseStudyArgs } from "../examples/study_epochs.ts";
import { exists, killWhen, MICRO_EPOCHS_STUDY as STUDY } from "./_run.ts";

class ReplayFailed extends Error {}

Deno.test("study epochs --resume whose replayed line's emit throws lets go of the interrupted run's lock and the study's", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-replay-" });
  const run = "sweep-u2000-ar-do0.1-wd0";
  const key = '"model":"ar","dropout":0.1';
  const log = console.log;
  const error = console.error;
  try {
    const linesOf = async () =>
      (await Deno.readTextFile(`${out}/epochs.jsonl`).catch(() => ""))
        .split("\n").filter((l) => l.includes(key));
    // Killed after the run's third line: its checkpoint is that of epoch 2
    // or 3, and --resume replays its lines up to there before training on.
    await killWhen(
      "study.ts",
      [...STUDY, "--out", out],
      async () => (await linesOf()).length >= 3,
    );
    const parsed = parseStudyArgs([...STUDY.slice(1), "--out", out]);
    if ("help" in parsed) {
      throw new Error("the study's arguments asked for help");
    }
    const { scale, seed } = parsed;
    let thrown: string | undefined;
    // The study's emit prints each line first: the run's first line
    // (epoch 1, a replayed one) is where it throws.
    console.log = (...data: unknown[]) => {
      const line = String(data[0]);
      if (thrown === undefined && line.includes(key)) {
        thrown = line;
        throw new ReplayFailed("stdout went away");
      }
    };
    const said: string[] = [];
    console.error = (...data: unknown[]) => said.push(String(data[0]));
    await assertRejects(
      () =>
        runEpochsStudy({
          scale,
          seed,
          out,
          resume: true,
        }),
      ReplayFailed,
    );
    [console.log, console.error] = [log, error];
    // It threw replaying the run it continued (so under the run's lock,
    // taken once its checkpoint was found) ...
    assert(thrown?.includes('"epoch":1,'), thrown);
    assert(
      said.some((l) => l.startsWith(`study: ${run}: continues from epoch `)),
      said.join("\n"),
    );
    // ... and let go of that lock, and of the study's.
    assertEquals(
      [await exists(`${out}/${run}/.lock`), await exists(`${out}/.lock`)],
      [false, false],
    );
  } finally {
    [console.log, console.error] = [log, error];
    RunFolder.releaseHeld();
    await Deno.remove(out, { recursive: true });
  }
});
