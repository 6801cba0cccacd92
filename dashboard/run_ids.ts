/**
 * Run ids: the only way a page names a run. An id is the run folder's path
 * relative to the served root, `/`-separated plain names (`tiny-main`,
 * `sweep-lr/run-3`); the server resolves it inside the root and nowhere
 * else. Anything else — `..`, an absolute path, a backslash, a control
 * character, an empty segment, a name starting with a dot — is refused
 * before the disk is touched, and a folder that resolves (through a
 * symlink) outside the root is not found.
 *
 * @module
 */

import { isInside, kindOf } from "@d3pm/core";
import { openHooks } from "./_open_hooks.ts";

/**
 * A run id that is not well formed (the server answers 400).
 *
 * @example Its message names the id and what an id may be
 * ```ts
 * import { BadRunIdError, checkRunId } from "@d3pm/dashboard";
 * import { assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
 * const e = assertThrows(() => checkRunId("runs/.hidden"), BadRunIdError);
 * assertEquals(e.name, "BadRunIdError");
 * assertStringIncludes(e.message, 'Bad run id "runs/.hidden": ');
 * assertStringIncludes(e.message, "(an id is names of letters, digits, spaces and . _ - = , + joined by '/', each starting with a letter, a digit or '_', as /api/runs lists them)");
 * ```
 */
export class BadRunIdError extends Error {
  /**
   * An error naming the id and what an id may be.
   *
   * @param id The id as given.
   * @param why What is wrong with it.
   */
  constructor(id: string, why: string) {
    super(
      `Bad run id ${
        JSON.stringify(id.slice(0, 80))
      }: ${why} (${ID_RULE}, as /api/runs lists them)`,
    );
    this.name = "BadRunIdError";
  }
}

/**
 * A name an id may carry: letters (any script), digits, spaces and
 * `. _ - = , +`, starting with a letter, a digit or `_` — so `run 1`,
 * `lr=0.001,bs=4` and `résumé` are runs, while a hidden name (`.x`), one
 * read as an option (`-x`), and `/ \ % # ? &`, quotes and control
 * characters are not.
 */
const NAME = /^[\p{L}\p{N}_][\p{L}\p{M}\p{N} ._=,+-]*$/u;
const ID_RULE =
  "an id is names of letters, digits, spaces and . _ - = , + joined by '/', each starting with a letter, a digit or '_'";
/** The temporary folder of an export or import being written (`@d3pm/hf`). */
const PARTIAL =
  /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.partial$/;
/** Deepest nesting of run folders under the root (a sweep's runs are at depth 2). */
export const MAX_RUN_DEPTH = 3;

/**
 * Check the form of a run id (no disk access).
 *
 * @param id The id, already URL-decoded.
 * @returns Its segments.
 * @throws {BadRunIdError} When it is not a relative path of plain names.
 *
 * @example
 * ```ts
 * import { BadRunIdError, checkRunId } from "@d3pm/dashboard";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(checkRunId("sweep/run-1"), ["sweep", "run-1"]);
 * assertEquals(checkRunId("lr=0.001,bs=4/run 1"), ["lr=0.001,bs=4", "run 1"]);
 * assertThrows(() => checkRunId("run#1"), BadRunIdError, 'segment "run#1" has "#", outside letters, digits, spaces and . _ - = , +');
 * assertThrows(() => checkRunId("../etc"), BadRunIdError);
 * assertThrows(() => checkRunId("/etc/passwd"), BadRunIdError);
 * ```
 */
export function checkRunId(id: string): string[] {
  if (id.length === 0) throw new BadRunIdError(id, "it is empty");
  if (id.length > 512) throw new BadRunIdError(id, "it is over 512 characters");
  if (id.startsWith("/")) {
    throw new BadRunIdError(id, "it is an absolute path");
  }
  const parts = id.split("/");
  if (parts.length > MAX_RUN_DEPTH) {
    throw new BadRunIdError(id, `it is deeper than ${MAX_RUN_DEPTH} folders`);
  }
  for (const p of parts) {
    if (p === "." || p === "..") {
      throw new BadRunIdError(id, `it has a "${p}" segment`);
    }
    if (!NAME.test(p)) {
      throw new BadRunIdError(
        id,
        p === ""
          ? "it has an empty segment"
          : `segment ${JSON.stringify(p.slice(0, 40))} ${nameFault(p)}`,
      );
    }
  }
  return parts;
}

/** What is wrong with a name {@linkcode NAME} refuses, in words. */
function nameFault(name: string): string {
  const first = [...name][0] ?? "";
  if (!/^[\p{L}\p{N}_]$/u.test(first)) {
    return `starts with ${JSON.stringify(first)}, not a letter, a digit or '_'`;
  }
  const odd = [...new Set([...name].filter((c) => !NAME.test(`a${c}`)))];
  return `has ${
    odd.slice(0, 5).map((c) => JSON.stringify(c)).join(", ")
  }, outside letters, digits, spaces and . _ - = , +`;
}

