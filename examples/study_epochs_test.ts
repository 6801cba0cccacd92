import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { UsageError } from "@d3pm/cli";
import { ConfigError, FOLDER_BUSY_EXIT, saveSweep } from "@d3pm/experiment";
import { epochsSweep, studyBase } from "@d3pm/experiment/studies";
import { parseStudyArgs, plannedStudy, studyEpochs } from "./study_epochs.ts";

Deno.test("parseStudyArgs() takes the scale's sizes and overrides them", () => {
  const p = parseStudyArgs(["--u", "40000,10000", "--tokens", "5000"]);
  if ("help" in p) throw new Error("parsed as --help");
  assertEquals(p.scale.u, [10000, 40000]);
  assertEquals(p.scale.tokens, 5000);
  assertEquals(p.scale.preset, "tiny");
  assertEquals(p.out, "runs/study-epochs");
  const gpu = parseStudyArgs(["--scale", "gpu"]);
  assert(!("help" in gpu) && gpu.scale.preset === "small");
  assertEquals(parseStudyArgs(["--help"]), { help: true });
  assertEquals(parseStudyArgs(["-h"]), { help: true });
});

Deno.test("--adam-beta2 reaches every run of the study and its cells' arguments; without it, the settings' β2", () => {
  // The preset figures of 2026-12-05/06 were made at β2 0.95, before the
  // tiny preset moved to 0.999: they reproduce with --adam-beta2 0.95.
  const then = parseStudyArgs(["--settings", "preset", "--adam-beta2", "0.95"]);
  if ("help" in then) throw new Error("parsed as --help");
  assertEquals(studyBase(then.scale).adamBeta2, 0.95);
  const at = then.args.indexOf("--adam-beta2");
  assertEquals(then.args.slice(at, at + 2), ["--adam-beta2", "0.95"]);
  const back = parseStudyArgs(then.args);
  assert(!("help" in back) && studyBase(back.scale).adamBeta2 === 0.95);
  const today = parseStudyArgs(["--settings", "preset"]);
  if ("help" in today) throw new Error("parsed as --help");
  assert(!today.args.includes("--adam-beta2"));
  assertEquals(studyBase(today.scale).adamBeta2, 0.999);
  const pinned = parseStudyArgs([]);
  assert(!("help" in pinned) && studyBase(pinned.scale).adamBeta2 === 0.95);
  assertThrows(
    () => parseStudyArgs(["--adam-beta2", "1"]),
    UsageError,
    "--adam-beta2",
  );
});

Deno.test("parseStudyArgs() names the bad option and what it accepts", () => {
  const bad: [string[], string][] = [
    [["--scale", "huge"], 'Option --scale must be one of cpu, gpu, got "huge"'],
    [
      ["--u", "10k"],
      'Option --u must be comma-separated whole numbers written in digits ≥ 2, each at most the train split\'s tokens (the study names its bounds), got "10k"',
    ],
    [["--u", "1e4"], "Option --u must be comma-separated whole numbers"],
    [["--u", "2.5,10"], "Option --u must be comma-separated whole numbers"],
    [["--u", "100,"], "Option --u must be comma-separated whole numbers"],
    [["--dropouts", "0.1,"], "Option --dropouts must be comma-separated"],
    [
      ["--dropouts", "1.5"],
      "Option --dropouts must be comma-separated numbers in [0, 0.99]",
    ],
    [["--patience", "0"], "Option --patience must be a positive integer"],
    [["--seed", "x"], "Option --seed must be an integer ≥ 0"],
    [
      ["--preset", "huge"],
      "Option --preset must be one of micro, tiny, small, paper",
    ],
    [["--stepz", "3"], "Unknown option --stepz: accepted options are --scale"],
    // A value given twice would train the same run twice (by value).
    [
      ["--u", "2000,2000"],
      'Option --u lists 2000 twice, got "2000,2000": each value is one run; give it once',
    ],
    [["--dropouts", "0,0.0"], "Option --dropouts lists 0 twice"],
    [["--decays", "0.1,0.10"], "Option --decays lists 0.1 twice"],
  ];
  for (const [argv, message] of bad) {
    assertThrows(() => parseStudyArgs(argv), UsageError, message);
  }
});

