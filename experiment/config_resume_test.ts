// What a resume may change, and how an older run's config.json reads,
// against lists written out here: configDiff() and trainingFingerprint()
// tried on a change of every single option.

import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  configDiff,
  ConfigError,
  type ExperimentConfig,
  resolveConfig,
  RunFolder,
  trainingFingerprint,
} from "./mod.ts";

// Options that steer the process, not what is trained or measured.
const RESUMABLE = ["backend", "logEvery", "out", "resume", "force"];

// Options added after runs had been made, with the value those runs used.
const OLDER_RUNS: Record<string, unknown> = {
  firstSeed: 0,
  alibi: 0,
  alibiMode: "symmetric",
  lrFinal: 0.1,
  adamBeta2: 0.95,
  fullMaskShare: 0,
  initFrom: "",
  annealSteps: 0,
  shift: false,
  stagger: 0,
  staggerSpan: 4,
  bd3Block: 4,
  genSamples: 0,
};

// Another value of the same type (validity does not matter here).
const other = (v: unknown) =>
  typeof v === "number" ? v + 1 : typeof v === "boolean" ? !v : `${v}-other`;

Deno.test("configDiff() and trainingFingerprint(): a change of any one option forbids a resume unless the option is resumable", () => {
  const saved = resolveConfig({ preset: "micro" });
  const fingerprint = JSON.stringify(trainingFingerprint(saved));
  for (const key of Object.keys(saved) as (keyof ExperimentConfig)[]) {
    const now = { ...saved, [key]: other(saved[key]) } as ExperimentConfig;
    const diff = configDiff(saved, now);
    const same = JSON.stringify(trainingFingerprint(now)) === fingerprint;
    if (RESUMABLE.includes(key)) {
      assertEquals(diff, "", key);
      assert(same, `${key} changes the fingerprint`);
    } else {
      assert(diff.startsWith(`--`) && !diff.includes(";"), `${key}: ${diff}`);
      assert(!same, `${key} leaves the fingerprint`);
    }
  }
});

Deno.test("configDiff(): a key an older config.json lacks reads as the value older runs used; a key it has keeps its own value", () => {
  const now = resolveConfig({ preset: "micro" });
  for (const [key, old] of Object.entries(OLDER_RUNS)) {
    const { [key]: _, ...older } = now as Record<string, unknown>;
    // Absent in the saved file: the older runs' value.
    assertEquals(
      configDiff(older, { ...now, [key]: old } as ExperimentConfig),
      "",
      key,
    );
    assert(
      configDiff(older, { ...now, [key]: other(old) } as ExperimentConfig)
        .includes(`but the run used ${JSON.stringify(old)}`),
      key,
    );
    // Saved with a value of its own: that value, not the older runs'.
    const changed = { ...now, [key]: other(old) } as ExperimentConfig;
    assertEquals(configDiff(changed, changed), "", `${key} saved`);
  }
  // A key neither saved nor added later is a difference, not a match.
  const { steps: _, ...noSteps } = now;
  assert(configDiff(noSteps, now).startsWith("--steps is 800"));
});

Deno.test("a resume refused only because the tiny preset's β2 moved since the run began says which flag continues it; any other difference does not", async () => {
  const out = await Deno.makeTempDir();
  try {
    const now = resolveConfig({ preset: "tiny", out, resume: true });
    // An older run's config.json: no adamBeta2 (it reads as 0.95).
    const older: Record<string, unknown> = { ...now, resume: false };
    delete older.adamBeta2;
    await Deno.writeTextFile(`${out}/config.json`, JSON.stringify(older));
    await assertRejects(
      () => new RunFolder(out).check(now),
      ConfigError,
      "--adam-beta2 is 0.999 but the run used 0.95 (the tiny preset's --adam-beta2 moved since this run began: pass --adam-beta2 0.95 to continue it, or start a new run",
    );
    // With it, the run continues.
    await new RunFolder(out).check({ ...now, adamBeta2: 0.95 });
    // Another change as well: the flag alone would not continue it.
    const e = await assertRejects(
      () => new RunFolder(out).check({ ...now, steps: 5 }),
      ConfigError,
    );
    assert(!e.message.includes("moved since"), e.message);
    // A value the preset never held: not the preset's move.
    await Deno.writeTextFile(
      `${out}/config.json`,
      JSON.stringify({ ...older, adamBeta2: 0.9 }),
    );
    const other = await assertRejects(
      () => new RunFolder(out).check(now),
      ConfigError,
    );
    assert(!other.message.includes("moved since"), other.message);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