/**
 * A run folder with a symlink in it that resolves outside it: the server
 * reads nothing of such a run (its `results.json`, `data.json`, a model's
 * folder were read through the link, and a damaged one quoted in the
 * reason it is corrupt), and answers 404 naming the link.
 *
 * @example
 * ```ts
 * import { RunLinksOutError } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const e = new RunLinksOutError("main", "results.json");
 * assertEquals(e.message, 'Run "main" is not served: results.json is a link out of the run folder (the dashboard reads only what lies inside a run); replace the link with the file');
 * ```
 */
export class RunLinksOutError extends Error {
  /**
   * The error naming the run and the link.
   *
   * @param id The run's id.
   * @param link The link, relative to the run folder.
   */
  constructor(readonly id: string, readonly link: string) {
    super(
      `Run ${
        JSON.stringify(id)
      } is not served: ${link} is a link out of the run folder (the dashboard reads only what lies inside a run); replace the link with the file`,
    );
    this.name = "RunLinksOutError";
  }
}

/**
 * A run folder whose links could not all be checked: a folder in it could
 * not be read (out of file descriptors, no permission to list it — its
 * files can still be opened by name), it holds more than
 * {@linkcode MAX_RUN_ENTRIES} entries, or it nests folders deeper than
 * {@linkcode MAX_WALK_DEPTH}. Such a walk is no clean verdict: the run is
 * not served (404, or 503 for a folder that could not be read, which may
 * pass) and the verdict is not kept.
 *
 * @example
 * ```ts
 * import { RunUncheckedError } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const e = new RunUncheckedError("main", "it holds more than 10,000 files and folders", false);
 * assertEquals(e.message, 'Run "main" is not served: it holds more than 10,000 files and folders');
 * ```
 */
export class RunUncheckedError extends Error {
  /**
   * The error naming the run and why it could not be checked.
   *
   * @param id The run's id.
   * @param why Why its links could not all be checked.
   * @param transient Whether a later try may pass (a folder not read).
   */
  constructor(
    readonly id: string,
    readonly why: string,
    readonly transient: boolean,
  ) {
    super(`Run ${JSON.stringify(id)} is not served: ${why}`);
    this.name = "RunUncheckedError";
  }
}

/**
 * Entries of a run folder looked at for links out, at most (more: not served).
 *
 * @example
 * ```ts
 * import { MAX_RUN_ENTRIES } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(MAX_RUN_ENTRIES, 10_000);
 * ```
 */
export const MAX_RUN_ENTRIES = 10_000;
/**
 * Folders below a run folder walked for links out, at most (a run's deepest
 * is `seed-N/KIND/best`, 3; a folder deeper than this: not served).
 *
 * @example
 * ```ts
 * import { linkOutOfRun, MAX_WALK_DEPTH, RunUncheckedError } from "@d3pm/dashboard";
 * import { assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * const deep = Array.from({ length: MAX_WALK_DEPTH + 1 }, (_, i) => `n${i}`);
 * await Deno.mkdir(`${dir}/${deep.join("/")}`, { recursive: true });
 * await assertRejects(() => linkOutOfRun(dir), RunUncheckedError, "deep");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export const MAX_WALK_DEPTH = 8;

/** A walk cut off: not a verdict. */
class Cut extends Error {
  constructor(readonly why: string, readonly transient: boolean) {
    super(why);
  }
}

