// The compare page's streams: at most 3 held, given to runs as they become
// live (promoted into a stream a stopped run let go of), and which streams
// are read again after the runs' states are read every 5 s.
import { assertEquals } from "@std/assert";
import {
  type ComparedRun,
  heldStreams,
  refreshStream,
} from "./compare_slots.ts";

const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);

Deno.test("heldStreams() gives at most max streams to live runs, in order, and none to a run not live", () => {
  assertEquals(
    sorted(heldStreams(new Set(), [true, false, true, true, true], 3)),
    [0, 2, 3],
  );
  assertEquals(sorted(heldStreams(new Set(), [false, false], 3)), []);
});

Deno.test("heldStreams() promotes a run that became live after the comparison opened into the stream a stopped run let go of", () => {
  // Runs 0-2 live and held, run 3 stopped.
  let held = heldStreams(new Set(), [true, true, true, false], 3);
  assertEquals(sorted(held), [0, 1, 2]);
  // Run 3 resumed: live, but no stream is free, so it waits.
  held = heldStreams(held, [true, true, true, true], 3);
  assertEquals(sorted(held), [0, 1, 2]);
  // Run 1 finished: its stream goes to run 3.
  held = heldStreams(held, [true, false, true, true], 3);
  assertEquals(sorted(held), [0, 2, 3]);
  // Run 1 resumed again: the streams are taken, and run 3 keeps its own
  // (a run earlier in the list takes none from a held one).
  held = heldStreams(held, [true, true, true, true], 3);
  assertEquals(sorted(held), [0, 2, 3]);
  // Everything stopped: every stream let go of.
  assertEquals(sorted(heldStreams(held, [false, false, false, false], 3)), []);
});

Deno.test("refreshStream() reads again a promoted, live, changed or not caught-up run's stream, and leaves a stopped one read to its end", () => {
  const stopped: ComparedRun = {
    status: ["stopped", "stopped"],
    held: [false, false],
    live: false,
    caught: true,
  };
  assertEquals(refreshStream(stopped), false);
  assertEquals(refreshStream({ ...stopped, caught: false }), true);
  assertEquals(
    refreshStream({
      ...stopped,
      status: ["running", "stopped"],
      held: [true, false],
    }),
    true,
  );
  assertEquals(
    refreshStream({ ...stopped, status: ["stopped", "finished"] }),
    true,
  );
  // Promoted: live now, and holding a stream it did not.
  assertEquals(
    refreshStream({
      status: ["running", "running"],
      held: [false, true],
      live: true,
      caught: true,
    }),
    true,
  );
  // Let go of while its status read the same (another took the stream).
  assertEquals(refreshStream({ ...stopped, held: [true, false] }), true);
  // Live alone: running before and after, holding no stream before or
  // after, caught up — it reads what was added since.
  assertEquals(
    refreshStream({
      status: ["running", "running"],
      held: [false, false],
      live: true,
      caught: true,
    }),
    true,
  );
});
