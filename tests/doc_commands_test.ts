// tools/check_doc_commands.ts, the `deno task ok` check that every
// `deno task …` command the Markdown files quote names a task and only flags
// and values the task accepts: over the repository, over planted stale
// commands and commands that hold, and over a real doc with a flag renamed.
import { assert, assertEquals } from "@std/assert";
import { extractCommands, parseHelp } from "../tools/check_doc_commands.ts";
import { usageText } from "@d3pm/cli";
import { ROOT, runScript } from "./_run.ts";

const FIXTURES = "tests/testdata/doc_commands";
const check = (...files: string[]) =>
  runScript("tools/check_doc_commands.ts", files, 120_000);

/** The stale lines: `FILE:LINE` and what is wrong, without the command. */
function problems(stdout: string): string[] {
  return stdout.trim().split("\n").filter(Boolean).map((l) =>
    l.replace(/: .* — /, " — ")
  );
}

Deno.test("every command the repository's Markdown and the tasks' --help quote holds", async () => {
  const started = performance.now();
  const r = await check();
  assertEquals([r.code, r.stdout], [0, ""], r.stderr);
  const m =
    /^(\d+) commands in (\d+) files .* and (\d+) in the tasks' --help, .*: 0 stale$/m
      .exec(r.stderr);
  if (!m) throw new Error(`no summary line: ${r.stderr}`);
  assert(Number(m[1]) >= 250 && Number(m[2]) >= 30, r.stderr);
  assert(Number(m[3]) >= 20, r.stderr);
  const seconds = (performance.now() - started) / 1000;
  assert(seconds < 60, `took ${seconds} s`);
});

Deno.test("planted stale commands are each named by file and line: an unknown flag, task, verb or study, a bad choice, a number that does not parse, a stray word, a missing verb", async () => {
  const r = await check(`${FIXTURES}/stale.md`);
  assertEquals(r.code, 1, r.stderr);
  const f = `${FIXTURES}/stale.md`;
  assertEquals(problems(r.stdout), [
    `${f}:6 — unknown option --stepz (--steps?): not among the options of deno task experiment --help`,
    `${f}:7 — no task "experimnt" in deno.json`,
    `${f}:8 — Option --engine must be one of tfjs, webgpu, cpu, auto, got "cuda"`,
    `${f}:9 — Option --lr must be a number, got "fast"`,
    `${f}:9 — Option --seeds must be an integer, got 1.5`,
    `${f}:10 — unknown command "launch": expected one of plan, run, status`,
    `${f}:11 — deno task study epoch --help exits 1: error: Unknown study "epoch": expected one of epochs, adaptation`,
    `${f}:12 — Option --scale must be one of cpu, gpu, got "huge"`,
    // After an env prefix, by npx, on a continued line.
    `${f}:13 — Option --js-vs-wasm must be one of on, off, got "maybe"`,
    // In a variable the block assigned.
    `${f}:16 — unknown option --d-modle (--d-model?): not among the options of deno task experiment --help`,
    // A deno run of a task's script.
    `${f}:17 — unknown option --tempreature (--temperature?): not among the options of deno task sample --help`,
    // Inline code over two lines.
    `${f}:21 — Option --gen-samples must be an integer, got "many"`,
    `${f}:23 — unexpected argument "extra": this task takes only options`,
    `${f}:25 — deno task sweep needs a command`,
    // Options before `--` are checked; the command after it is not.
    `${f}:28 — unknown option --maxx (--max?): not among the options of deno run -A tools/mutate.ts --help`,
  ]);
  assert(r.stderr.includes("14 commands in 1 files"), r.stderr);
  assert(r.stderr.endsWith(": 14 stale\n"), r.stderr);
});

Deno.test("commands that hold pass: comments, pipes, env prefixes, npx, variables, placeholders, optional parts, sub-commands, a value that looks like a flag, --help", async () => {
  const r = await check(`${FIXTURES}/fresh.md`);
  assertEquals([r.code, r.stdout], [0, ""], r.stderr);
  assert(r.stderr.includes("0 stale"), r.stderr);
});

Deno.test("a real doc with one flag renamed and one choice made up fails at those lines", async () => {
  const doc = await Deno.readTextFile(`${ROOT}docs/ablation.md`);
  const lines = doc.split("\n");
  const at = lines.findIndex((l) =>
    l.startsWith("deno task sweep run runs/ablate-30 --on local --jobs 2")
  );
  const slurm = lines.findIndex((l) =>
    l.startsWith("deno task sweep run runs/ablate --on slurm")
  );
  assert(at >= 0 && slurm >= 0, "docs/ablation.md's sweep commands moved");
  lines[at] = lines[at].replace("--jobs 2", "--workers 2");
  lines[slurm] = lines[slurm].replace("--on slurm", "--on pbs");
  const dir = await Deno.makeTempDir();
  try {
    const copy = `${dir}/ablation.md`;
    await Deno.writeTextFile(copy, lines.join("\n"));
    const r = await check(copy);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(problems(r.stdout), [
      `${copy}:${
        at + 1
      } — unknown option --workers: not among the options of deno task sweep plan|run|status --help`,
      `${copy}:${
        slurm + 1
      } — Option --on must be one of local, slurm, got "pbs"`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("extractCommands: the line of each command, continued lines joined, variables spliced, other languages' blocks left out", () => {
  const md = [
    "Run `deno task",
    "sample --quiet` first.",
    "",
    "```sh",
    'X="--steps 10"',
    "FOO=1 deno task experiment $X \\",
    "  --lr 1e-3 | tee log   # done",
    "```",
    "",
    "```ts",
    'const c = "deno task experiment --bogus";',
    "```",
  ].join("\n");
  const got = extractCommands(md, "x.md").map((c) => [
    c.line,
    c.task,
    c.args.join(" "),
    c.inline,
  ]);
  assertEquals(got, [
    [1, "sample", "--quiet", true],
    [6, "experiment", "--steps 10 --lr 1e-3", false],
  ]);
});

Deno.test("parseHelp reads the options under every group's heading of a grouped --help all, and none of the epilogue", () => {
  const text = usageText({
    command: "deno task g",
    summary: "Does g.",
    groups: { run: "Run", model: "Model" },
    options: {
      out: { kind: "string", group: "run", common: true, help: "run folder" },
      nLayer: { kind: "integer", group: "model", help: "blocks" },
      keep: {
        kind: "choice",
        choices: ["last", "best"],
        group: "model",
        help: "which weights",
      },
    },
    epilogue: "Examples:\n  deno task g --n-layer 2",
  }, { all: true });
  const table = parseHelp(text)!;
  assertEquals([...table.options.keys()], ["out", "n-layer", "keep"]);
  assertEquals(table.options.get("n-layer")!.kind, "integer");
  assertEquals(table.options.get("keep")!.choices, ["last", "best"]);
  assertEquals(table.examples.map((e) => e.text), ["deno task g --n-layer 2"]);
});