/**
 * The first symlink in a run folder, anywhere in it, that resolves outside
 * it; a dangling link reads nothing and is not named. Every folder of the
 * run is walked (a link to a folder inside is not followed: its target is
 * walked where it lies), so no path through the run reaches a file outside
 * unnoticed. A walk that cannot see everything — a folder that cannot be
 * read, more than {@linkcode MAX_RUN_ENTRIES} entries, folders nested more
 * than {@linkcode MAX_WALK_DEPTH} deep — throws {@linkcode RunUncheckedError}
 * instead of a verdict. A folder found clean is
 * not walked again while every folder walked keeps its device, inode,
 * mtime and ctime (an entry added, removed or renamed anywhere walked
 * changes its folder's) and each link in it still resolves inside it or
 * nowhere: one `lstat` per folder and one `realPath` per link instead of
 * reading every folder. Folders changed within 2 s of a walk are not
 * trusted to show a later change (coarse file times) and are walked again.
 *
 * @param dir The run folder (a real path).
 * @param id The run's id, for the error (default: `dir`).
 * @returns The link's path relative to `dir`, or undefined.
 * @throws {RunUncheckedError} When the walk could not see the whole run.
 *
 * @example
 * ```ts
 * import { linkOutOfRun, RunUncheckedError } from "@d3pm/dashboard";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.mkdir(`${dir}/seed-0/ar`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/report.md`, "# r");
 * await Deno.symlink(`${dir}/report.md`, `${dir}/seed-0/ar/inside.md`);
 * assertEquals(await linkOutOfRun(dir), undefined);
 * await Deno.symlink("/etc/hostname", `${dir}/seed-0/ar/process.json`);
 * assertEquals(await linkOutOfRun(dir), "seed-0/ar/process.json");
 * await Deno.remove(`${dir}/seed-0/ar/process.json`);
 * await Deno.mkdir(`${dir}/a/b/c/d/e/f/g/h/i`, { recursive: true });
 * await assertRejects(() => linkOutOfRun(dir, "main"), RunUncheckedError, 'Run "main" is not served: it nests folders more than 8 deep (a/b/c/d/e/f/g/h/i)');
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function linkOutOfRun(
  dir: string,
  id: string = dir,
): Promise<string | undefined> {
  const known = CLEAN.get(dir);
  if (known && stillClean(dir, known)) return undefined;
  CLEAN.delete(dir);
  try {
    return await walkRun(dir);
  } catch (e) {
    if (!(e instanceof Cut)) throw e;
    if (!e.transient) throw new RunUncheckedError(id, e.why, false);
  }
  // A folder that could not be read: once more (a folder renamed or
  // removed while walked), then refused.
  try {
    return await walkRun(dir);
  } catch (e) {
    if (!(e instanceof Cut)) throw e;
    throw new RunUncheckedError(id, e.why, e.transient);
  }
}

/** {@linkcode linkOutOfRun}'s walk; its verdict kept when clean and settled. */
async function walkRun(dir: string): Promise<string | undefined> {
  const started = Date.now();
  let seen = 0;
  const folders: string[] = [];
  const signatures: Promise<string | undefined>[] = [];
  const links: string[] = [];
  const walk = async (
    sub: string,
    depth: number,
  ): Promise<string | undefined> => {
    const path = sub ? `${dir}/${sub}` : dir;
    // Its signature before its entries: a change after it shows as a new one.
    folders.push(path);
    signatures.push(signature(path, started));
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const e of Deno.readDir(path)) {
        if (++seen > MAX_RUN_ENTRIES) {
          throw new Cut(
            `it holds more than ${
              MAX_RUN_ENTRIES.toLocaleString("en-US")
            } files and folders, more than the dashboard checks for links out of a run`,
            false,
          );
        }
        entries.push(e);
      }
    } catch (e) {
      if (e instanceof Cut) throw e;
      // An unread folder may hide a link out (a folder without read
      // permission still opens its files by name): no verdict.
      const code = (e as { code?: string }).code ?? (e as Error).name;
      throw new Cut(
        `its folder ${
          sub || "."
        } could not be read (${code}), so its links could not be checked; try again`,
        true,
      );
    }
    for (const e of entries.sort((a, b) => a.name < b.name ? -1 : 1)) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      if (e.isSymlink) {
        links.push(rel);
        let real: string;
        try {
          real = await Deno.realPath(`${dir}/${rel}`);
        } catch {
          continue; // dangling
        }
        if (!isInside(dir, real)) return rel;
      } else if (e.isDirectory) {
        if (depth >= MAX_WALK_DEPTH) {
          throw new Cut(
            `it nests folders more than ${MAX_WALK_DEPTH} deep (${rel}), deeper than the dashboard checks for links out of a run`,
            false,
          );
        }
        const found = await walk(rel, depth + 1);
        if (found) return found;
      }
    }
    return undefined;
  };
  const found = await walk("", 0);
  const sigs = await Promise.all(signatures);
  // Only a clean verdict over every entry is kept (a cut walk threw), and
  // only when no folder walked changed too recently for its times to tell
  // a later change.
  if (found === undefined && sigs.every((x) => x !== undefined)) {
    if (CLEAN.size >= MAX_CLEAN) CLEAN.clear();
    CLEAN.set(dir, { folders, signatures: sigs as string[], links });
  }
  return found;
}

/** A run folder found clean: the folders walked, their signatures, its links (all inside or dangling). */
interface Clean {
  folders: string[];
  signatures: string[];
  links: string[];
}

/** Run folders found clean, by real path (at most {@linkcode MAX_CLEAN}; then it starts again). */
const CLEAN = new Map<string, Clean>();
const MAX_CLEAN = 4096;

/**
 * Times older than this before a walk are trusted to show any later change:
 * the file system's clock ticks coarsely and Deno gives `ctime` in whole
 * seconds, so a change within the same second as the last one could leave
 * a folder's times as they were.
 */
const SETTLED_MS = 2_000;

/**
 * What identifies a folder's entries as they are: device, inode, mtime
 * (entries added, removed, renamed — a link added inside it too) and ctime
 * (its permissions as well, which decide whether it reads). Undefined when
 * it cannot be read or changed less than {@linkcode SETTLED_MS} before
 * `before` (not trusted, so not kept).
 */
