// The one rule for a run's --data path wherever a run's configuration is
// compared with another record of it or another run's (its config.json with
// its results.json or its sweep cell's): where a data.json identifies its
// data, the path is not what they are (data that moved are the same data, a
// file replaced at the same path is not) — the records are compared between
// runs (compareData, in checkMergeable); a run made before data records is
// compared by the path.
import { type OptionKey, RESUMABLE_KEYS, VERIFIED_KEYS } from "./options.ts";

/** The keys a comparison of two configurations of one run leaves out. */
export function ignoredKeys(verified: boolean): readonly OptionKey[] {
  return verified ? [...RESUMABLE_KEYS, ...VERIFIED_KEYS] : RESUMABLE_KEYS;
}
