/**
 * `deno task test`: every test and every documentation example, in up to
 * four `deno test` runs in two lanes at once, and one summary line over all.
 *
 *   deno task test                      # the whole suite
 *   deno task test cpu/ --filter parity # arguments: one `deno test -A --doc …`
 *
 * The first lane, at normal priority: the few files whose examples change
 * the environment or read the clock ({@linkcode changesEnv},
 * {@linkcode readsClock}), then the test files that start processes,
 * browsers or servers, kill, lock or time things ({@linkcode runsBeside}),
 * one at a time. The second, beside it at the lowest priority
 * (`nice -n 19`), on the cycles the first leaves idle while it waits on its
 * subprocesses: the documentation's other examples (about 600, each its own
 * module, with `--parallel`: loading each one in a fresh isolate takes
 * minutes, and that loading spreads over the cores), then the in-process
 * test files (kernels, parities, numerics). The second's output is held and
 * printed when the first ends.
 *
 * The examples ran first, alone, until the first lane was seen to be the
 * suite's critical path: with them ahead of it, the machine sat a third idle
 * through the first lane's last 7 minutes (a `vmstat` sampler beside
 * `deno task test` on a 2-core AMD EPYC machine).
 *
 * Deno's output is passed through unchanged; the last line is a summary of
 * all the runs in Deno's own form (`ok | N passed | N failed | N ignored`),
 * which `.ci/run` reads. Exit status 1 when any run failed.
 *
 * @module
 */

/** Test modules, as `deno test` finds them: left out of the examples' run. */
const TEST_FILES = ["ts", "tsx", "mts", "cts", "js", "jsx", "mjs", "cjs"]
  .flatMap((e) => [`**/*_test.${e}`, `**/*.test.${e}`, `**/test.${e}`]);

/**
 * The workspace's own exclusions (deno.json's `exclude` and `test.exclude`):
 * `--ignore` on the command line replaces them, so the examples' run names
 * them again (run folders, caches, the Python peer, the built bundle).
 */
function configExcludes(): string[] {
  const root = new URL("../deno.json", import.meta.url);
  const config = JSON.parse(Deno.readTextFileSync(root)) as {
    exclude?: string[];
    test?: { exclude?: string[] };
  };
  return [...config.exclude ?? [], ...config.test?.exclude ?? []];
}

/** The counts of one `deno test` run, from its summary line. */
export interface TestCounts {
  passed: number;
  failed: number;
  ignored: number;
  /** Deno's exit code. */
  code: number;
}

/**
 * The counts on `deno test`'s summary line, or null where `text` has none:
 * `ok | 57 passed (3 steps) | 0 failed | 2 ignored (12s)`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { summaryCounts } from "./run_tests.ts";
 *
 * const line = "FAILED | 50 passed (2 steps) | 7 failed | 1 ignored (3s)";
 * assertEquals(summaryCounts(line, 1), {
 *   passed: 50,
 *   failed: 7,
 *   ignored: 1,
 *   code: 1,
 * });
 * assertEquals(summaryCounts("error: Module not found", 1), null);
 * ```
 */
export function summaryCounts(text: string, code: number): TestCounts | null {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  const lines = [
    ...plain.matchAll(
      /^(?:ok|FAILED) \| (\d+) passed.*?\| (\d+) failed(.*)$/gm,
    ),
  ];
  const last = lines.at(-1);
  if (last === undefined) return null;
  const ignored = last[3].match(/\| (\d+) ignored/);
  return {
    passed: Number(last[1]),
    failed: Number(last[2]),
    ignored: Number(ignored?.[1] ?? 0),
    code,
  };
}

/**
 * Deno's summary line for the sum of several runs; a run without a summary
 * (it stopped before testing, e.g. on a type error), or one that exited
 * non-zero with no failure counted, counts as one failure.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { combinedSummary } from "./run_tests.ts";
 *
 * const runs = [
 *   { passed: 600, failed: 0, ignored: 0, code: 0 },
 *   { passed: 2000, failed: 1, ignored: 2, code: 1 },
 * ];
 * assertEquals(
 *   combinedSummary(runs, "20m"),
 *   "FAILED | 2600 passed | 1 failed | 2 ignored (2 runs, 20m)",
 * );
 * assertEquals(
 *   combinedSummary([runs[0], null], "2m"),
 *   "FAILED | 600 passed | 1 failed | 0 ignored (2 runs, 2m)",
 * );
 * // Exited 1 after a summary of no failure: still one failure.
 * assertEquals(
 *   combinedSummary([runs[0], { ...runs[0], code: 1 }], "3m"),
 *   "FAILED | 1200 passed | 1 failed | 0 ignored (2 runs, 3m)",
 * );
 * ```
 */