async function signature(
  path: string,
  before: number,
): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch {
    return undefined;
  }
  const m = info.mtime?.getTime(), c = info.ctime?.getTime();
  if (
    m === undefined || c === undefined ||
    m > before - SETTLED_MS || c > before - SETTLED_MS
  ) return undefined;
  return signatureOf(info);
}

function signatureOf(info: Deno.FileInfo): string | undefined {
  const m = info.mtime?.getTime(), c = info.ctime?.getTime();
  if (m === undefined || c === undefined || info.ino === null) return undefined;
  return `${info.dev}:${info.ino}:${m}:${c}:${info.mode}`;
}

/** {@linkcode signature} without its age check, synchronously. */
function signatureSync(path: string): string | undefined {
  try {
    return signatureOf(Deno.lstatSync(path));
  } catch {
    return undefined;
  }
}

/**
 * Whether a folder found clean still is: every folder walked has its
 * signature (no entry added, removed, renamed, no permission changed), and
 * every link in it is still dangling or resolves inside it (its target may
 * have changed with nothing walked changing).
 */
function stillClean(dir: string, known: Clean): boolean {
  // Synchronous: an lstat of a folder just walked is a few microseconds,
  // while an asynchronous call costs the thread-pool round trip a readDir
  // costs, and so saved nothing (dashboard/load_test.ts).
  for (let i = 0; i < known.folders.length; i++) {
    if (signatureSync(known.folders[i]) !== known.signatures[i]) return false;
  }
  for (const rel of known.links) {
    let real: string;
    try {
      real = Deno.realPathSync(`${dir}/${rel}`); // a link: rare
    } catch {
      continue; // dangling
    }
    if (!isInside(dir, real)) return false;
  }
  return true;
}

// lstat, not core's pathExists: a config.json link, dangling too, makes a run.
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The folder of run `id` under `root`, when it is a run folder (it holds a
 * `config.json`) that really lies inside the root, not inside another run
 * (a model's folder, `RUN/seed-0/ar`, holds a `config.json` too).
 *
 * @param root The served root.
 * @param id The run id.
 * @returns The folder's real path, or undefined when there is no such run
 *   (or it resolves outside the root).
 * @throws {BadRunIdError} When the id is not well formed.
 * @throws {RunLinksOutError} When the run holds a link out of it.
 * @throws {RunUncheckedError} When its links could not all be checked.
 *
 * @example
 * ```ts
 * import { resolveRun } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/a`);
 * await Deno.writeTextFile(`${root}/a/config.json`, "{}");
 * assertEquals(await resolveRun(root, "a"), `${await Deno.realPath(root)}/a`);
 * assertEquals(await resolveRun(root, "b"), undefined);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function resolveRun(
  root: string,
  id: string,
): Promise<string | undefined> {
  const parts = checkRunId(id);
  let realRoot: string, real: string;
  try {
    realRoot = await Deno.realPath(root);
    real = await Deno.realPath(`${root}/${id}`);
  } catch {
    return undefined;
  }
  if (!isInside(realRoot, real) || real === realRoot) return undefined;
  if (!(await exists(`${real}/config.json`))) return undefined;
  for (let i = 1; i < parts.length; i++) {
    // Inside a run: a model's folder, not a run.
    if (await exists(`${root}/${parts.slice(0, i).join("/")}/config.json`)) {
      return undefined;
    }
  }
  const link = await linkOutOfRun(real, id);
  if (link !== undefined) throw new RunLinksOutError(id, link);
  return real;
}

/**
 * The real path of a regular file when it lies inside `root` (a symlink
 * pointing out of the root, a folder or a device is not served).
 *
 * @param root The root it must lie in (a real path).
 * @param path The file.
 * @returns Its real path, or undefined.
 *
 * @example
 * ```ts
 * import { insideFile } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${root}/x.txt`, "x");
 * await Deno.symlink("/etc/hostname", `${root}/out`);
 * assertEquals(await insideFile(root, `${root}/x.txt`), `${root}/x.txt`);
 * assertEquals(await insideFile(root, `${root}/out`), undefined);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function insideFile(
  root: string,
  path: string,
): Promise<string | undefined> {
  try {
    const real = await Deno.realPath(path);
    if (!isInside(root, real)) return undefined;
    const info = await Deno.stat(real);
    return info.isFile ? real : undefined;
  } catch {
    return undefined;
  }
}

/** A file {@linkcode openInside} opened: the handle, its real path, what its handle's `stat()` gave. */
export interface InsideFile {
  /** The open file (the caller closes it, or reads its `readable` to the end). */
  file: Deno.FsFile;
  /** Its real path, inside the root. */
  real: string;
  /** Its handle's `stat()`: the size and identity of what was opened. */
  info: Deno.FileInfo;
}

