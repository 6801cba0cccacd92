/**
 * One definition of a finished sweep cell, for `sweep status`, `sweep run`
 * and `report --merge` alike: its `results.json` reads (bounded) as a JSON
 * object. A file there that does not (torn, edited, oversized, not a file)
 * is broken: not finished, and not left for ever as one — `sweep run` moves
 * it aside to `results.json.broken` and runs the cell again.
 *
 * Run as a program (`deno run -A _cell_results.ts DIR`), it is the job
 * script's test of a finished cell, so that a task Slurm requeues (or a
 * script submitted again by hand) judges by this rule too, not by a shell
 * `[ -f DIR/results.json ]`: exit 0 when finished; exit 3
 * ({@linkcode NOT_FINISHED_EXIT}) when not, a broken file first moved aside
 * (one line on stderr saying why); exit 2 when it cannot tell. Not 1 for
 * "not finished": `deno run` exits 1 on its own failures (a module not
 * found, an uncaught error), so the job script takes every code but 0 and
 * 3 as "cannot tell" and runs nothing.
 * @module
 */
import { BoundedReadError, readJsonBounded } from "@d3pm/core";
import { RESULTS_READ } from "./_limits.ts";

/**
 * The check's exit code for a cell that has not finished (none there, or a
 * broken `results.json` moved aside): one `deno run` never gives for its
 * own failures (1: a module not found, an uncaught error).
 *
 * @example
 * ```ts
 * import { NOT_FINISHED_EXIT } from "./_cell_results.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(NOT_FINISHED_EXIT, 3);
 * ```
 */
export const NOT_FINISHED_EXIT = 3;

/** A cell folder's results: none yet, finished, or broken with the reason. */
export type CellResults =
  | { state: "none" }
  | { state: "finished" }
  | { state: "broken"; reason: string };

/**
 * The name a broken `results.json` is moved aside to.
 *
 * @example
 * ```ts
 * import { BROKEN_RESULTS } from "./_cell_results.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(BROKEN_RESULTS, "results.json.broken");
 * ```
 */
export const BROKEN_RESULTS = "results.json.broken";

/**
 * Read `DIR/results.json` as the sweep judges a cell by it.
 *
 * @param dir The cell's run folder.
 * @returns None there, finished, or broken with the reason (one line).
 *
 * @example
 * ```ts
 * import { cellResults } from "./_cell_results.ts";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * assertEquals(await cellResults(dir), { state: "none" });
 * await Deno.writeTextFile(`${dir}/results.json`, "{}");
 * assertEquals(await cellResults(dir), { state: "finished" });
 * await Deno.writeTextFile(`${dir}/results.json`, "[]");
 * assertEquals(await cellResults(dir), {
 *   state: "broken",
 *   reason: `${dir}/results.json is not a JSON object`,
 * });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function cellResults(dir: string): Promise<CellResults> {
  let r: unknown;
  try {
    r = await readJsonBounded(`${dir}/results.json`, RESULTS_READ);
  } catch (e) {
    if (
      e instanceof Deno.errors.NotFound ||
      e instanceof Deno.errors.NotADirectory
    ) return { state: "none" };
    return {
      state: "broken",
      reason: e instanceof BoundedReadError
        ? e.message.split("\n")[0]
        : `${dir}/results.json cannot be read (${
          (e as Error).message.split("\n")[0]
        })`,
    };
  }
  return typeof r === "object" && r !== null && !Array.isArray(r)
    ? { state: "finished" }
    : { state: "broken", reason: `${dir}/results.json is not a JSON object` };
}

/**
 * The job script's check of one cell folder (see the module doc): a broken
 * `results.json` is moved aside, so that the run started next (`--resume`)
 * begins without it.
 */
async function main(args: string[]): Promise<number> {
  if (args.length !== 1) {
    console.error("usage: deno run -A _cell_results.ts CELL_FOLDER");
    return 2;
  }
  const [dir] = args;
  const results = await cellResults(dir);
  if (results.state === "finished") return 0;
  if (results.state === "broken") {
    const file = `${dir}/results.json`;
    try {
      await Deno.rename(file, `${dir}/${BROKEN_RESULTS}`);
    } catch (e) {
      console.error(
        `${results.reason}; cannot move it aside (${
          (e as Error).message.split("\n")[0]
        })`,
      );
      return 2;
    }
    console.error(
      `${results.reason}; moved it aside to ${dir}/${BROKEN_RESULTS}, the cell runs again`,
    );
  }
  return NOT_FINISHED_EXIT;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
