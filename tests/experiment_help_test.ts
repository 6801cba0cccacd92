// `deno task experiment --help` and `--help all`, as a user runs them: every
// option of the one table once, under the headings of OPTION_GROUPS.
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { flagOf } from "@d3pm/cli";
import { OPTION_GROUPS, OPTIONS, SWEEP_OWNED } from "@d3pm/experiment";
import { runScript, runTool } from "./_run.ts";

/** Each `HEADING options:` section of a help text with the flags under it. */
function sections(text: string): { heading: string; flags: string[] }[] {
  const out: { heading: string; flags: string[] }[] = [];
  let open = false;
  for (const line of text.split("\n")) {
    const heading = /^(\S.*) options:$/.exec(line);
    if (heading) {
      out.push({ heading: heading[1], flags: [] });
      open = true;
    } else if (line.trim() === "") open = false;
    else if (open) {
      const flag = /^ {2}--([\w-]+)/.exec(line);
      if (flag) out.at(-1)!.flags.push(flag[1]);
    }
  }
  return out;
}

/** The flags listed more than once, and those of `want` not listed. */
function tally(listed: string[], want: string[]) {
  return {
    twice: listed.filter((f, i) => listed.indexOf(f) !== i),
    missing: want.filter((f) => !listed.includes(f)),
    unknown: listed.filter((f) => !want.includes(f)),
  };
}

const ALL = Object.keys(OPTIONS).map(flagOf);

Deno.test("the option groups are each non-empty, and every option names one of them", () => {
  const used = new Set(Object.values(OPTIONS).map((o) => o.group));
  assertEquals(
    Object.keys(OPTION_GROUPS).filter((g) => !used.has(g as never)),
    [],
  );
  assertEquals([...used].filter((g) => !(g in OPTION_GROUPS)), []);
});

Deno.test("deno task experiment --help all lists every option exactly once, under the groups' headings in order", async () => {
  const r = await runTool("experiment.ts", ["--help", "all"]);
  assertEquals(r.code, 0, r.stderr);
  const found = sections(r.stdout);
  assertEquals(found.map((s) => s.heading), Object.values(OPTION_GROUPS));
  for (const s of found) assert(s.flags.length > 0, `${s.heading}: no options`);
  assertEquals(tally(found.flatMap((s) => s.flags), ALL), {
    twice: [],
    missing: [],
    unknown: [],
  });
  // Each option under its own group's heading.
  assertOwnGroups(found);
  assertEquals(r.stdout.includes("options shown"), false);
});

Deno.test("deno task experiment --help lists the common options exactly once and names --help all", async () => {
  const r = await runTool("experiment.ts", ["--help"]);
  assertEquals(r.code, 0, r.stderr);
  const common = Object.entries(OPTIONS).filter(([, o]) =>
    "common" in o && o.common
  ).map(([k]) => flagOf(k));
  assert(common.length >= 8 && common.length < ALL.length / 2, `${common}`);
  assertEquals(
    tally(sections(r.stdout).flatMap((s) => s.flags), common),
    { twice: [], missing: [], unknown: [] },
  );
  assertStringIncludes(
    r.stdout,
    `${common.length} of ${ALL.length} options shown; deno task experiment --help all lists every one.`,
  );
  assert(r.stdout.split("\n").length < 100, "the short help is short");
});

/** The sweep's own options (examples/sweep.ts), its first help group. */
const SWEEP_OWN = [
  "dir",
  "seeds",
  "set",
  "on",
  "jobs",
  "dry-run",
  "partition",
  "time",
  "cpus-per-task",
  "gpus",
  "parallel",
  "sbatch",
  "wait",
  "deno",
];

Deno.test("deno task sweep --help all lists its own options under Sweep, then every experiment option it passes on under the experiment's groups, each once", async () => {
  const r = await runTool("sweep.ts", ["--help", "all"]);
  assertEquals(r.code, 0, r.stderr);
  const found = sections(r.stdout);
  assertEquals(found.map((s) => s.heading), [
    "Sweep",
    ...Object.values(OPTION_GROUPS),
  ]);
  assertEquals(found[0].flags, SWEEP_OWN);
  const passed = Object.keys(OPTIONS)
    .filter((k) => !(SWEEP_OWNED as readonly string[]).includes(k))
    .map(flagOf);
  assertEquals(
    tally(found.flatMap((s) => s.flags), [...SWEEP_OWN, ...passed]),
    {
      twice: [],
      missing: [],
      unknown: [],
    },
  );
  assertOwnGroups(found.slice(1));
  assertEquals(r.stdout.includes("options shown"), false);
});