/**
 * Open a regular file that lies inside `root`, and check, once it is open,
 * that what was opened is that file: the routes that serve a run's file
 * (the file, model, unmasking routes, the followed metrics log) read it
 * through this, never by opening a path they checked before; the routes
 * that read the run as a whole (`/api/run`, the run list, the vocabulary,
 * tokenizing, a generation's model) read it under the run folder opened
 * once ({@linkcode openRunFolder}). A check and then an open
 * by path opened whatever the path led to by then: a run folder swapped for
 * a link to an outside folder between the two (`renameat2` with
 * `RENAME_EXCHANGE`) served the outside folder's `report.md`. Here the path
 * is checked as {@linkcode insideFile} does (so a FIFO or device is never
 * opened), opened, and then the open file itself is placed: on Linux by
 * where the kernel says it is (`/proc/self/fd`: every descriptor of this
 * process open on that device and inode must lie inside the root), so no
 * swap of a folder on the path, however fast, passes; elsewhere by
 * resolving the path again (the handle's device and inode must be those of
 * the regular file it now leads to, inside the root — a swapper flipping
 * three times within those microseconds would pass). Any difference closes
 * the handle and answers undefined.
 *
 * @param root The root it must lie in (a real path).
 * @param path The file.
 * @returns The open file, or undefined when it is missing, not a regular
 *   file, outside the root, or was not the file checked.
 *
 * @example
 * ```ts
 * import { openInside } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${root}/x.txt`, "x");
 * await Deno.symlink("/etc/hostname", `${root}/out`);
 * const opened = await openInside(root, `${root}/x.txt`);
 * assertEquals([opened?.real, opened?.info.size], [`${root}/x.txt`, 1]);
 * opened?.file.close();
 * assertEquals(await openInside(root, `${root}/out`), undefined);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function openInside(
  root: string,
  path: string,
): Promise<InsideFile | undefined> {
  const real = await insideFile(root, path);
  if (real === undefined) return undefined;
  await openHooks.afterCheck?.(path);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(real, { read: true });
  } catch {
    return undefined; // gone in between
  }
  try {
    await openHooks.afterOpen?.(path);
    const info = await file.stat();
    if (info.isFile && openedInside(root, path, info)) {
      return { file, real, info };
    }
  } catch {
    // closed below
  }
  file.close();
  return undefined;
}

/**
 * Whether the file opened (its handle's `info`) lies inside `root`. Where
 * the kernel says where each open file is (`/proc/self/fd` on Linux), that
 * decides: every descriptor of this process open on the file must lie
 * inside — a swap of the run folder can change what a path leads to at any
 * instant, not where an open file is. Elsewhere the path is resolved again
 * and must lead to the same file ({@linkcode sameFileInside}).
 */
function openedInside(
  root: string,
  path: string,
  info: Deno.FileInfo,
): boolean {
  const where = Deno.build.os === "linux" ? openPaths(info) : undefined;
  if (where === undefined) return sameFileInside(root, path, info);
  return where.length > 0 && where.every((p) => isInside(root, p));
}

/**
 * Where the kernel says this process's open descriptors of the file `info`
 * describes are (undefined without `/proc`). Each descriptor is matched by
 * device and inode before and after its link is read, so one closed and
 * reused meanwhile is not taken for it.
 */
function openPaths(info: Deno.FileInfo): string[] | undefined {
  const key = `${info.dev}:${info.ino}`;
  const fds = descriptors();
  if (fds === undefined) return undefined;
  const paths: string[] = [];
  for (const [fd, k] of fds) {
    if (k !== key) continue;
    const p = `/proc/self/fd/${fd}`;
    try {
      const link = Deno.readLinkSync(p);
      const s = Deno.statSync(p);
      if (s.dev === info.dev && s.ino === info.ino) {
        paths.push(link.replace(/ \(deleted\)$/, ""));
      }
    } catch {
      // closed meanwhile
    }
  }
  return paths;
}

/** Whether `path` resolves, now, to the regular file `opened` inside `root`. */
function sameFileInside(
  root: string,
  path: string,
  opened: Deno.FileInfo,
): boolean {
  try {
    const real = Deno.realPathSync(path);
    if (!isInside(root, real)) return false;
    // lstat: `real` has no link left in it, unless one was swapped in since.
    const now = Deno.lstatSync(real);
    if (
      !now.isFile || now.dev !== opened.dev || now.ino !== opened.ino
    ) return false;
    return Deno.realPathSync(path) === real;
  } catch {
    return false;
  }
}

/** A run folder {@linkcode openRunFolder} opened. */
export interface OpenedRunFolder {
  /**
   * The folder to read its files under: on Linux `/proc/self/fd/N`, the
   * opened folder itself (a path through it resolves from the folder's
   * inode, whatever is renamed on the path it was opened by); elsewhere
   * the folder's path (each file's own checks then stand alone).
   */
  at: string;
  /** Close it, once every read under `at` is done. */
  close(): void;
}

