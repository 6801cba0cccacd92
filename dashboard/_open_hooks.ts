/**
 * Test seams of `openInside` (run_ids.ts): each runs, when set, at its
 * moment of every open, so a test can swap a run folder for a link out at
 * exactly the instant a racing writer would, instead of hoping to hit it.
 * Never set outside tests.
 *
 * @example A file renamed over another between the check and the open, inside the root: served
 * ```ts
 * import { openHooks } from "./_open_hooks.ts";
 * import { openInside } from "./run_ids.ts";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${root}/a.txt`, "a");
 * await Deno.writeTextFile(`${root}/b.txt`, "b");
 * openHooks.afterCheck = () => Deno.rename(`${root}/b.txt`, `${root}/a.txt`);
 * const opened = await openInside(root, `${root}/a.txt`);
 * delete openHooks.afterCheck;
 * // What was opened lies inside: served (open_race_test.ts swaps in a link out).
 * assertEquals(opened?.info.size, 1);
 * opened?.file.close();
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export const openHooks: {
  /** Between the path's check and the open. */
  afterCheck?: (path: string) => void | Promise<void>;
  /** Between the open and the check of what was opened. */
  afterOpen?: (path: string) => void | Promise<void>;
  /** Before `openRunFolder` opens a run folder (its real path). */
  beforeFolderOpen?: (dir: string) => void | Promise<void>;
  /** Once `openRunFolder` opened a run folder, before any file of it is read. */
  afterFolderOpen?: (dir: string) => void | Promise<void>;
} = {};