export function combinedSummary(
  runs: (TestCounts | null)[],
  took: string,
): string {
  const sum = (k: "passed" | "failed" | "ignored") =>
    runs.reduce((a, r) => a + (r?.[k] ?? 0), 0);
  // A run without a summary, or one that exited non-zero while its summary
  // counted no failure (deno failed after it), is one failure.
  const missing =
    runs.filter((r) => r === null || (r.code !== 0 && r.failed === 0)).length;
  const failed = sum("failed") + missing;
  const ok = failed === 0 && runs.every((r) => r !== null && r.code === 0);
  return `${ok ? "ok" : "FAILED"} | ${
    sum("passed")
  } passed | ${failed} failed | ${
    sum("ignored")
  } ignored (${runs.length} runs, ${took})`;
}

/**
 * Output held until `release()`, then passed through: the run beside the
 * serial one prints after it, not interleaved with it.
 */
class Held {
  #chunks: [typeof Deno.stdout, Uint8Array][] | null = [];
  #flushing: Promise<void> = Promise.resolve();
  /** Write `bytes` to `out`, or keep them while held. */
  write(out: typeof Deno.stdout, bytes: Uint8Array): Promise<void> {
    if (this.#chunks !== null) {
      this.#chunks.push([out, bytes]);
      return Promise.resolve();
    }
    return this.#flushing = this.#flushing.then(() => writeAll(out, bytes));
  }
  /** Print what was held and pass the rest through. */
  release(): Promise<void> {
    const held = this.#chunks ?? [];
    this.#chunks = null;
    this.#flushing = this.#flushing.then(async () => {
      for (const [out, bytes] of held) await writeAll(out, bytes);
    });
    return this.#flushing;
  }
}

/**
 * Run `deno` with `args` (under `nice -n 19` when `low`), its output passed
 * through (or through `held`); its counts.
 */
async function run(
  args: string[],
  options: { low?: boolean; held?: Held } = {},
): Promise<TestCounts | null> {
  const niced = options.low === true && Deno.build.os !== "windows";
  const child = new Deno.Command(niced ? "nice" : Deno.execPath(), {
    args: niced ? ["-n", "19", Deno.execPath(), ...args] : args,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let tail = "";
  const pass = async (
    stream: ReadableStream<Uint8Array>,
    out: typeof Deno.stdout,
  ) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      await (options.held?.write(out, chunk) ?? writeAll(out, chunk));
      tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
    }
  };
  await Promise.all([
    pass(child.stdout, Deno.stdout),
    pass(child.stderr, Deno.stderr),
  ]);
  const { code } = await child.status;
  return summaryCounts(tail, code);
}

/** Write all of `bytes` to `out`. */
async function writeAll(out: typeof Deno.stdout, bytes: Uint8Array) {
  let written = 0;
  while (written < bytes.length) {
    written += await out.write(bytes.subarray(written));
  }
}

/** Minutes and seconds, as Deno prints them. */
function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}

/**
 * Whether a file's documentation examples change the process's environment
 * (`Deno.env.set` or `Deno.env.delete` on a JSDoc line of a `.ts` file, or
 * anywhere in a Markdown file). Such examples run in a serial run of their
 * own: in the parallel run they share one process's environment with the
 * examples running beside them, which saw the changed value (CI at a4f2401:
 * `core/testing`'s example read another's `D3PM_REQUIRE`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { changesEnv } from "./run_tests.ts";
 *
 * assertEquals(changesEnv(" * Deno.env.set(\"CI\", \"true\");", "a.ts"), true);
 * assertEquals(changesEnv("Deno.env.set(name, value);", "a.ts"), false); // code, not an example
 * assertEquals(changesEnv("Deno.env.delete(\"X\");", "README.md"), true);
 * assertEquals(changesEnv(" * Deno.env.get(\"CI\");", "a.ts"), false);
 * ```
 */
