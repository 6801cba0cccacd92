// A short micro run's per-step losses against pins made before a change
// (tests/pinned_losses_test.ts: tfjs; tests/optimiser_options_test.ts: the
// CPU engine too). The tolerances and why: pinned_losses_test.ts.
import { assertEquals } from "@std/assert";
import { runTool } from "./_run.ts";

/** A pin file: the micro run's flags and each model's loss at steps 1, 2, …. */
export interface Pins {
  command: string;
  ar: number[];
  d3pm: number[];
}

/** The pins of `name` in tests/testdata. */
export async function readPins(name: string): Promise<Pins> {
  return JSON.parse(
    await Deno.readTextFile(new URL(`testdata/${name}`, import.meta.url)),
  ) as Pins;
}

/** Steps up to this one (1-based) are held to `EARLY_TOLERANCE`. */
const EARLY_STEPS = 12;
const EARLY_TOLERANCE = 1e-5;
const LATE_TOLERANCE = 2e-3;

/**
 * Per-step losses of both models of the pins' micro run on `engine` with
 * `extra` flags (every step logged: the fused engines log every
 * `--log-every` steps).
 */
export async function microLosses(
  pins: Pins,
  engine: "tfjs" | "cpu",
  extra: string[] = [],
): Promise<Record<"ar" | "d3pm", number[]>> {
  const out = await Deno.makeTempDir();
  try {
    const r = await runTool("experiment.ts", [
      ...pins.command.split(" "),
      "--engine",
      engine,
      ...(engine === "tfjs" ? [] : ["--log-every", "1"]),
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

/**
 * The steps at which `losses` leave the pins' tolerance, as messages; `late`
 * is the tolerance after step `EARLY_STEPS` (the CPU engine's pins take their
 * own: tests/optimiser_options_test.ts).
 */
export function offPins(
  pins: Pins,
  losses: Record<"ar" | "d3pm", number[]>,
  late = LATE_TOLERANCE,
): string[] {
  const off: string[] = [];
  for (const model of ["ar", "d3pm"] as const) {
    const got = losses[model], want = pins[model];
    if (got.length !== want.length) {
      off.push(`${model}: ${got.length} steps, pinned ${want.length}`);
      continue;
    }
    want.forEach((w, i) => {
      const tol = i < EARLY_STEPS ? EARLY_TOLERANCE : late;
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
