/**
 * Which of the compared runs hold one of the comparison's few metrics
 * streams, and which streams to read again after the runs' states were
 * read: pure functions of the states, so the compare page's slot logic is
 * tested without a browser.
 *
 * @module
 */

/**
 * The compared runs (by index) that hold one of `max` streams, the runs'
 * states just read: a held run still live keeps its stream, one no longer
 * live lets go of it, and live runs not held take the free ones in order —
 * a run that became live after the comparison opened is promoted into a
 * stream a stopped run let go of.
 *
 * @param held The runs holding a stream before.
 * @param live Whether each run is live now (running, or held by a process).
 * @param max The most streams held at once.
 * @returns The runs holding a stream now.
 *
 * @example Run 1 stops: run 3, live and waiting, takes its stream
 * ```ts
 * import { heldStreams } from "./compare_slots.ts";
 * import { assertEquals } from "@std/assert";
 * const first = heldStreams(new Set(), [true, true, true, true], 3);
 * assertEquals([...first], [0, 1, 2]);
 * assertEquals([...heldStreams(first, [true, false, true, true], 3)].sort(), [0, 2, 3]);
 * ```
 */
export function heldStreams(
  held: ReadonlySet<number>,
  live: readonly boolean[],
  max: number,
): Set<number> {
  const now = new Set([...held].filter((i) => live[i]));
  live.forEach((isLive, i) => {
    if (isLive && now.size < max) now.add(i);
  });
  return now;
}

/** One compared run, before and after its state was read again. */
export interface ComparedRun {
  /** Its status before, and now (undefined: unreadable). */
  status: [before: string | undefined, now: string | undefined];
  /** Whether it held a stream before, and now. */
  held: [before: boolean, now: boolean];
  /** Whether it is live now. */
  live: boolean;
  /** Whether its stream has caught up with the log (was read to its end). */
  caught: boolean;
}

/**
 * Whether a compared run's stream is read again after a poll: a live run
 * (held: it follows on; not held: it reads what was added), one whose
 * status changed, one that took or let go of a stream, and one whose
 * stream never caught up (refused with a 503 by the server's bound).
 *
 * @param run The run, before and after the poll.
 * @returns Whether to refresh its stream.
 *
 * @example A stopped run read to its end is left alone; one promoted is read
 * ```ts
 * import { type ComparedRun, refreshStream } from "./compare_slots.ts";
 * import { assertEquals } from "@std/assert";
 * const stopped: ComparedRun = { status: ["stopped", "stopped"], held: [false, false], live: false, caught: true };
 * assertEquals(refreshStream(stopped), false);
 * const promoted: ComparedRun = { status: ["stopped", "running"], held: [false, true], live: true, caught: true };
 * assertEquals(refreshStream(promoted), true);
 * ```
 */
export function refreshStream(run: ComparedRun): boolean {
  return run.live || run.status[0] !== run.status[1] ||
    run.held[0] !== run.held[1] || !run.caught;
}
