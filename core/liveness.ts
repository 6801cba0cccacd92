/**
 * Whether the process that left a file behind (a lock, a temporary file)
 * still runs: a pid and, on Linux, its start time, so a reused pid is told
 * apart from the process that wrote it.
 *
 * @module
 */

/** A process as a file names it: its pid and, where known, its start time. */
export interface ProcessMark {
  /** Its pid. */
  pid: number;
  /** Its start time (`/proc/<pid>/stat` field 22, clock ticks since boot), where known. */
  start?: string;
}

/** `/proc/<pid>/stat`'s start time (field 22), or undefined where there is none. */
function startTime(pid: number | "self"): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command (field 2) is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

const SELF_START = startTime("self");

/**
 * This process's mark.
 *
 * @returns Its pid, and its start time where the system tells it.
 *
 * @example
 * ```ts
 * import { thisProcess } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(thisProcess().pid, Deno.pid);
 * ```
 */
export function thisProcess(): ProcessMark {
  return { pid: Deno.pid, ...(SELF_START ? { start: SELF_START } : {}) };
}

/**
 * Whether the process a mark names still runs: on Linux its pid must exist
 * and, where the mark recorded one, have the same start time (a reused pid
 * is another process); a bare pid is alive if that process is a Deno.
 * Elsewhere any other process is taken to be alive.
 *
 * @param mark The process, as a file named it.
 * @returns False only when it is known to be gone.
 *
 * @example
 * ```ts
 * import { isProcessAlive, thisProcess } from "@d3pm/core";
 * import { assert } from "@std/assert";
 * assert(isProcessAlive(thisProcess()));
 * ```
 */
export function isProcessAlive(mark: ProcessMark): boolean {
  if (mark.pid === Deno.pid) {
    return mark.start === undefined || mark.start === SELF_START;
  }
  if (Deno.build.os !== "linux") return true;
  const start = startTime(mark.pid);
  if (start === undefined) return false; // no such process
  if (mark.start !== undefined) return mark.start === start;
  // A bare pid (an older lock): alive if that process is a Deno.
  try {
    return Deno.readTextFileSync(`/proc/${mark.pid}/cmdline`)
      .includes("deno");
  } catch {
    return false;
  }
}
