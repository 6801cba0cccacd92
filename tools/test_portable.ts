/**
 * The CPU-portability check: the test suite (its numeric part: everything but
 * webgpu/, whose kernels never touch the BLAS; the transformers comparisons
 * of tests/hf_test.ts, which run on tfjs's cpu backend; and the dashboard's
 * server and browser tests, which compare no trained figures; the Slurm round trip
 * of tests/sweep_slurm_test.ts) once under each OpenBLAS
 * kernel set this CPU can execute — SkylakeX where it has AVX-512, Haswell
 * (also what Zen runs), Sandybridge, and the Nehalem baseline — so that a pin
 * or a tolerance that holds only for this machine's kernels fails here, not
 * on the next developer's AMD or ARM box. The documentation's examples run
 * under the oldest kernel set chosen only (loading them is about a minute and
 * a half of a run); with `--scope numerics` only those that can reach the
 * BLAS (backend/, cpu/, and any that imports them or calls `initBackend`).
 *
 *   deno task test:portable [--coretypes Haswell,Nehalem] [--skip-native yes] [--limit N]
 *
 * `--skip-native yes` leaves out the kernel set the backend picks by itself
 * (`deno task test` already ran it); `--limit N` keeps at most N: the newest
 * N − 1 and always the oldest (the baseline), which is what CI runs. Prints one line per kernel set and
 * `N passed, N failed` over all of them; exits 1 when any test failed.
 *
 * @module
 */
import {
  coretypeForFlags,
  readCpuFlags,
  runnableCoretypes,
} from "@d3pm/backend/cblas";
import { readCommandLine, UsageError } from "@d3pm/cli";

const USAGE = {
  command: "deno task test:portable",
  summary:
    `Runs the tests outside webgpu/ under each OpenBLAS kernel set this CPU can
execute (the documentation's examples under the oldest of them; with
--scope numerics only those that can reach the BLAS), and prints
N passed, N failed over all of them.`,
  options: {
    coretypes: {
      kind: "string",
      value: "LIST",
      default: "",
      help: "kernel sets to run (default: every one this CPU can execute)",
    },
    limit: {
      kind: "integer",
      min: 0,
      default: 0,
      help: "at most N kernel sets: the newest N-1 and the oldest (0: all)",
    },
    skipNative: {
      kind: "choice",
      choices: ["yes", "no"],
      default: "no",
      help: "leave out the kernel set the backend picks itself",
    },
    scope: {
      kind: "choice",
      choices: ["all", "numerics"],
      default: "all",
      help:
        "numerics: leave out the tests of errors, locks and files (the run folder's refusals, races and hostile inputs, the GPU run's script, tokenizer, data, CLI, option tables and the repository's tools), which no kernel set changes, and the examples that cannot reach the BLAS",
    },
  },
} as const;

const flags = Deno.build.arch === "x86_64" ? readCpuFlags() : undefined;
const runnable = flags === undefined ? [] : runnableCoretypes(flags);
const { values } = readCommandLine(Deno.args, USAGE, {
  usageExit: 2,
  check: ({ values }) => {
    for (const c of chosenOf(values.coretypes)) {
      if (!runnable.includes(c)) {
        throw new UsageError(
          `Option --coretypes: this CPU cannot run ${c}; it runs ${
            runnable.join(", ") || "none (not x86-64)"
          }`,
        );
      }
    }
  },
});
const args = kernelSets(values);

/** The kernel sets of `--coretypes` (all this CPU runs when empty). */
function chosenOf(coretypes: string): string[] {
  if (coretypes === "") return runnable;
  // Any case, as OPENBLAS_CORETYPE takes them (HASWELL, haswell, Haswell).
  return coretypes.split(",").map((c) =>
    runnable.find((r) => r.toLowerCase() === c.trim().toLowerCase()) ?? c
  );
}

/** The kernel sets to run: chosen, without the native one if asked, at most `limit`. */
function kernelSets(
  v: { coretypes: string; limit: number; skipNative: "yes" | "no" },
): string[] {
  const native = flags === undefined ? undefined : coretypeForFlags(flags);
  const kept = v.skipNative === "yes"
    ? chosenOf(v.coretypes).filter((c) => c.toUpperCase() !== native)
    : chosenOf(v.coretypes);
  return v.limit === 0 || kept.length <= v.limit
    ? kept
    : [...kept.slice(0, v.limit - 1), kept.at(-1)!];
}

