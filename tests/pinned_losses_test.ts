// The refactors must not change training: a short micro run's per-step
// losses are pinned to those the code gave before them.
//
// Bit-for-bit pins hold only for one BLAS kernel set and thread count: the
// pins were made under OpenBLAS 0.3.21's SkylakeX kernels with 2 threads, and
// the same run under the 12 other x86 kernel sets it ships (Haswell, Zen,
// Sandybridge, Nehalem, Core2, Prescott, Atom, Barcelona, Cooperlake, ...) and
// 1, 2, 4 or 8 threads drifts from them — by rounding that a chaotic run then
// amplifies (`deno task bench:coretypes` measures it). Measured largest drift per
// step: ≤ 4.8e-7 nats over steps 1–12 for both models; after step 12 the AR's
// grows, to 6.2e-4 at most (SkylakeX with 1 thread, on the AVX-512 Xeon of
// commit 95655dd); the D3PM's stays ≤ 4.8e-7. On an AMD Zen 3 (Haswell,
// Sandybridge, Nehalem; 1, 2, 4 threads): 4.8e-7 and 3.9e-4
// (docs/benchmarks/coretypes-drift-zen3.jsonl). Hence two tolerances:
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
import { microLosses, offPins, readPins } from "./_pinned_losses.ts";

const PINNED = await readPins("pinned_losses.json");

Deno.test("a short micro run trains to the pinned losses of both models, within the BLAS's cross-CPU drift", async () => {
  const off = offPins(PINNED, await microLosses(PINNED, "tfjs"));
  assertEquals(off, [], off.join("\n"));
});

Deno.test("the pinned-loss tolerance rejects a one-step change of the warm-up", async () => {
  const off = offPins(
    PINNED,
    await microLosses(PINNED, "tfjs", ["--warmup", "6"]),
  );
  assert(off.some((m) => m.startsWith("ar step 2:")), off.join("\n"));
  assert(off.some((m) => m.startsWith("d3pm step 2:")), off.join("\n"));
});
