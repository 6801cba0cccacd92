/**
 * Points where a test steps into the run folder's work between two of its
 * steps, deterministically (another process's file vanishing between a
 * listing and a rename, or its lock taken between this one's takeover and
 * retry). None is set in use.
 *
 * @module
 */

/** The hooks; each is called, when set, at the point it names. */
export const hooks: {
  /**
   * `--force`: after the folder's entries to move aside were listed, before
   * the first is moved.
   */
  beforeMoveAside?: (dir: string, names: readonly string[]) => void;
  /**
   * A stale lock's takeover: after the lock was read and judged stale,
   * before it is removed.
   */
  beforeTakeover?: (path: string) => void;
  /**
   * `RunFolder.lock`: before each attempt to create the lock (attempt 0,
   * then 1 after a stale lock was taken over or an attempt's file vanished),
   * where another process may take the path first.
   */
  beforeLockAttempt?: (path: string, attempt: number) => void;
} = {};
