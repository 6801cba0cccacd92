// The refactors must not change training: a short micro run's per-step
// losses are pinned to those the code gave before them.
//
// Bit-for-bit pins hold only for one BLAS kernel set and thread count: the
// pins were made under OpenBLAS 0.3.21's SkylakeX kernels with 2 threads, and
// the same run under the 12 other x86 kernel sets it ships (Haswell, Zen,
// Sandybridge, Nehalem, Core2, Prescott, Atom, Barcelona, Cooperlake, ...) and
// 1, 2, 4 or 8 threads drifts from them — by rounding that a chaotic run then
// amplifies (`deno task bench:coretypes` measures it). Measured largest drift per
// step: ≤ 7.2e-7 nats over steps 1–15 for both models; from step 16 the AR's
// grows, to 6.2e-4 at most (step 31, SkylakeX with 1 thread); the D3PM's
// stays ≤ 4.8e-7. Hence two tolerances:
//  - steps 1–12: 1e-5 nats (≥ 20× the largest drift there). This is where a
//    change to training shows first: a warm-up of 6 instead of 5 moves step 2
//    by 3.2e-2, a learning rate 0.2% higher by 3.7e-4 (37× the tolerance).
//  - steps 13–40: 2e-3 nats (3.2× the largest drift there), against gross
//    changes that leave the first steps alone.
// Same-machine determinism (resume, engine) stays exact in its own tests.
//
// The pins are the tfjs path's (per-step losses on the `blas` backend), so
// the run names `--engine tfjs`: `auto` now trains on the CPU engine where
// no GPU is, which logs every `--log-every` steps (tests/cpu_engine_test.ts
// holds it to the tfjs curve).
import { assert, assertEquals } from "@std/assert";
import { runTool } from "./_run.ts";

const PINNED = JSON.parse(
  await Deno.readTextFile(
    new URL("testdata/pinned_losses.json", import.meta.url),
  ),
) as { command: string; ar: number[]; d3pm: number[] };

/** Steps up to this one (1-based) are held to `EARLY_TOLERANCE`. */
const EARLY_STEPS = 12;
const EARLY_TOLERANCE = 1e-5;
const LATE_TOLERANCE = 2e-3;

/** Per-step losses of both models of a micro run with `extra` flags. */
async function microLosses(
  extra: string[] = [],
): Promise<Record<"ar" | "d3pm", number[]>> {
  const out = await Deno.makeTempDir();
  try {
    const r = await runTool("experiment.ts", [
      ...PINNED.command.split(" "),
      "--engine",
      "tfjs",
      ...extra,
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const rows = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim()
      .split("\n").map((l) => JSON.parse(l)).filter((m) => "loss" in m);
    const of = (model: string) =>
      rows.filter((m) => m.model === model).map((m) => m.loss as number);
    return { ar: of("ar"), d3pm: of("d3pm") };
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}

/** The steps at which `losses` leave the pins' tolerance, as messages. */
function offPins(
  losses: Record<"ar" | "d3pm", number[]>,
): string[] {
  const off: string[] = [];
  for (const model of ["ar", "d3pm"] as const) {
    const got = losses[model], want = PINNED[model];
    if (got.length !== want.length) {
      off.push(`${model}: ${got.length} steps, pinned ${want.length}`);
      continue;
    }
    want.forEach((w, i) => {
      const tol = i < EARLY_STEPS ? EARLY_TOLERANCE : LATE_TOLERANCE;
      const d = Math.abs(got[i] - w);
      if (!(d <= tol)) {
        off.push(
          `${model} step ${i + 1}: ${got[i]} vs ${w} (|Δ| ${d} > ${tol})`,
        );
      }
    });
  }
  return off;
}

Deno.test("a short micro run trains to the pinned losses of both models, within the BLAS's cross-CPU drift", async () => {
  const off = offPins(await microLosses());
  assertEquals(off, [], off.join("\n"));
});

Deno.test("the pinned-loss tolerance rejects a one-step change of the warm-up", async () => {
  const off = offPins(await microLosses(["--warmup", "6"]));
  assert(off.some((m) => m.startsWith("ar step 2:")), off.join("\n"));
  assert(off.some((m) => m.startsWith("d3pm step 2:")), off.join("\n"));
});
