// The CBLAS's own thread count held at one while kernels run: the kernels
// split products over their threads, each calling a single-threaded CBLAS.
// The count is process state shared by every set of kernels, so it is held,
// not set: the first hold saves it and sets 1, the last release restores it
// (kernels with overlapping lives used to restore it under each other,
// leaving a live engine's threads calling a threaded OpenBLAS at once).
// Private.

import { type BlasThreads, blasThreads } from "@d3pm/backend/cblas";

interface Hold {
  control: BlasThreads;
  before: number;
  holders: number;
}

const holds = new Map<string, Hold>();

/**
 * Hold the library at `path` at one thread until the returned release is
 * called; the count in force before the first hold comes back after the last
 * release. Null if the library has no thread control.
 */
export function holdSingleThreaded(path: string): (() => void) | null {
  let hold = holds.get(path);
  if (hold === undefined) {
    const control = blasThreads(path);
    if (control === null) return null;
    hold = { control, before: control.get(), holders: 0 };
    control.set(1);
    holds.set(path, hold);
  }
  const h = hold;
  h.holders++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--h.holders > 0) return;
    holds.delete(path);
    h.control.set(h.before);
    h.control.close();
  };
}