/**
 * Open a run folder (a real path {@linkcode resolveRun} gave) once, for a
 * request to read its files through. A route that read `${dir}/config.json`
 * and its other files by path read whatever the path led to by then: the
 * folder swapped for a link to an outside folder shaped like a run
 * (`renameat2` with `RENAME_EXCHANGE` in a loop) had `/api/run` serve the
 * outside folder's config in a third to a half of its answers. Read under
 * the returned `at`, every file comes from the folder opened here, which
 * lay at `dir` when it was opened (the kernel's `/proc/self/fd` link names
 * it; a swap before the open opened the outside folder: refused). This
 * process's descriptor of it is told from any other open on the same
 * folder by the descriptor table before and after the open (both read
 * with no await between).
 *
 * @param dir The run folder's real path.
 * @returns The opened folder, or undefined when `dir` no longer leads to
 *   that folder (or is gone).
 *
 * @example
 * ```ts
 * import { openRunFolder } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${dir}/config.json`, "{}");
 * const opened = await openRunFolder(dir);
 * // Renamed away after the open: still read through `at`.
 * await Deno.rename(dir, `${dir}-moved`);
 * assertEquals(await Deno.readTextFile(`${opened!.at}/config.json`), "{}");
 * opened!.close();
 * assertEquals(await openRunFolder(dir), undefined); // nothing at dir now
 * await Deno.remove(`${dir}-moved`, { recursive: true });
 * ```
 */
export async function openRunFolder(
  dir: string,
): Promise<OpenedRunFolder | undefined> {
  await openHooks.beforeFolderOpen?.(dir);
  const byPath = { at: dir, close() {} };
  // Read synchronously from here on: no other request opens or closes a
  // descriptor of this process's JavaScript in between.
  const before = Deno.build.os === "linux" ? descriptors() : undefined;
  if (before === undefined) {
    return (await Deno.stat(dir).catch(() => undefined))?.isDirectory
      ? byPath
      : undefined;
  }
  let folder: Deno.FsFile;
  try {
    folder = Deno.openSync(dir, { read: true });
  } catch {
    return undefined;
  }
  try {
    const info = folder.statSync();
    const key = `${info.dev}:${info.ino}`;
    const mine = [...(descriptors() ?? [])].filter(([fd, k]) =>
      k === key && before.get(fd) !== key
    );
    if (info.isDirectory && mine.length === 1) {
      const at = `/proc/self/fd/${mine[0][0]}`;
      if (Deno.readLinkSync(at) === dir) {
        await openHooks.afterFolderOpen?.(dir);
        return { at, close: () => folder.close() };
      }
    }
  } catch {
    // closed below
  }
  folder.close();
  return undefined;
}

/** This process's descriptors, each with its file's `dev:ino` (undefined without `/proc`). */
function descriptors(): Map<string, string> | undefined {
  let fds: string[];
  try {
    fds = [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name);
  } catch {
    return undefined;
  }
  const out = new Map<string, string>();
  for (const fd of fds) {
    try {
      const s = Deno.statSync(`/proc/self/fd/${fd}`);
      out.set(fd, `${s.dev}:${s.ino}`);
    } catch {
      // closed meanwhile, or not a file
    }
  }
  return out;
}

/** A folder {@linkcode findRuns} skipped for its name (hidden ones aside). */
export interface SkippedFolder {
  /** Its path under the root, `/`-separated. */
  folder: string;
  /** Why, one line: the name and what an id may hold. */
  reason: string;
}

/** A run folder found under the root. */
export interface FoundRun {
  /** Its id. */
  id: string;
  /** Its real path. */
  dir: string;
  /** A link in it out of it (see {@linkcode linkOutOfRun}): nothing of it is read. */
  linksOut?: string;
  /** Why its links could not all be checked ({@linkcode RunUncheckedError}'s message): nothing of it is read. */
  unchecked?: string;
}

/**
 * Why a run {@linkcode findRuns} found is not served, or undefined when it
 * is: its links could not all be checked ({@linkcode RunUncheckedError}'s
 * message), or one of them leads out of it ({@linkcode RunLinksOutError}'s).
 * Nothing of such a run is read; the run list gives this as its reason and
 * an export names it when it skips the run.
 *
 * @param run The run as found.
 * @returns The one-line reason, or undefined.
 *
 * @example
 * ```ts
 * import { notServed } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(notServed({ id: "main", dir: "/runs/main" }), undefined);
 * assertEquals(
 *   notServed({ id: "main", dir: "/runs/main", linksOut: "results.json" }),
 *   'Run "main" is not served: results.json is a link out of the run folder (the dashboard reads only what lies inside a run); replace the link with the file',
 * );
 * // A walk that gave no verdict comes first: its link found is not the only one.
 * const unchecked = 'Run "main" is not served: it holds more than 10,000 files and folders';
 * assertEquals(notServed({ id: "main", dir: "/runs/main", linksOut: "a", unchecked }), unchecked);
 * ```
 */