if (args.length === 0) {
  console.log(
    `test:portable: nothing to run (${
      flags === undefined
        ? `no x86-64 kernel sets on ${Deno.build.os}/${Deno.build.arch}`
        : "every kernel set left out"
    })`,
  );
  console.log("0 passed, 0 failed");
  Deno.exit(0);
}

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname);
// Never under another kernel set: the GPU's and the dashboard's tests
// (tests/engine_test.ts is the WebGPU engine's run against tfjs's, whose
// tfjs side tests/cpu_engine_test.ts runs too; the browser tests);
// tests/hf_test.ts compares exports with transformers in Python within
// 1e-4 (a kernel set moves logits by ~1e-6; a minute and more per run);
// tests/sweep_slurm_test.ts tests the scheduler's round trip (its runs'
// figures are compared at one thread count, within the run). The browser
// tests are every tracked `*_browser_test.ts`, by name: a hand-kept list went
// stale as new ones were added (four ran under each kernel set for a while).
const IGNORED = [
  "webgpu/",
  "dashboard/",
  "tests/engine_test.ts",
  "tests/hf_test.ts",
  "tests/sweep_slurm_test.ts",
  ...await browserTests(),
];

/** Every tracked browser test (`*_browser_test.ts`): none reaches the BLAS. */
async function browserTests(): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["ls-files", "*_browser_test.ts"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter((f) => f);
}
// `--scope numerics` leaves out these too: they assert errors, locks,
// refusals and files — nothing a kernel set's rounding or determinism moves.
// Pins and tolerances (backend/, cpu/, the models, training, evaluation,
// experiment/, tests/pinned_losses_test.ts, the documentation's examples) and
// the tests of bits equal across processes (a resumed run's against the whole
// run's, a sweep's cells against one process: each kernel set must be
// deterministic) stay in.
const BEHAVIOUR = [
  // Refusals, locks, --force, caches, reports and Ctrl-C of a run folder; its
  // one bit-identity case (an old run resumes to the whole run's weights) is
  // the same-kernel-set determinism tests/experiment_test.ts's kill-and-resume
  // tests assert under this set.
  "tests/run_folder_test.ts",
  "tests/run_folder_races_test.ts",
  "tests/run_folder_hostile_test.ts",
  "tests/hostile_inputs_test.ts",
  "tests/gpu_run_test.ts",
  "tests/gpu_scripts_help_test.ts",
  "tests/build_scripts_help_test.ts",
  "tokenizer/",
  "data/",
  "cli/",
  // Refusals of hostile options and Hugging Face inputs, option tables and
  // config checks, the repository's own tools and checks: no float is
  // computed, so no kernel set can change them.
  "tests/hostile_options_test.ts",
  "tests/experiment_refusals_test.ts",
  // Runs identified by their data.json and weights records: refusals.
  "tests/run_identity_test.ts",
  "hf/hostile_test.ts",
  "hf/_pickle_test.ts",
  "hf/tokenizer_files_test.ts",
  "experiment/options_test.ts",
  "experiment/options_ranges_test.ts",
  "experiment/config_resume_test.ts",
  "transformer/config_test.ts",
  "backend/vulkan_env_test.ts",
  "tests/doc_commands_test.ts",
  "tests/check_examples_test.ts",
  "tests/engines_without_tfjs_test.ts",
  "tests/entry_points_test.ts",
  "tools/",
  // A run folder's locks and refusals in-process, the tools' and the
  // epochs study's argument checks, serve's refusals, loadTrained's refusals.
  "experiment/run_folder_test.ts",
  "experiment/tools_test.ts",
  "experiment/load_test.ts",
  "examples/study_epochs_test.ts",
  "tests/study_epochs_lock_test.ts",
  "tests/study_epochs_modes_lock_test.ts",
  "tests/study_epochs_replay_release_test.ts",
  "examples/serve_test.ts",
  // Sweep planning, status and merging, and the reports' figures from given
  // results (brute force in JavaScript); the CPU engine's pinned hash.
  "experiment/sweep_test.ts",
  "experiment/sweep_waves_test.ts",
  "experiment/report_test.ts",
  "experiment/report_figures_test.ts",
  "experiment/studies/epochs_report_test.ts",
  "cpu/engine_hash_test.ts",
];
// `--scope numerics` leaves out the tests of the packages below the BLAS too:
// core/ (bytes, hashes, the PRNG) imports no backend, and the tests of
// diffusion/, autoregressive/, eval/ and train/ run on tfjs's own `cpu`
// backend (each sets it; none imports @d3pm/backend's initBackend or
// @d3pm/cpu), where no kernel set is reached. Their documentation examples
// that can reach the BLAS still run (blasExamples).
const TFJS_CPU = [
  "core/",
  "diffusion/",
  "autoregressive/",
  "eval/",
  "train/",
  // Block attention on a real denoiser: every test sets tfjs's `cpu` backend
  // first, as diffusion/'s do. (tests/block_diffusion_test.ts runs on `blas`
  // since CI's time was cut, so it stays in: it passes under Nehalem.)
  "transformer/block_attention_test.ts",
];
const ignored = IGNORED.concat(values.scope === "numerics" ? BEHAVIOUR : []);
const ignoredTests = ignored.concat(
  values.scope === "numerics" ? TFJS_CPU : [],
);

/**
 * Files in backend/ and cpu/ whose examples never reach the BLAS: the Vulkan
 * driver search, the CPU-flag parsing (it reads /proc/cpuinfo, not
 * OPENBLAS_CORETYPE) and the CPU engine's pinned hash.
 */