Deno.test("studyArgs() spell out a study that parseStudyArgs() reads back as it was: each cell runs the planned sizes", () => {
  const given = [
    "--scale",
    "gpu",
    "--u",
    "300,100",
    "--tokens",
    "7000",
    "--preset",
    "micro",
    "--dropouts",
    "0,0.3",
    "--decays",
    "0.2",
    "--patience",
    "3",
    "--valid-blocks",
    "5",
    "--seed",
    "4",
    "--out",
    "runs/x/",
    "--sweep",
  ];
  const p = parseStudyArgs(given);
  if ("help" in p) throw new Error("parsed as --help");
  assertEquals(p.sweep, true);
  const back = parseStudyArgs([...p.args, "--cell", "main-u300-ar"]);
  if ("help" in back) throw new Error("parsed as --help");
  assertEquals(back.scale, p.scale);
  assertEquals(back.scale.batchSize, 32); // the gpu scale's
  assertEquals([back.seed, back.out, back.cell], [4, "runs/x", "main-u300-ar"]);
  assertEquals(back.sweep, false);
  assertThrows(
    () => parseStudyArgs(["--sweep", "--collect"]),
    UsageError,
    "Options --sweep and --collect do not go together",
  );
});

Deno.test("parseStudyArgs() with --settings preset takes the preset's batch size unless --batch-size is given; --engine is kept; both read back from the cell's arguments", () => {
  const p = parseStudyArgs(["--settings", "preset", "--engine", "cpu"]);
  if ("help" in p) throw new Error("parsed as --help");
  assertEquals(
    [p.scale.settings, p.scale.engine, p.scale.batchSize],
    ["preset", "cpu", 4], // the tiny preset's batch
  );
  const back = parseStudyArgs([...p.args, "--cell", "main-u10000-d3pm"]);
  if ("help" in back) throw new Error("parsed as --help");
  assertEquals(back.scale, p.scale);
  const pinned = parseStudyArgs([]);
  if ("help" in pinned) throw new Error("parsed as --help");
  assertEquals(
    [pinned.scale.settings, pinned.scale.engine, pinned.scale.batchSize],
    ["pinned", undefined, 8], // the cpu scale's, as measured
  );
  const sized = parseStudyArgs(["--settings", "preset", "--batch-size", "6"]);
  assert(!("help" in sized) && sized.scale.batchSize === 6);
  assertThrows(
    () => parseStudyArgs(["--settings", "today"]),
    UsageError,
    'Option --settings must be one of pinned, preset, got "today"',
  );
  assertThrows(
    () => parseStudyArgs(["--engine", "gpu"]),
    UsageError,
    "Option --engine must be one of auto, tfjs, webgpu, cpu",
  );
});

Deno.test("parseStudyArgs() reads --d3pm-patience, and a cell's arguments carry it only when given", () => {
  const p = parseStudyArgs(["--d3pm-patience", "10"]);
  if ("help" in p) throw new Error("parsed as --help");
  assertEquals(p.scale.d3pmPatience, 10);
  assert(p.args.join(" ").includes("--d3pm-patience 10"));
  const back = parseStudyArgs([...p.args, "--cell", "main-u10000-d3pm"]);
  assert(!("help" in back) && back.scale.d3pmPatience === 10);
  const none = parseStudyArgs([]);
  if ("help" in none) throw new Error("parsed as --help");
  assertEquals(none.scale.d3pmPatience, undefined);
  assert(!none.args.includes("--d3pm-patience"));
  assertThrows(
    () => parseStudyArgs(["--d3pm-patience", "0"]),
    UsageError,
    "Option --d3pm-patience must be a positive integer",
  );
});

