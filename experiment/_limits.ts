/**
 * How the experiment reads a run's `results.json`: bounded, one limit for
 * every reader (loading a run, the judge, the merged report, the studies).
 *
 * @module
 */

/** The largest `results.json` any reader accepts, and what it is called. */
export const RESULTS_READ = {
  limit: 64 << 20,
  what: "results file",
} as const;