const NO_BLAS_EXAMPLES = [
  "backend/vulkan_env.ts",
  "backend/_cpu_flags.ts",
  "cpu/engine_hash.ts",
];

/**
 * The files whose documentation examples can reach the BLAS: every one in
 * backend/ and cpu/ (the packages over it), and any other whose examples
 * import them or call `initBackend` (the README's quick start). The other
 * examples run on tfjs's own `cpu` backend, or touch no floats; the native
 * run checks them. Files named on `deno test`'s command line are loaded as
 * test modules, so scripts (tools/, examples/, bench/: their top level runs a
 * command) are never among them, nor are tests.
 */
async function blasExamples(): Promise<string[]> {
  const files: string[] = [];
  const out = await new Deno.Command("git", {
    args: ["ls-files", "*.ts", "*.md"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  for (const file of new TextDecoder().decode(out.stdout).split("\n")) {
    if (
      file === "" ||
      /(^|\/)tests\/|_test\.ts$|^(tools|examples|bench)\//.test(file)
    ) continue;
    if (ignored.some((i) => file.startsWith(i))) continue;
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    const examples = [...text.matchAll(/```(?:ts|typescript)\n([\s\S]*?)```/g)]
      .map((m) => m[1]);
    if (examples.length === 0) continue;
    if (NO_BLAS_EXAMPLES.includes(file)) continue;
    if (
      /^(backend|cpu)\//.test(file) ||
      examples.some((e) => /initBackend|@d3pm\/(backend|cpu)\b/.test(e))
    ) files.push(file);
  }
  return files;
}

/** One `deno test` under a kernel set: its counts, its failures and how it exited. */
interface TestRun {
  passed: number;
  failed: number;
  ignored: number;
  /** The lines of the failed tests. */
  failures: string[];
  /** Deno's exit code, and its last stderr lines when it failed without a failed test. */
  code: number;
  tail: string;
}

/** Run `deno test` with `testArgs` under `coretype`; null without a summary. */
async function runTests(
  testArgs: string[],
  coretype: string,
): Promise<TestRun | null> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: testArgs,
    cwd: ROOT,
    env: { NO_COLOR: "1", OPENBLAS_CORETYPE: coretype },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const text = new TextDecoder().decode(out.stdout) + stderr;
  const summary = text.match(
    /^(ok|FAILED) \| (\d+) passed.*?\| (\d+) failed(?: \| (\d+) ignored)?/m,
  );
  if (summary === null) {
    console.log(`${coretype}: no test summary (deno exited ${out.code})`);
    console.log(text.trim().split("\n").slice(-20).join("\n"));
    return null;
  }
  return {
    passed: Number(summary[2]),
    failed: Number(summary[3]),
    ignored: Number(summary[4] ?? 0),
    failures: text.split("\n").filter((l) => /\.\.\. FAILED/.test(l))
      .map((l) => `  ${l.trim()}`),
    code: out.code,
    tail: stderr.trim().split("\n").slice(-10).join("\n  "),
  };
}

let passed = 0, failed = 0;
for (const coretype of args) {
  const t0 = performance.now();
  // The documentation's examples under the last (oldest) kernel set only:
  // loading them is most of a run's start-up (about a minute and a half for
  // all of them here), and each is then checked under the native set and the
  // baseline. `--scope numerics`: only the examples that can reach the BLAS,
  // in a second `deno test` over those files alone (none: no second run, as
  // `deno test` without files would run everything).
  const last = coretype === args.at(-1);
  const runs = [[
    "test",
    "-A",
    ...(last && values.scope === "all" ? ["--doc"] : []),
    `--ignore=${ignoredTests.join(",")}`,
  ]];
  const examples = last && values.scope === "numerics"
    ? await blasExamples()
    : [];
  // The examples with `--parallel`: loading each is most of their time
  // (tools/run_tests.ts).
  if (examples.length > 0) {
    runs.push(["test", "-A", "--doc", "--parallel", ...examples]);
  }
  const results: TestRun[] = [];
  for (const testArgs of runs) {
    const r = await runTests(testArgs, coretype);
    if (r === null) break;
    results.push(r);
  }
  const seconds = ((performance.now() - t0) / 1000).toFixed(0);
  if (results.length < runs.length) {
    failed++;
    continue;
  }
  const sum = (k: "passed" | "failed" | "ignored") =>
    results.reduce((a, r) => a + r[k], 0);
  passed += sum("passed");
  failed += sum("failed");
  console.log(
    `${coretype}: ${sum("passed")} passed, ${sum("failed")} failed, ${
      sum("ignored")
    } ignored (${seconds} s)`,
  );
  for (const r of results) {
    for (const line of r.failures) console.log(line);
    if (r.code !== 0 && r.failed === 0) {
      // Every test passed but the process did not exit cleanly: say how.
      console.log(`  deno exited ${r.code} after 0 failed\n  ${r.tail}`);
      failed++;
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed > 0 ? 1 : 0);
