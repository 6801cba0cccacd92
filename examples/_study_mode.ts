/**
 * What a study's command line asks for, shared by the studies' scripts.
 *
 * @module
 */
import { UsageError } from "@d3pm/cli";

/**
 * Refuse more than one of a study's modes (`--sweep`, `--cell NAME`,
 * `--collect`) on one command line.
 *
 * @param v The parsed modes.
 * @throws {UsageError} Naming the modes given together and the choices.
 *
 * @example
 * ```ts
 * import { checkStudyMode } from "./_study_mode.ts";
 * import { assertThrows } from "@std/assert";
 * checkStudyMode({ sweep: true });
 * assertThrows(
 *   () => checkStudyMode({ sweep: true, collect: true }),
 *   Error,
 *   "Options --sweep and --collect do not go together",
 * );
 * ```
 */
export function checkStudyMode(
  v: { sweep?: boolean; cell?: string; collect?: boolean },
): void {
  const modes = [
    v.sweep && "--sweep",
    v.cell !== undefined && "--cell",
    v.collect && "--collect",
  ].filter(Boolean);
  if (modes.length > 1) {
    throw new UsageError(
      `Options ${
        modes.join(" and ")
      } do not go together: --sweep, --cell NAME or --collect`,
    );
  }
}
