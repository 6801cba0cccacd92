/**
 * Whether a sweep's cells measured what one process measured: for every
 * model of every seed of a one-process run (`--seeds N`), the matching cell's
 * result compared with every time and speed figure removed
 * (`measuredFigures`). Prints one line per model and `K of N model results
 * identical`; exits 1 when any differs or is missing.
 *
 *   deno run -A tools/same_figures.ts ONE_PROCESS_RUN SWEEP_DIR
 *
 * @module
 */
import { measuredFigures, type ModelResult, readSweep } from "@d3pm/experiment";
import { equal } from "@std/assert";

const [one, sweep] = Deno.args;
if (Deno.args.includes("--help") || !one || !sweep || Deno.args.length !== 2) {
  console.log(
    "usage: deno run -A tools/same_figures.ts ONE_PROCESS_RUN SWEEP_DIR (a --seeds N run folder and a sweep folder of seed cells)",
  );
  Deno.exit(Deno.args.includes("--help") ? 0 : 2);
}
interface Results {
  results: (ModelResult & { seed: number; model: string })[];
}
const read = async (path: string): Promise<Results | undefined> => {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as Results;
  } catch {
    return undefined;
  }
};
const whole = await read(`${one}/results.json`);
if (!whole) {
  console.error(
    `error: ${one}/results.json cannot be read (not a finished run)`,
  );
  Deno.exit(2);
}
// Another run folder (or a typo) in place of the sweep would read as every
// cell missing.
try {
  await readSweep(sweep);
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(2);
}
let same = 0;
for (const r of whole.results) {
  const cell = await read(`${sweep}/cells/seed-${r.seed}/results.json`);
  const b = cell?.results.find((x) => x.seed === r.seed && x.model === r.model);
  const verdict = !b
    ? "missing"
    : equal(measuredFigures(b), measuredFigures(r))
    ? "identical"
    : "differs";
  if (verdict === "identical") same++;
  console.log(`seed ${r.seed} ${r.model}: ${verdict}`);
}
console.log(`${same} of ${whole.results.length} model results identical`);
if (same !== whole.results.length) Deno.exit(1);
