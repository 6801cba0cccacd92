/**
 * How a study reads the files its cells leave: bounded, as a run's own
 * `results.json` is read, so a file linked to `/dev/zero` or a FIFO, or one
 * too large, is refused in one line naming it instead of hanging the study
 * or filling its memory.
 */
import { RESULTS_READ } from "../_limits.ts";
import { readJsonBounded, readTextBounded } from "@d3pm/core";

/** The largest `results.json` (or rows file) a study reads: as a run's. */
export const STUDY_FILE_LIMIT = RESULTS_READ.limit;

/**
 * The JSON of a cell's file, or undefined where there is none (not run, or
 * not finished).
 *
 * @param path The file.
 * @param what What it is, for messages.
 * @returns Its value, or undefined.
 * @throws {BoundedReadError} When it is not a regular file, is larger than
 *   {@linkcode STUDY_FILE_LIMIT}, or is not JSON.
 */
export async function readStudyJson(
  path: string,
  what = "results file",
): Promise<unknown> {
  try {
    return await readJsonBounded(path, { limit: STUDY_FILE_LIMIT, what });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * The text of a study's own file, or undefined where there is none.
 *
 * @param path The file.
 * @param what What it is, for messages.
 * @returns Its text, or undefined.
 * @throws {BoundedReadError} As {@linkcode readStudyJson}, but for JSON.
 */
export async function readStudyText(
  path: string,
  what: string,
): Promise<string | undefined> {
  try {
    return await readTextBounded(path, { limit: STUDY_FILE_LIMIT, what });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}