Deno.test("deno task sweep --help lists its own options and the experiment's common ones it passes on, and names --help all", async () => {
  const r = await runTool("sweep.ts", ["--help"]);
  assertEquals(r.code, 0, r.stderr);
  const found = sections(r.stdout);
  assertEquals(found[0], { heading: "Sweep", flags: SWEEP_OWN });
  const common = Object.entries(OPTIONS).filter(([k, o]) =>
    "common" in o && o.common &&
    !(SWEEP_OWNED as readonly string[]).includes(k)
  ).map(([k]) => flagOf(k));
  assertEquals(
    tally(found.slice(1).flatMap((s) => s.flags), common),
    { twice: [], missing: [], unknown: [] },
  );
  assertStringIncludes(r.stdout, "deno task sweep --help all lists every one.");
  assert(r.stdout.split("\n").length < 120, "the short help is short");
});

Deno.test("deno task experiment --help names data.json among the run folder's files, and no example reaches for the GPU through --backend (tfjs only) but through --engine", async () => {
  const r = await runTool("experiment.ts", ["--help"]);
  assertEquals(r.code, 0, r.stderr);
  const summary = r.stdout.split(/\n\S.* options:\n/)[0].replace(/\s+/g, " ");
  for (const file of ["config.json", "data.json", "metrics.jsonl"]) {
    assertStringIncludes(summary, ` ${file}`);
  }
  const examples = r.stdout.split("Examples:\n")[1].split("\n\n")[0]
    .split("\n").filter((l) => l.includes("deno task experiment"));
  for (const line of examples) {
    assert(
      !line.includes("--backend") || line.includes("--engine tfjs"),
      `--backend without --engine tfjs: ${line}`,
    );
  }
  const paper = examples.find((l) => l.includes("--preset paper"));
  assertStringIncludes(paper ?? "", "--engine webgpu");
});

/** Each experiment option listed under its own group's heading. */
function assertOwnGroups(found: { heading: string; flags: string[] }[]): void {
  for (const s of found) {
    for (const flag of s.flags) {
      const key = Object.keys(OPTIONS).find((k) => flagOf(k) === flag)!;
      assertEquals(
        OPTION_GROUPS[OPTIONS[key as keyof typeof OPTIONS].group],
        s.heading,
        flag,
      );
    }
  }
}

Deno.test("deno task experiment --help's summary is wrapped within 80 columns and gives the speed's batch as --gen-batch's, not a fixed 4; bench:cpu --help names the cpu-engine row", async () => {
  const r = await runTool("experiment.ts", ["--help"]);
  assertEquals(r.code, 0, r.stderr);
  const summary = r.stdout.split("\nDefaults below")[0];
  const wide = summary.split("\n").filter((l) => [...l].length > 80);
  assertEquals(wide, []);
  const flat = summary.replace(/\s+/g, " ");
  assertStringIncludes(
    flat,
    "tokens/s at --gen-batch rows a batch, default 4)",
  );
  assert(!flat.includes("at batch size 4"), flat);
  const cpu = await runScript("bench/cpu.ts", ["--help"], 60_000);
  assertEquals(cpu.code, 0, cpu.stderr);
  const about = cpu.stdout.split("\nOptions:")[0];
  assertEquals(about.split("\n").filter((l) => [...l].length > 80), []);
  for (const row of ["cpu-engine:", "tfjs-blas", "cpu-kernels", "pytorch"]) {
    assertStringIncludes(about.replace(/\s+/g, " "), row);
  }
});

Deno.test("deno task study adaptation --help fits every line, its examples included, within 80 columns", async () => {
  const r = await runTool("study.ts", ["adaptation", "--help"]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stdout, "deno task study adaptation --collect");
  assertEquals(r.stdout.split("\n").filter((l) => [...l].length > 80), []);
});