export function notServed(run: FoundRun): string | undefined {
  if (run.unchecked !== undefined) return run.unchecked;
  return run.linksOut === undefined
    ? undefined
    : new RunLinksOutError(run.id, run.linksOut).message;
}

/**
 * Every run folder under `root`: folders holding a `config.json`, and
 * inside folders that hold none (a sweep), down to three levels; hidden
 * folders are skipped silently, and these are skipped and named, with why,
 * in `options.skipped` when given: symlinks out of the root, names an id
 * cannot carry (see {@linkcode checkRunId}), an import being written or
 * killed midway (`<to>.<uuid>.partial`), and a folder at the third level
 * that holds runs deeper than ids reach.
 *
 * @param root The served root.
 * @param options `skipped`: where the folders skipped for their names go.
 * @returns The runs, sorted by id; none when the root does not exist.
 *
 * @example
 * ```ts
 * import { findRuns, type SkippedFolder } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * for (const id of ["sweep/r1", "lr=0.001,bs=4", "run 1", "résumé", "a#b"]) {
 *   await Deno.mkdir(`${root}/${id}`, { recursive: true });
 *   await Deno.writeTextFile(`${root}/${id}/config.json`, "{}");
 * }
 * const skipped: SkippedFolder[] = [];
 * assertEquals((await findRuns(root, { skipped })).map((r) => r.id), ["lr=0.001,bs=4", "run 1", "résumé", "sweep/r1"]);
 * assertEquals(skipped, [{ folder: "a#b", reason: 'folder "a#b" is not listed: its name has "#", outside letters, digits, spaces and . _ - = , + (rename it to list it)' }]);
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function findRuns(
  root: string,
  options: { skipped?: SkippedFolder[] } = {},
): Promise<FoundRun[]> {
  let realRoot: string;
  try {
    realRoot = await Deno.realPath(root);
  } catch {
    return [];
  }
  const out: FoundRun[] = [];
  const walk = async (dir: string, prefix: string[], depth: number) => {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.isDirectory && !e.isSymlink) continue;
        if (NAME.test(e.name)) names.push(e.name);
        else if (!e.name.startsWith(".")) {
          // Hidden folders are skipped on purpose; any other is named.
          const folder = [...prefix, e.name].join("/");
          options.skipped?.push({
            folder,
            reason: `folder ${JSON.stringify(folder)} is not listed: its name ${
              nameFault(e.name)
            } (rename it to list it)`,
          });
        }
      }
    } catch {
      return;
    }
    for (const name of names.sort()) {
      // An export or import being written, or one killed midway (deno
      // task import's temporary `<to>.<uuid>.partial`): not a run yet.
      // Its `.replaced` (the earlier copy under --force) is a whole run,
      // listed as a run folder's own `.replaced-<time>` copies are.
      if (PARTIAL.test(name)) {
        const folder = [...prefix, name].join("/");
        options.skipped?.push({
          folder,
          reason: `folder ${
            JSON.stringify(folder)
          } is not listed: an import or export that has not finished (interrupted, or still writing); once nothing writes it, remove it`,
        });
        continue;
      }
      let real: string;
      try {
        real = await Deno.realPath(`${dir}/${name}`);
        if (!isInside(realRoot, real)) {
          // A link out of the root: named, never followed (nor its target).
          const folder = [...prefix, name].join("/");
          options.skipped?.push({
            folder,
            reason: `folder ${
              JSON.stringify(folder)
            } is not listed: it is a link out of --runs (nothing outside is read); move the run inside, or serve the folder that holds it`,
          });
          continue;
        }
        if (!(await Deno.stat(real)).isDirectory) continue;
      } catch {
        continue;
      }
      const id = [...prefix, name];
      if (await isExport(real)) {
        const folder = id.join("/");
        options.skipped?.push({
          folder,
          reason: `folder ${
            JSON.stringify(folder)
          } is not listed: it is a Hugging Face export (deno task export wrote it: config.json with d3pm_deno), not a run folder; deno task import makes a run of it`,
        });
        continue;
      }
      if (await exists(`${real}/config.json`)) {
        let link: string | undefined, unchecked: string | undefined;
        try {
          link = await linkOutOfRun(real, id.join("/"));
        } catch (e) {
          if (!(e instanceof RunUncheckedError)) throw e;
          unchecked = e.message;
        }
        out.push({
          id: id.join("/"),
          dir: real,
          ...(link !== undefined ? { linksOut: link } : {}),
          ...(unchecked !== undefined ? { unchecked } : {}),
        });
      } else if (depth < MAX_RUN_DEPTH) {
        await walk(real, id, depth + 1);
      } else if (await holdsRun(real)) {
        const folder = id.join("/");
        options.skipped?.push({
          folder,
          reason: `folder ${
            JSON.stringify(folder)
          } is not listed: it holds run folders deeper than ${MAX_RUN_DEPTH} levels under --runs (an id's most); serve a folder nearer them`,
        });
      }
    }
  };
  await walk(realRoot, [], 1);
  return out;
}

/** Whether a folder holds a folder that holds a `config.json` (a run one level down). */
async function holdsRun(dir: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(dir)) {
      if (
        (e.isDirectory || e.isSymlink) &&
        await exists(`${dir}/${e.name}/config.json`)
      ) return true;
    }
  } catch { /* unreadable: nothing to name */ }
  return false;
}

