/**
 * Whether the process that left a file behind (a lock, a temporary file)
 * still runs: a pid and, on Linux, its start time, so a reused pid is told
 * apart from the process that wrote it.
 *
 * @module
 */

/**
 * A process as a file names it: its pid and, where known, its start time,
 * pid namespace and host.
 */
export interface ProcessMark {
  /** Its pid. */
  pid: number;
  /** Its start time (`/proc/<pid>/stat` field 22, clock ticks since boot), where known. */
  start?: string;
  /**
   * Its pid namespace (`/proc/self/ns/pid`'s link, `pid:[4026531836]`),
   * where known: its pid means nothing in another namespace (a container
   * sharing the folder). Absent: taken to be this process's.
   */
  ns?: string;
  /**
   * Its host, and that host's boot (`/proc/sys/kernel/random/boot_id`; where
   * that cannot be read, the host's name), where known: its pid means
   * nothing on another host — every Linux host's first pid namespace has
   * the same inode, so `ns` alone cannot tell two nodes of a cluster
   * sharing a folder apart. Absent (a mark written before it was recorded):
   * taken to be this host's.
   */
  host?: string;
  /** Its host's name (`Deno.hostname()`), where known: for messages. */
  hostname?: string;
}

/**
 * `/proc/<pid>/stat`'s start time (field 22); `"gone"` where there is no
 * such process (`NotFound`); undefined where it cannot be told (/proc
 * unreadable: `--allow-read` without it, hidepid, not Linux).
 */
function startTime(pid: number | "self"): string | "gone" | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? "gone" : undefined;
  }
  // The command (field 2) is in parentheses and may hold spaces.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

/** This process's pid namespace, or undefined where it cannot be read. */
function pidNamespace(): string | undefined {
  try {
    return Deno.readLinkSync("/proc/self/ns/pid");
  } catch {
    return undefined;
  }
}

/**
 * This host and boot: `/proc/sys/kernel/random/boot_id` (a new one at every
 * boot), else the host's name; undefined where neither can be read.
 */
function hostId(): string | undefined {
  try {
    const id = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
    if (id) return id;
  } catch {
    // Not Linux, or /proc not readable: the host's name below.
  }
  return hostName();
}

/** This host's name, or undefined where it cannot be read (no --allow-sys). */
function hostName(): string | undefined {
  try {
    return Deno.hostname() || undefined;
  } catch {
    return undefined;
  }
}

// This process's start time, read when asked (not at import: the module is
// part of @d3pm/core, which the dashboard's browser bundle also loads).
function selfStart(): string | undefined {
  const s = startTime("self");
  return s === "gone" ? undefined : s;
}

/**
 * This process's mark.
 *
 * @returns Its pid, and its start time, pid namespace, host (boot id) and
 *   host name where the system tells them.
 *
 * @example
 * ```ts
 * import { thisProcess } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * assertEquals(thisProcess().pid, Deno.pid);
 * ```
 */
export function thisProcess(): ProcessMark {
  const start = selfStart(), ns = pidNamespace();
  const host = hostId(), hostname = hostName();
  return {
    pid: Deno.pid,
    ...(start ? { start } : {}),
    ...(ns ? { ns } : {}),
    ...(host ? { host } : {}),
    ...(hostname ? { hostname } : {}),
  };
}

/**
 * Whether the process a mark names still runs: on Linux its pid must exist
 * and, where the mark recorded one, have the same start time (a reused pid
 * is another process); a bare pid is alive if that process is a Deno.
 * Whatever cannot be told is taken to be alive: another host's process (a
 * mark whose `host` differs from this one's: a cluster node sharing the
 * folder, or this host before a reboot), another pid namespace's (a mark
 * whose `ns` differs from this process's), a /proc that cannot be read (any
 * error but `NotFound`), any system but Linux.
 *
 * @param mark The process, as a file named it.
 * @returns False only when it is known to be gone: no such pid in this
 *   namespace on this host, another start time, or (a bare pid) not a Deno.
 *
 * @example
 * ```ts
 * import { isProcessAlive, thisProcess } from "@d3pm/core";
 * import { assert } from "@std/assert";
 * assert(isProcessAlive(thisProcess()));
 * // Another host's pid 1 at start 0: nothing /proc here can say.
 * assert(isProcessAlive({ pid: 1, start: "0", host: "another host's boot" }));
 * ```
 */
export function isProcessAlive(mark: ProcessMark): boolean {
  // Another host's pid (or this host unknown) names no process /proc shows.
  if (mark.host !== undefined && mark.host !== hostId()) return true;
  // Another namespace's pid (or ours unknown) names no process we can see.
  if (mark.ns !== undefined && mark.ns !== pidNamespace()) return true;
  if (mark.pid === Deno.pid) {
    return mark.start === undefined || mark.start === selfStart();
  }
  if (Deno.build.os !== "linux") return true;
  const start = startTime(mark.pid);
  if (start === "gone") return false; // no such process
  if (start === undefined) return true; // cannot tell
  if (mark.start !== undefined) return mark.start === start;
  // A bare pid (an older lock): alive if that process is a Deno.
  try {
    return Deno.readTextFileSync(`/proc/${mark.pid}/cmdline`)
      .includes("deno");
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}