Deno.test("plannedStudy(): --collect and --cell take the plan in OUT/sweep.json, and refuse an option that contradicts it in one line", async () => {
  const out = await Deno.makeTempDir({ prefix: "epochs-plan-" });
  const parse = (argv: string[]) => {
    const p = parseStudyArgs([...argv, "--out", out]);
    if ("help" in p) throw new Error("parsed as --help");
    return p;
  };
  try {
    // The reviewer's micro plan.
    const plan = parse([
      "--preset",
      "micro",
      "--u",
      "4000,8000",
      "--tokens",
      "16000",
      "--dropouts",
      "0,0.1",
      "--decays",
      "0.1",
      "--valid-blocks",
      "8",
    ]);
    // No plan yet: the options given.
    assertEquals(
      (await plannedStudy(parse(["--collect"]))).scale.preset,
      "tiny",
    );
    await saveSweep(epochsSweep({ ...plan, args: plan.args }));
    // Only the folder: the plan's sizes and seed.
    const bare = await plannedStudy(parse(["--collect"]));
    assertEquals([bare.scale, bare.seed], [plan.scale, 0]);
    // The options the plan has, however written, and the sweep's own
    // cell command lines.
    for (
      const same of [
        ["--collect", "--tokens", "16000", "--u", "8000,4000"],
        ["--collect", "--dropouts", "0,0.10", "--seed", "0"],
        [...plan.args, "--cell", "main-u8000-ar"],
      ]
    ) {
      assertEquals((await plannedStudy(parse(same))).scale, plan.scale);
    }
    const contradicting: [string[], string][] = [
      [["--collect", "--preset", "tiny"], "--preset tiny", "--preset micro"],
      [
        ["--collect", "--tokens", "999999"],
        "--tokens 999999",
        "--tokens 16000",
      ],
      [
        ["--collect", "--valid-blocks", "99"],
        "--valid-blocks 99",
        "--valid-blocks 8",
      ],
      [["--collect", "--seed", "7"], "--seed 7", "--seed 0"],
      [["--collect", "--batch-size", "4"], "--batch-size 4", "--batch-size 8"],
      [["--collect", "--engine", "cpu"], "--engine cpu", "no --engine"],
      [
        ["--cell", "main-u4000-d3pm", "--tokens", "4000"],
        "--tokens 4000",
        "--tokens 16000",
      ],
    ].map(([argv, mine, theirs]) => [
      argv as string[],
      `Option ${mine} contradicts the study's plan in ${out}/sweep.json (${theirs}): leave it out, ${
        (argv as string[])[0]
      } takes the plan's`,
    ]);
    for (const [argv, message] of contradicting) {
      await assertRejects(
        () => plannedStudy(parse(argv)),
        ConfigError,
        message,
      );
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("parseStudyArgs() takes --force and --resume only for the serial study, and not together", () => {
  const p = parseStudyArgs(["--force"]);
  assert(!("help" in p) && p.force && !p.resume);
  const r = parseStudyArgs(["--resume"]);
  assert(!("help" in r) && r.resume && !r.force);
  for (const flag of ["--force", "--resume"]) {
    for (const mode of [["--sweep"], ["--collect"], ["--cell", "x"]]) {
      assertThrows(
        () => parseStudyArgs([...mode, flag]),
        UsageError,
        `Option ${flag} applies only to the serial study (without --sweep, --cell or --collect): leave it out`,
      );
    }
  }
  assertThrows(
    () => parseStudyArgs(["--force", "--resume"]),
    UsageError,
    "Options --force and --resume do not go together: --resume continues the study in --out, --force runs it again from the start",
  );
});

Deno.test("study epochs --sweep refuses, writing nothing, a --u below one batch and a --tokens below one epoch of the largest U, as its cells would", async () => {
  const tmp = await Deno.makeTempDir();
  const out = `${tmp}/plan`;
  const sweep = (...argv: string[]) =>
    studyEpochs(["--preset", "micro", ...argv, "--out", out, "--sweep"]);
  try {
    // micro: blocks of 32, batch 8: one batch is 256 tokens; at U = 4000,
    // 125 blocks, 15 steps an epoch, 3840 tokens.
    await assertRejects(
      () => sweep("--u", "100,4000", "--tokens", "10"),
      ConfigError,
      "Option --u 100 gives 3 blocks of 32, fewer than one batch of 8: --u takes at least 256 here",
    );
    await assertRejects(
      () => sweep("--u", "300,4000", "--tokens", "3839"),
      ConfigError,
      "Option --tokens 3839 is less than one epoch at U = 4000 (15 steps of 8 blocks of 32): --tokens takes at least 3840 here",
    );
    await assertRejects(() => Deno.lstat(out), Deno.errors.NotFound);
    // One epoch of the largest U is enough (less than one of the others is
    // not asked: each U's epoch is at most the largest's).
    await sweep("--u", "300,4000", "--tokens", "3840");
    assertEquals((await Deno.lstat(`${out}/sweep.json`)).isFile, true);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("study epochs --sweep takes over the lock a killed study left, and is refused (exit 75, naming it) while a live process holds the folder", async () => {
  const out = await Deno.makeTempDir();
  const sweep = () =>
    studyEpochs([
      "--preset",
      "micro",
      "--u",
      "2000,4000",
      "--out",
      out,
      "--sweep",
    ]);
  try {
    // This process's, written by hand: live, as a serial study's would be.
    const live = JSON.stringify({ pid: Deno.pid });
    await Deno.writeTextFile(`${out}/.lock`, live);
    const refused = await sweep().catch((e) => e);
    assert(refused instanceof ConfigError, String(refused));
    assertEquals(refused.exitCode, FOLDER_BUSY_EXIT);
    assertEquals(
      refused.message,
      `Cannot plan the study's sweep in ${out}: ${out} is in use by another study or run (pid ${Deno.pid}); wait for it, or use --out DIR (if no such run is alive, delete ${out}/.lock)`,
    );
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name), [".lock"]);
    assertEquals(await Deno.readTextFile(`${out}/.lock`), live);
    // As a SIGKILLed study leaves it: a pid no process has (above pid_max).
    await Deno.writeTextFile(`${out}/.lock`, JSON.stringify({ pid: 4194304 }));
    await sweep();
    assertEquals(
      [...Deno.readDirSync(out)].map((e) => e.name).sort(),
      ["logs", "sweep.json"],
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
