/**
 * Test seams of `openInside` (run_ids.ts): each runs, when set, at its
 * moment of every open, so a test can swap a run folder for a link out at
 * exactly the instant a racing writer would, instead of hoping to hit it.
 * Never set outside tests.
 */
export const openHooks: {
  /** Between the path's check and the open. */
  afterCheck?: (path: string) => void | Promise<void>;
  /** Between the open and the check of what was opened. */
  afterOpen?: (path: string) => void | Promise<void>;
} = {};
