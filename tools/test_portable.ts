/**
 * The CPU-portability check: the test suite (its numeric part: everything but
 * webgpu/, whose kernels never touch the BLAS) once under each OpenBLAS
 * kernel set this CPU can execute — SkylakeX where it has AVX-512, Haswell
 * (also what Zen runs), Sandybridge, and the Nehalem baseline — so that a pin
 * or a tolerance that holds only for this machine's kernels fails here, not
 * on the next developer's AMD or ARM box.
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
import {
  benchArgs,
  BenchArgsError,
  type BenchUsage,
  intOption,
} from "../bench/_args.ts";

const USAGE: BenchUsage = {
  command: "deno task test:portable",
  summary:
    `Runs the tests outside webgpu/ (with --doc) under each OpenBLAS kernel set this CPU
can execute, and prints N passed, N failed over all of them.`,
  options: [
    {
      name: "coretypes",
      value: "LIST",
      help: "kernel sets to run (default: every one this CPU can execute)",
      default: "",
    },
    {
      name: "limit",
      value: "N",
      help:
        "at most N kernel sets: the newest N-1 and the oldest (default all)",
      default: "0",
    },
    {
      name: "skip-native",
      value: "yes|no",
      help: "leave out the kernel set the backend picks itself (default no)",
      default: "no",
    },
  ],
};

const flags = Deno.build.arch === "x86_64" ? readCpuFlags() : undefined;
const runnable = flags === undefined ? [] : runnableCoretypes(flags);
const args = benchArgs(Deno.args, USAGE, (a) => {
  const chosen = a.coretypes === "" ? runnable : a.coretypes.split(",");
  for (const c of chosen) {
    if (!runnable.includes(c)) {
      throw new BenchArgsError(
        `--coretypes: this CPU cannot run ${c}; it runs ${
          runnable.join(", ") || "none (not x86-64)"
        }`,
      );
    }
  }
  if (a["skip-native"] !== "yes" && a["skip-native"] !== "no") {
    throw new BenchArgsError(
      `--skip-native takes yes or no, got ${a["skip-native"]}`,
    );
  }
  const native = flags === undefined ? undefined : coretypeForFlags(flags);
  const kept = a["skip-native"] === "yes"
    ? chosen.filter((c) => c.toUpperCase() !== native)
    : chosen;
  const limit = intOption(a, "limit", 0);
  return limit === 0 || kept.length <= limit
    ? kept
    : [...kept.slice(0, limit - 1), kept.at(-1)!];
});

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

const ROOT = new URL("..", import.meta.url).pathname;
let passed = 0, failed = 0;
for (const coretype of args) {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--doc", "--ignore=webgpu/"],
    cwd: ROOT,
    env: { NO_COLOR: "1", OPENBLAS_CORETYPE: coretype },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  const summary = text.match(
    /^(ok|FAILED) \| (\d+) passed.*?\| (\d+) failed(?: \| (\d+) ignored)?/m,
  );
  const seconds = ((performance.now() - t0) / 1000).toFixed(0);
  if (summary === null) {
    console.log(`${coretype}: no test summary (deno exited ${out.code})`);
    console.log(text.trim().split("\n").slice(-20).join("\n"));
    failed++;
    continue;
  }
  const [, , p, f, ig] = summary;
  passed += Number(p);
  failed += Number(f);
  console.log(
    `${coretype}: ${p} passed, ${f} failed, ${ig ?? 0} ignored (${seconds} s)`,
  );
  if (Number(f) > 0 || out.code !== 0) {
    for (const line of text.split("\n")) {
      if (/\.\.\. FAILED/.test(line)) console.log(`  ${line.trim()}`);
    }
    if (Number(f) === 0) failed++;
  }
}
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed > 0 ? 1 : 0);
