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
   * Its host's boot (`/proc/sys/kernel/random/boot_id`, a new one at every
   * boot), where known: its pid means nothing on another host, nor after a
   * reboot — every Linux host's first pid namespace has the same inode, so
   * `ns` alone cannot tell two nodes of a cluster sharing a folder apart.
   * Only a boot id (a UUID) counts: anything else (a host's name, written
   * as a fallback by a development version) is taken as unknown.
   */
  host?: string;
  /**
   * Its host's name (`Deno.hostname()`), where known: with the boot id, it
   * tells another host (another name: cannot be judged here) from this
   * host before a reboot (this name, another boot: gone).
   */
  hostname?: string;
  /**
   * When the mark was taken (ms since the epoch; a process takes it when it
   * starts), where known: a mark of this host's name and another boot taken
   * after this host booted is another machine of the same name (cloned
   * images, every VM named `vm`), not this one before a reboot.
   */
  since?: number;
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

/** A boot id: a UUID, as `/proc/sys/kernel/random/boot_id` holds it. */
const BOOT_ID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * This host's boot (`/proc/sys/kernel/random/boot_id`), or undefined where
 * it cannot be read (not Linux, no read access to /proc): never the host's
 * name, which two processes of one host would then record differently.
 */
function bootId(): string | undefined {
  try {
    const id = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
    return BOOT_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
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
  const host = bootId(), hostname = hostName();
  return {
    pid: Deno.pid,
    ...(start ? { start } : {}),
    ...(ns ? { ns } : {}),
    ...(host ? { host } : {}),
    ...(hostname ? { hostname } : {}),
    since: Date.now(),
  };
}

/**
 * When this host booted (`btime` of `/proc/stat`, ms since the epoch), or
 * undefined where it cannot be read: a file written since then by a process
 * of another boot id was written by another machine.
 *
 * @returns The time, or undefined.
 *
 * @example
 * ```ts
 * import { bootTime } from "@d3pm/core";
 * import { assert } from "@std/assert";
 * const t = bootTime();
 * assert(t === undefined || t <= Date.now());
 * ```
 */
export function bootTime(): number | undefined {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")
      .find((l) => l.startsWith("btime "));
    const seconds = Number(line?.slice(6));
    return line && Number.isFinite(seconds) ? seconds * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Which host a mark's process ran on, as far as this process can tell:
 * - `"another"`: both host names are known and differ — a cluster node
 *   sharing the folder; its pid names nothing here.
 * - `"earlier boot"`: this host's name, but another boot id — this host
 *   before a reboot, which ended every process it ran. Unless the mark was
 *   taken after this host booted (`since`): then it is `"another"`, a
 *   machine of the same name.
 * - `"unknown"`: another boot id, but a host name is unknown on one side:
 *   another host, or this one before a reboot, cannot be told.
 * - `"this"`: otherwise (the same boot, or a boot or name not recorded — a
 *   mark of an older version, or a system that does not tell).
 *
 * A `host` that is not a boot id (a UUID) counts as unknown.
 *
 * @param mark The process, as a file named it.
 * @returns Where it ran.
 *
 * @example
 * ```ts
 * import { markHost, thisProcess } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const me = thisProcess();
 * assertEquals(markHost(me), "this");
 * assertEquals(markHost({ pid: 1, hostname: `not-${me.hostname}` }), me.hostname ? "another" : "this");
 * // This host's name, another boot, marked since this host booted: a twin.
 * const boot = "00000000-0000-4000-8000-000000000000";
 * const twin = { pid: 1, host: boot, hostname: me.hostname, since: Date.now() };
 * assertEquals(markHost(twin), me.hostname && me.host ? "another" : "this");
 * ```
 */
export function markHost(
  mark: ProcessMark,
): "this" | "another" | "earlier boot" | "unknown" {
  const hostname = hostName();
  const names = mark.hostname !== undefined && hostname !== undefined;
  if (names && mark.hostname !== hostname) return "another";
  const boot = bootId();
  const theirs = mark.host !== undefined && BOOT_ID.test(mark.host)
    ? mark.host.toLowerCase()
    : undefined;
  if (theirs === undefined || boot === undefined) return "this";
  if (theirs === boot.toLowerCase()) return "this";
  if (!names) return "unknown";
  // Taken since this host booted: not its earlier boot, another machine.
  const booted = bootTime();
  return mark.since !== undefined && booted !== undefined &&
      mark.since >= booted
    ? "another"
    : "earlier boot";
}

/**
 * Whether the process a mark names still runs: on Linux its pid must exist
 * and, where the mark recorded one, have the same start time (a reused pid
 * is another process); a bare pid is alive if that process is a Deno. A
 * process of this host's name before its last boot is gone (a reboot ends
 * every process). Whatever cannot be told is taken to be alive: another
 * host's process ({@linkcode markHost}: another host name, or another boot
 * where a name is unknown), another pid namespace's (a mark whose `ns`
 * differs from this process's), a /proc that cannot be read (any error but
 * `NotFound`), any system but Linux.
 *
 * @param mark The process, as a file named it.
 * @returns False only when it is known to be gone: this host before a
 *   reboot, no such pid in this namespace on this host, another start
 *   time, or (a bare pid) not a Deno.
 *
 * @example
 * ```ts
 * import { isProcessAlive, thisProcess } from "@d3pm/core";
 * import { assert } from "@std/assert";
 * assert(isProcessAlive(thisProcess()));
 * // Another host's pid 1 at start 0: nothing /proc here can say.
 * assert(isProcessAlive({ pid: 1, start: "0", hostname: "another host" }));
 * ```
 */
export function isProcessAlive(mark: ProcessMark): boolean {
  const host = markHost(mark);
  if (host === "earlier boot") return false;
  // Another host's pid (or one that cannot be placed) names no process
  // /proc shows.
  if (host !== "this") return true;
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