// A folder `deno task export` wrote (`@d3pm/hf`): its weights at the top,
// and a config.json (read only when small) carrying `d3pm_deno`. A run
// keeps its weights in seed-N/MODEL/ and has no such key.
async function isExport(dir: string): Promise<boolean> {
  if (!await exists(`${dir}/model.safetensors`)) return false;
  try {
    const info = await Deno.stat(`${dir}/config.json`);
    if (!info.isFile || info.size > 1 << 20) return false;
    const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    return typeof config === "object" && config !== null &&
      Object.hasOwn(config, "d3pm_deno");
  } catch {
    return false;
  }
}

/**
 * A stamp of files as they are now (modification time, size, inode; `-`
 * for one missing): a cache keyed by it sees a file replaced — a run
 * retrained with `--force` in the same folder.
 *
 * @param paths The files.
 * @returns The stamp.
 *
 * @example
 * ```ts
 * import { filesStamp } from "@d3pm/dashboard";
 * import { assert, assertEquals } from "@std/assert";
 * const path = await Deno.makeTempFile();
 * const before = await filesStamp([path, `${path}.none`]);
 * assertEquals(before, await filesStamp([path, `${path}.none`]));
 * await Deno.writeTextFile(path, "retrained");
 * assert(before !== await filesStamp([path, `${path}.none`]));
 * await Deno.remove(path);
 * ```
 */
export async function filesStamp(paths: readonly string[]): Promise<string> {
  const parts = await Promise.all(paths.map(async (p) => {
    try {
      const i = await Deno.stat(p);
      return `${i.mtime?.getTime() ?? 0}:${i.size}:${i.ino ?? 0}`;
    } catch {
      return "-";
    }
  }));
  return parts.join("|");
}

/**
 * Check the folder of run folders a server or an export is given: a file,
 * a FIFO or a device is refused in one line (the server served it as a
 * folder of no runs); one that does not exist is refused, or, for a
 * server that waits for runs to appear, named in a note. A run folder
 * itself (it holds a `config.json`) is refused, naming its parent.
 *
 * @param root The `--runs` folder.
 * @param options `missing`: what a folder that does not exist gets (default `refuse`).
 * @returns The note to print, if any.
 * @throws {Error} When it is not a folder (or is missing, unless noted).
 *
 * @example
 * ```ts
 * import { checkRunsRoot } from "@d3pm/dashboard";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const file = await Deno.makeTempFile();
 * await assertRejects(() => checkRunsRoot(file), Error, `--runs ${file} is a file: it must be the folder of run folders`);
 * assertEquals(await checkRunsRoot(`${file}.none`, { missing: "note" }), `note: --runs ${file}.none does not exist yet: its runs are shown as they are written`);
 * await Deno.remove(file);
 * const run = await Deno.realPath(await Deno.makeTempDir());
 * await Deno.writeTextFile(`${run}/config.json`, "{}");
 * await assertRejects(() => checkRunsRoot(run), Error, `is a run folder (it holds config.json), not the folder of run folders: give its parent, --runs ${run.slice(0, run.lastIndexOf("/"))} (the run's id there is `);
 * await Deno.remove(run, { recursive: true });
 * ```
 */
export async function checkRunsRoot(
  root: string,
  options: { missing?: "refuse" | "note" } = {},
): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new Error(`--runs ${root} cannot be read: ${(e as Error).message}`);
    }
    if (options.missing === "note") {
      return `note: --runs ${root} does not exist yet: its runs are shown as they are written`;
    }
    throw new Error(
      `--runs ${root} does not exist: it must be the folder of run folders`,
    );
  }
  if (info.isDirectory) {
    // A run folder itself: its seed-N/KIND folders (each with a
    // config.json) were listed as corrupt runs.
    if (await exists(`${root}/config.json`)) {
      const abs = await Deno.realPath(root);
      const parent = abs.slice(0, abs.lastIndexOf("/")) || "/";
      const name = abs.slice(abs.lastIndexOf("/") + 1);
      throw new Error(
        `--runs ${root} is a run folder (it holds config.json), not the folder of run folders: give its parent, --runs ${parent} (the run's id there is ${name})`,
      );
    }
    return undefined;
  }
  const what = info.isFile ? "a file" : kindOf(info);
  throw new Error(
    `--runs ${root} is ${what}: it must be the folder of run folders`,
  );
}
