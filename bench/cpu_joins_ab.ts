/**
 * Another build's CPU engine against this one's, in one process, step by
 * step (issue 23's joins): `--old` is the `cpu/mod.ts` of another checkout
 * (e.g. a worktree of main). Three engines on the bench:cpu-profile step
 * (reference or tiny shape, 2 threads, the same batch): the old build's,
 * this build's, and this build's joining after every job
 * (`setJoinElision(false)`); the order rotates every step, 3 warm-up steps.
 * Prints one JSON line: median ms per step of each, the ratios, whether the
 * three losses were the same bits at every step, the load average. Its
 * imports of `@d3pm/...` resolve through this checkout's import map.
 *
 *   deno run -A bench/cpu_joins_ab.ts --old /path/to/main/cpu/mod.ts
 *                                     [--shape reference|tiny] [--steps N] [--rev]
 *
 * `--rev` creates the engines in the other order (their memory placement).
 */
import { readCommandLine } from "@d3pm/cli";
import { CpuTransformer } from "@d3pm/cpu";
import { setJoinElision } from "@d3pm/cpu/profile";
import { PROFILE_SHAPES, profileConfig, randomBatch } from "./_profile_step.ts";

const args = readCommandLine(Deno.args, {
  command: "deno run -A bench/cpu_joins_ab.ts",
  summary:
    `Another build's CPU engine against this one's, in one process, step by
step: the old build's, this build's, and this build's joining after every job,
the order rotating every step after 3 warm-up steps. Prints one JSON line:
median ms per step of each, the ratios, whether the three losses were the
same bits at every step, the load average.`,
  options: {
    old: {
      kind: "string",
      value: "PATH",
      required: true,
      help: "the cpu/mod.ts of another checkout (e.g. a worktree of main)",
    },
    shape: {
      kind: "choice",
      choices: Object.keys(PROFILE_SHAPES),
      default: "reference",
      help: "the bench:cpu-profile step's shape",
    },
    steps: {
      kind: "integer",
      min: 1,
      default: 12,
      help: "timed steps (after 3 warm-up steps)",
    },
    rev: {
      kind: "boolean",
      default: false,
      help: "create the engines in the other order (their memory placement)",
    },
  },
}, { usageExit: 2 }).values;
const { old: oldPath, steps, rev } = args;
const shapeName = args.shape;
const { CpuTransformer: OldEngine } = await import(
  new URL(oldPath, `file://${Deno.cwd()}/`).href
) as { CpuTransformer: typeof CpuTransformer };
const shape = shapeName as keyof typeof PROFILE_SHAPES;
const config = profileConfig(shape);
const B = PROFILE_SHAPES[shape].batch, T = config.contextLength;
const make = (E: typeof CpuTransformer) =>
  E.create(config, { batchSize: B, length: T, seed: 1, threads: 2 });
// [old, new, new joining after every job]
const engines = rev
  ? await (async () => {
    const every = await make(CpuTransformer);
    const elide = await make(CpuTransformer);
    return [await make(OldEngine), elide, every];
  })()
  : [
    await make(OldEngine),
    await make(CpuTransformer),
    await make(CpuTransformer),
  ];
setJoinElision(engines[2].kernels, false);
const batch = randomBatch(B * T, config.vocabSize);
const times: number[][] = engines.map(() => []);
let same = true;
try {
  for (let i = 0; i < steps + 3; i++) {
    const order = [0, 1, 2];
    for (let r = 0; r < i % 3; r++) order.push(order.shift()!);
    const loss: number[] = [];
    for (const e of order) {
      const t0 = performance.now();
      engines[e].step(batch, 3e-4);
      const r = await engines[e].readLoss();
      if (i >= 3) times[e].push(performance.now() - t0);
      loss[e] = r.loss;
    }
    if (!(loss[0] === loss[1] && loss[1] === loss[2])) same = false;
  }
} finally {
  for (const e of engines) e.dispose();
}
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
};
const [old, elide, every] = times.map(median);
const r3 = (x: number) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  created: rev ? "new-every, new, old" : "old, new, new-every",
  shape: shapeName,
  steps,
  old_ms: r3(old),
  new_ms: r3(elide),
  new_every_ms: r3(every),
  new_vs_old: r3(old / elide),
  new_every_vs_old: r3(old / every),
  same_loss_bits: same,
  loadavg: Deno.loadavg().map(r3),
}));