export function changesEnv(text: string, file: string): boolean {
  return file.endsWith(".md")
    ? /Deno\.env\.(set|delete)\(/.test(text)
    : /^\s*\*.*Deno\.env\.(set|delete)\(/m.test(text);
}

/**
 * Whether a file's documentation examples read the clock or wait on a timer
 * (`Date.now()`, `performance.now()`, `setTimeout`, `AbortSignal.timeout`,
 * `sleep(`: on a JSDoc line of a `.ts` file, or anywhere in a Markdown
 * file). Such examples run in the first lane, at normal priority: a bound
 * like "at once: under 1,000 ms" could fail under `nice -n 19` beside a
 * busy first lane.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readsClock } from "./run_tests.ts";
 *
 * assertEquals(readsClock(" * const t0 = performance.now();", "a.ts"), true);
 * assertEquals(readsClock(" * await sleep(60_000, signal);", "a.ts"), true);
 * assertEquals(readsClock("const t0 = Date.now();", "a.ts"), false); // code, not an example
 * assertEquals(readsClock("setTimeout(done, 50);", "README.md"), true);
 * assertEquals(readsClock(" * const asleep = 3;", "a.ts"), false);
 * ```
 */
export function readsClock(text: string, file: string): boolean {
  return file.endsWith(".md")
    ? /Date\.now\(|performance\.now\(|setTimeout|AbortSignal\.timeout|\bsleep\(/
      .test(text)
    : /^\s*\*.*(Date\.now\(|performance\.now\(|setTimeout|AbortSignal\.timeout|\bsleep\()/m
      .test(text);
}

/** The tracked files matching `patterns`, relative to `root`. */
async function trackedFiles(
  root: string,
  patterns: string[],
): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["ls-files", ...patterns],
    cwd: root,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((f) =>
    f !== ""
  );
}

/**
 * The tracked files (relative to the root) whose examples
 * {@linkcode changesEnv} or {@linkcode readsClock}, listed by
 * `git ls-files` as `tools/test_portable.ts` lists its examples' files (test
 * modules left out): their examples run serially in the first lane.
 */
async function soloExampleFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  for (const rel of await trackedFiles(root, ["*.ts", "*.md"])) {
    if (/(^|\/|[._])test\.ts$/.test(rel)) continue;
    const text = await Deno.readTextFile(`${root}${rel}`);
    if (changesEnv(text, rel) || readsClock(text, rel)) files.push(rel);
  }
  return files;
}

/**
 * What keeps a test module out of the run beside the serial one: it starts
 * processes, workers, browsers or servers, signals or kills, opens native
 * libraries, or reads the clock or sets timers (a deadline the run beside
 * the serial one, at the lowest priority, could miss).
 */
const SOLO =
  /Deno\.Command|new Worker|spawn\(|chromium|puppeteer|python|Deno\.serve|Deno\.listen|setTimeout|setInterval|Date\.now\(|performance\.now\(|AbortSignal\.timeout|Deno\.kill|\.kill\(|SIGINT|SIGTERM|dlopen|Deno\.env\.(set|delete)|Deno\.chdir/;

/**
 * Whether a test module may run in the run beside the serial one: neither
 * its text nor that of a test helper it imports (`helpers`: the texts of its
 * relative imports whose names start with `_`, contain `test`, or lie under
 * `tests/`) matches {@linkcode SOLO}.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { runsBeside } from "./run_tests.ts";
 *
 * assertEquals(runsBeside("assertEquals(add(1, 2), 3);", []), true);
 * assertEquals(runsBeside("new Deno.Command(Deno.execPath(), {});", []), false);
 * // A helper that kills a run keeps its importer out.
 * assertEquals(runsBeside("await killAt(run);", ["child.kill(\"SIGKILL\");"]), false);
 * assertEquals(runsBeside("const t0 = performance.now();", []), false);
 * ```
 */
export function runsBeside(text: string, helpers: string[]): boolean {
  return !SOLO.test(text) && !helpers.some((h) => SOLO.test(h));
}

/**
 * The texts of `file`'s test helpers, followed through their own imports;
 * `read` gives a file's text by its path (cached by the caller: one helper
 * serves many test files).
 */
async function helperTexts(
  file: string,
  read: (rel: string) => Promise<string | null>,
): Promise<string[]> {
  const seen = new Set<string>();
  const texts: string[] = [];
  const visit = async (rel: string, text: string) => {
    const dir = rel.includes("/") ? rel.slice(0, rel.lastIndexOf("/")) : ".";
    for (const m of text.matchAll(/from\s+"(\.\.?\/[^"]+)"/g)) {
      const next = new URL(m[1], `file:///${dir}/`).pathname.slice(1);
      const name = next.slice(next.lastIndexOf("/") + 1);
      const helper = name.startsWith("_") || name.includes("test") ||
        next.startsWith("tests/");
      if (!helper || seen.has(next)) continue;
      seen.add(next);
      const found = await read(next);
      if (found === null) continue; // not a file here (generated, optional)
      texts.push(found);
      await visit(next, found);
    }
  };
  const own = await read(file);
  if (own !== null) await visit(file, own);
  return texts;
}

/**
 * The tracked test modules (relative to `root`, outside `excludes`) that
 * {@linkcode runsBeside} admits to the run beside the serial one.
 */
export async function besideFiles(
  root: string,
  excludes: string[],
): Promise<string[]> {
  const texts = new Map<string, Promise<string | null>>();
  const read = (rel: string) => {
    if (!texts.has(rel)) {
      texts.set(rel, Deno.readTextFile(`${root}${rel}`).catch(() => null));
    }
    return texts.get(rel)!;
  };
  const beside: string[] = [];
  for (const rel of await trackedFiles(root, TEST_FILES)) {
    if (!rel.endsWith(".ts")) continue;
    if (excludes.some((e) => rel.startsWith(e.replace(/\/?$/, "/")))) continue;
    const text = await read(rel);
    if (text === null) continue;
    if (runsBeside(text, await helperTexts(rel, read))) beside.push(rel);
  }
  return beside;
}

/**
 * The two lanes at once. The first, at normal priority: the examples that
 * {@linkcode changesEnv} or {@linkcode readsClock} (`soloExamples`, a
 * serial run of their own), then every test module `deno test` finds less
 * those {@linkcode runsBeside} admits, one at a time. The second, beside it
 * under `nice -n 19`, its output printed after the first's (also when the
 * first throws): the other examples (`--doc --parallel`), then the admitted
 * modules. Counts in that order: the first lane's, then the second's; a run
 * that could not be started counts as one without a summary (a failure).
 */
async function lanes(
  root: string,
  excludes: string[],
  soloExamples: string[],
): Promise<(TestCounts | null)[]> {
  const beside = await besideFiles(root, excludes);
  const held = new Held();
  const started = (r: Promise<TestCounts | null>) =>
    r.catch((e) => (console.error(`deno test did not run: ${e}`), null));
  const second = (async () => [
    await started(run([
      "test",
      "-A",
      "--doc",
      "--parallel",
      `--ignore=${[...TEST_FILES, ...excludes, ...soloExamples].join(",")}`,
    ], { low: true, held })),
    ...beside.length > 0
      ? [await started(run(["test", "-A", ...beside], { low: true, held }))]
      : [],
  ])();
  const ignored = [...beside, ...excludes];
  let first: (TestCounts | null)[];
  try {
    first = [
      ...soloExamples.length > 0
        ? [await started(run(["test", "-A", "--doc", ...soloExamples]))]
        : [],
      await started(run([
        "test",
        "-A",
        ...ignored.length > 0 ? [`--ignore=${ignored.join(",")}`] : [],
      ])),
    ];
  } finally {
    await held.release();
  }
  return [...first, ...await second];
}

if (import.meta.main) {
  if (Deno.args.length > 0) {
    // Named files or flags: one run, as `deno test -A --doc` alone.
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--doc", ...Deno.args],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    Deno.exit(code);
  }
  const t0 = performance.now();
  const root = new URL("../", import.meta.url);
  const excludes = configExcludes();
  const soloExamples = await soloExampleFiles(
    decodeURIComponent(root.pathname),
  );
  const runs = await lanes(
    decodeURIComponent(root.pathname),
    excludes,
    soloExamples,
  );
  console.log(combinedSummary(runs, duration(performance.now() - t0)));
  Deno.exit(
    runs.every((r) => r !== null && r.code === 0 && r.failed === 0) ? 0 : 1,
  );
}
